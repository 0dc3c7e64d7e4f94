"""The placement engine table by table: matching, resolving, write plans, reads, validation."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from gateway.placement.engine import (
    ResolvedTargets,
    choose,
    is_reachable,
    matching_rule,
    order_replicas,
    resolve_targets,
    validate_policy,
)
from gateway.placement.model import (
    BackendInfo,
    BackendState,
    LinkInfo,
    ObjectFacts,
    PlacementError,
    PlacementPolicy,
    PlacementRule,
    PolicyError,
    ReadPreference,
    RuleMatch,
    TargetSpec,
    Tier,
    Topology,
    WriteMode,
    WritePlan,
)

FULL = BackendInfo("full", "s1", capacity_bytes=100, used_bytes=100)


def link(
    backend: str,
    *,
    site: str = "s1",
    healthy: bool = True,
    cost_per_gib: float = 0.0,
    rtt_ms: float = 0.0,
    latency_ewma_ms: float | None = None,
) -> LinkInfo:
    return LinkInfo(
        f"{site}->{backend}",
        site,
        backend,
        rtt_ms=rtt_ms,
        cost_per_gib=cost_per_gib,
        healthy=healthy,
        latency_ewma_ms=latency_ewma_ms,
    )


def topology(*backends: BackendInfo, links: tuple[LinkInfo, ...] = ()) -> Topology:
    return Topology("s1", {b.name: b for b in backends}, links)


def three_sites(
    *, b_healthy: bool = True, c_healthy: bool = True, **states: BackendState
) -> Topology:
    """Acceptance 2: a@s1 (the local site, implicit link), b@s2 and c@s3 over one link each."""
    backends = [
        BackendInfo(name, site, state=states.get(name, BackendState.ACTIVE))
        for name, site in (("a", "s1"), ("b", "s2"), ("c", "s3"))
    ]
    links = (link("b", healthy=b_healthy, cost_per_gib=0.02), link("c", healthy=c_healthy))
    return topology(*backends, links=links)


def rule(
    *replicas: TargetSpec,
    name: str = "r",
    match: RuleMatch | None = None,
    mode: WriteMode = WriteMode.ALL,
    quorum: int | None = None,
    distinct_sites: bool = False,
) -> PlacementRule:
    return PlacementRule(
        name, match or RuleMatch(), replicas, mode, quorum, distinct_sites=distinct_sites
    )


def policy(*rules: PlacementRule) -> PlacementPolicy:
    return PlacementPolicy("p", 1, rules)


def named(backend: str, *, asynchronous: bool = False) -> TargetSpec:
    return TargetSpec(backend=backend, asynchronous=asynchronous)


ACCEPTANCE_2 = rule(
    named("a"), named("b"), named("c", asynchronous=True), mode=WriteMode.QUORUM, quorum=1
)
FACTS = ObjectFacts("bkt", "photos/cat.jpg", 1000)


# -- matching ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("match", "facts", "matches"),
    [
        (RuleMatch(), FACTS, True),
        (RuleMatch(buckets=("bkt", "other")), FACTS, True),
        (RuleMatch(buckets=("other",)), FACTS, False),
        (RuleMatch(key_prefix="photos/"), FACTS, True),
        (RuleMatch(key_prefix="videos/"), FACTS, False),
        (RuleMatch(min_size_bytes=1000, max_size_bytes=1000), FACTS, True),
        (RuleMatch(min_size_bytes=1001), FACTS, False),
        (RuleMatch(max_size_bytes=999), FACTS, False),
        (RuleMatch(), dataclasses.replace(FACTS, size_bytes=None), True),
        (RuleMatch(min_size_bytes=0), dataclasses.replace(FACTS, size_bytes=None), False),
        (RuleMatch(max_size_bytes=10**12), dataclasses.replace(FACTS, size_bytes=None), False),
        (RuleMatch(storage_classes=("STANDARD",)), FACTS, True),
        (RuleMatch(storage_classes=("GLACIER",)), FACTS, False),
        (RuleMatch(tags={"k": "v"}), dataclasses.replace(FACTS, tags={"k": "v", "x": "y"}), True),
        (RuleMatch(tags={"k": "v"}), dataclasses.replace(FACTS, tags={"k": "w"}), False),
        (RuleMatch(tags={"k": "v"}), FACTS, False),
    ],
)
def test_a_rule_matches_when_every_criterion_holds(
    match: RuleMatch, facts: ObjectFacts, matches: bool
) -> None:
    catch_all = rule(named("a"), name="rest")
    chosen = matching_rule(policy(rule(named("a"), name="it", match=match), catch_all), facts)
    assert chosen.name == ("it" if matches else "rest")


def test_the_first_matching_rule_wins() -> None:
    rules = [
        rule(named("a"), name=n, match=RuleMatch(key_prefix=p))
        for n, p in [("x", "photos/"), ("y", "")]
    ]
    assert matching_rule(policy(*rules), FACTS).name == "x"
    assert matching_rule(policy(*reversed(rules)), FACTS).name == "y"


def test_no_matching_rule_is_a_placement_error() -> None:
    only = rule(named("a"), match=RuleMatch(buckets=("other",)))
    with pytest.raises(PlacementError, match="no rule of policy 'p' matches bkt/photos/cat.jpg"):
        matching_rule(policy(only), FACTS)


# -- reachability --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("backend", "links", "reachable"),
    [
        (BackendInfo("x", "s1"), (), True),  # the implicit local link
        (BackendInfo("x", "s1"), (link("x", healthy=False),), False),
        (BackendInfo("x", "s2"), (), False),  # no path from s1 at all
        (BackendInfo("x", "s2"), (link("x"),), True),
        (BackendInfo("x", "s2"), (link("x", healthy=False),), False),
        (BackendInfo("x", "s2"), (link("x", healthy=False), link("x", site="s1x")), False),
        (
            BackendInfo("x", "s2"),
            (link("x", healthy=False), dataclasses.replace(link("x"), name="wan")),
            True,
        ),
    ],
)
def test_reachability(backend: BackendInfo, links: tuple[LinkInfo, ...], reachable: bool) -> None:
    assert is_reachable(topology(backend, links=links), "x") is reachable


def test_an_unknown_backend_is_unreachable() -> None:
    assert not is_reachable(topology(), "ghost")


# -- resolving replicas --------------------------------------------------------------------

BLOCKED = [
    BackendInfo("x", "s1", state=BackendState.DRAINING),
    BackendInfo("x", "s1", state=BackendState.READ_ONLY),
    BackendInfo("x", "s1", state=BackendState.DISABLED),
    BackendInfo("x", "s1", capacity_bytes=10, used_bytes=11),
]


@pytest.mark.parametrize("blocked", BLOCKED, ids=["draining", "read-only", "disabled", "full"])
def test_a_named_backend_that_takes_no_writes_is_unresolved_not_replaced(
    blocked: BackendInfo,
) -> None:
    topo = topology(blocked, BackendInfo("y", "s1"))
    resolved = resolve_targets(rule(named("x"), named("z", asynchronous=True)), topo)
    assert resolved == ResolvedTargets(sync=(), asynchronous=(), unresolved=2)


@pytest.mark.parametrize("blocked", BLOCKED, ids=["draining", "read-only", "disabled", "full"])
def test_a_selector_skips_backends_that_take_no_writes(blocked: BackendInfo) -> None:
    topo = topology(blocked, BackendInfo("y", "s1"))
    assert resolve_targets(rule(TargetSpec(site="s1")), topo).sync == ("y",)


def test_a_selector_prefers_reachable_then_cheap_then_name() -> None:
    topo = topology(
        BackendInfo("dead", "s2"),
        BackendInfo("pricey", "s2"),
        BackendInfo("cheap-b", "s2"),
        BackendInfo("cheap-a", "s2"),
        links=(
            link("dead", healthy=False),
            link("pricey", cost_per_gib=0.09),
            link("cheap-b", cost_per_gib=0.01),
            link("cheap-a", cost_per_gib=0.01),
        ),
    )
    picks = resolve_targets(rule(*[TargetSpec(site="s2")] * 4), topo)
    assert picks == ResolvedTargets(("cheap-a", "cheap-b", "pricey", "dead"), (), 0)


def test_a_selector_takes_an_unreachable_backend_rather_than_none() -> None:
    topo = topology(BackendInfo("far", "s2"), links=(link("far", healthy=False),))
    assert resolve_targets(rule(TargetSpec(site="s2")), topo).sync == ("far",)


def test_a_selector_filters_by_tier_and_never_repeats_a_named_backend() -> None:
    topo = topology(
        BackendInfo("hot", "s1"),
        BackendInfo("cold", "s1", tier=Tier.COLD),
        BackendInfo("cold2", "s1", tier=Tier.COLD),
    )
    resolved = resolve_targets(rule(TargetSpec(tier=Tier.COLD), named("cold")), topo)
    assert resolved.sync == ("cold2", "cold")
    short = resolve_targets(rule(TargetSpec(tier=Tier.ARCHIVE), named("hot")), topo)
    assert short == ResolvedTargets(("hot",), (), 1)


def test_a_narrow_selector_chooses_before_a_broad_one() -> None:
    # Greedy in the rule's order, "any hot" would take the cheap local x and leave "s1" nothing.
    topo = topology(
        BackendInfo("x", "s1"), BackendInfo("y", "s2"), links=(link("y", cost_per_gib=1),)
    )
    resolved = resolve_targets(rule(TargetSpec(tier=Tier.HOT), TargetSpec(site="s1")), topo)
    assert resolved.sync == ("y", "x")


def test_distinct_sites_spreads_selectors_away_from_named_backends() -> None:
    topo = topology(
        BackendInfo("a1", "s1"),
        BackendInfo("a2", "s1"),
        BackendInfo("b1", "s2"),
        links=(link("b1", cost_per_gib=5.0),),
    )
    spread = rule(named("a1"), TargetSpec(), distinct_sites=True)
    assert resolve_targets(spread, topo).sync == ("a1", "b1")
    together = dataclasses.replace(spread, distinct_sites=False)
    assert resolve_targets(together, topo).sync == ("a1", "a2")


def test_distinct_sites_keeps_the_site_of_an_unwritable_named_backend() -> None:
    topo = topology(
        BackendInfo("a1", "s1", state=BackendState.DRAINING),
        BackendInfo("a2", "s1"),
        BackendInfo("b1", "s2"),
        links=(link("b1"),),
    )
    resolved = resolve_targets(rule(named("a1"), TargetSpec(), distinct_sites=True), topo)
    assert resolved == ResolvedTargets(("b1",), (), 1)


def test_replicas_split_by_their_asynchronous_flag() -> None:
    assert resolve_targets(ACCEPTANCE_2, three_sites()) == ResolvedTargets(("a", "b"), ("c",), 0)


# -- write plans ---------------------------------------------------------------------------


def plan(sync: tuple[str, ...], quorum: int, later: tuple[str, ...], name: str = "r") -> WritePlan:
    return WritePlan(name, sync, quorum, later, ReadPreference.LOCAL)


@pytest.mark.parametrize(
    ("topo", "expected"),
    [
        (three_sites(), plan(("a", "b"), 1, ("c",))),
        # The chosen semantics: an unreachable synchronous replica is handed off, not awaited.
        (three_sites(b_healthy=False), plan(("a",), 1, ("b", "c"))),
        (three_sites(c_healthy=False), plan(("a", "b"), 1, ("c",))),
        (three_sites(b_healthy=False, c_healthy=False), plan(("a",), 1, ("b", "c"))),
        # Not writable: neither written nor queued; re-placement restores the count later.
        (three_sites(b=BackendState.DRAINING), plan(("a",), 1, ("c",))),
        (three_sites(a=BackendState.READ_ONLY), plan(("b",), 1, ("c",))),
        (three_sites(c=BackendState.DISABLED), plan(("a", "b"), 1, ())),
    ],
)
def test_quorum_plans(topo: Topology, expected: WritePlan) -> None:
    assert choose(policy(ACCEPTANCE_2), FACTS, topo) == expected


@pytest.mark.parametrize(
    "topo",
    [
        three_sites(a=BackendState.DISABLED, b_healthy=False),
        three_sites(a=BackendState.DRAINING, b=BackendState.DRAINING),
        dataclasses.replace(
            three_sites(b_healthy=False),
            links=(*three_sites(b_healthy=False).links, link("a", healthy=False)),
        ),
    ],
)
def test_a_quorum_that_cannot_be_met_is_a_placement_error(topo: Topology) -> None:
    with pytest.raises(PlacementError, match="rule 'r'.*needs 1 synchronous targets, 0 of 2"):
        choose(policy(ACCEPTANCE_2), FACTS, topo)


def test_quorum_two_needs_both_synchronous_replicas() -> None:
    strict = dataclasses.replace(ACCEPTANCE_2, quorum=2)
    assert choose(policy(strict), FACTS, three_sites()) == plan(("a", "b"), 2, ("c",))
    with pytest.raises(PlacementError, match="needs 2 synchronous targets, 1 of 2"):
        choose(policy(strict), FACTS, three_sites(b_healthy=False))


ALL_RULE = rule(named("a"), TargetSpec(site="s2"), named("c", asynchronous=True))


@pytest.mark.parametrize(
    ("topo", "expected"),
    [
        (three_sites(), plan(("a", "b"), 2, ("c",))),
        (three_sites(c_healthy=False), plan(("a", "b"), 2, ("c",))),
        (three_sites(b_healthy=False), None),
        (three_sites(a=BackendState.DRAINING), None),
        (three_sites(b=BackendState.READ_ONLY), None),  # no other backend at s2
    ],
)
def test_all_plans(topo: Topology, expected: WritePlan | None) -> None:
    if expected is None:
        with pytest.raises(PlacementError, match=r"rule 'r' \(all\) needs 2 synchronous targets"):
            choose(policy(ALL_RULE), FACTS, topo)
    else:
        assert choose(policy(ALL_RULE), FACTS, topo) == expected


def test_all_uses_another_backend_the_selector_admits() -> None:
    topo = three_sites(b=BackendState.DRAINING)
    topo = dataclasses.replace(
        topo,
        backends={**topo.backends, "b2": BackendInfo("b2", "s2")},
        links=(*topo.links, link("b2")),
    )
    assert choose(policy(ALL_RULE), FACTS, topo) == plan(("a", "b2"), 2, ("c",))


PRIMARY = rule(named("b"), named("a"), named("c"), mode=WriteMode.PRIMARY_ASYNC)


@pytest.mark.parametrize(
    ("topo", "expected"),
    [
        (three_sites(), plan(("b",), 1, ("a", "c"))),
        # The primary is handed off; the next reachable replica takes the write.
        (three_sites(b_healthy=False), plan(("a",), 1, ("b", "c"))),
        (three_sites(b=BackendState.DRAINING), plan(("a",), 1, ("c",))),
        (three_sites(b_healthy=False, a=BackendState.DISABLED), plan(("c",), 1, ("b",))),
    ],
)
def test_primary_async_plans(topo: Topology, expected: WritePlan) -> None:
    assert choose(policy(PRIMARY), FACTS, topo) == expected


def test_primary_async_with_nothing_reachable_is_a_placement_error() -> None:
    topo = three_sites(a=BackendState.DISABLED, b_healthy=False, c_healthy=False)
    with pytest.raises(PlacementError, match="none of its replicas"):
        choose(policy(PRIMARY), FACTS, topo)


def test_the_plan_carries_the_rule_name_and_read_preference() -> None:
    cheap = dataclasses.replace(ACCEPTANCE_2, name="cheap", read_preference=ReadPreference.CHEAPEST)
    got = choose(policy(cheap), FACTS, three_sites())
    assert (got.rule, got.read_preference) == ("cheap", ReadPreference.CHEAPEST)


@pytest.mark.parametrize("blocked", BLOCKED, ids=["draining", "read-only", "disabled", "full"])
def test_writes_skip_backends_that_take_no_writes(blocked: BackendInfo) -> None:
    topo = topology(blocked, BackendInfo("y", "s1"))
    picked = choose(policy(rule(TargetSpec(site="s1"))), FACTS, topo)
    assert picked == plan(("y",), 1, ())


# -- read order ----------------------------------------------------------------------------


def read_topology() -> Topology:
    """Local l1 (implicit) and l2 (a slow explicit link); remote r-cheap, r-fast, r-dead."""
    return topology(
        BackendInfo("l1", "s1"),
        BackendInfo("l2", "s1"),
        BackendInfo("r-cheap", "s2"),
        BackendInfo("r-fast", "s3"),
        BackendInfo("r-dead", "s3"),
        BackendInfo("off", "s1", state=BackendState.DISABLED),
        BackendInfo("drain", "s2", state=BackendState.DRAINING),
        links=(
            link("l2", cost_per_gib=0.001, rtt_ms=40, latency_ewma_ms=30),
            link("r-cheap", cost_per_gib=0.0001, rtt_ms=80),
            link("r-fast", cost_per_gib=0.05, rtt_ms=50, latency_ewma_ms=2),
            link("r-dead", healthy=False),
            link("drain", cost_per_gib=0.5, rtt_ms=100),
        ),
    )


ALL_READS = ["r-dead", "drain", "off", "r-fast", "r-cheap", "l2", "ghost", "l1"]


@pytest.mark.parametrize(
    ("preference", "expected"),
    [
        (ReadPreference.LOCAL, ["l1", "l2", "r-cheap", "r-fast", "drain", "r-dead"]),
        (ReadPreference.CHEAPEST, ["l1", "r-cheap", "l2", "r-fast", "drain", "r-dead"]),
        (ReadPreference.LATENCY, ["l1", "r-fast", "l2", "r-cheap", "drain", "r-dead"]),
    ],
)
def test_read_order(preference: ReadPreference, expected: list[str]) -> None:
    assert order_replicas(ALL_READS, read_topology(), preference) == expected


def test_read_order_breaks_ties_by_name_and_drops_duplicates() -> None:
    topo = topology(BackendInfo("b", "s2"), BackendInfo("a", "s2"), links=(link("a"), link("b")))
    for preference in ReadPreference:
        assert order_replicas(["b", "a", "b"], topo, preference) == ["a", "b"]


def test_an_unhealthy_local_replica_goes_last() -> None:
    topo = topology(
        BackendInfo("l", "s1"), BackendInfo("r", "s2"), links=(link("l", healthy=False), link("r"))
    )
    assert order_replicas(["l", "r"], topo, ReadPreference.LOCAL) == ["r", "l"]


# -- validation ----------------------------------------------------------------------------

VALID = [
    policy(ACCEPTANCE_2),
    policy(ALL_RULE),
    policy(PRIMARY),
    policy(rule(named("a"), TargetSpec(), TargetSpec(), distinct_sites=True)),
    policy(
        rule(named("a"), name="small", match=RuleMatch(max_size_bytes=1000)),
        rule(named("b"), name="large", match=RuleMatch(min_size_bytes=1001)),
        rule(named("c"), name="unknown-size"),
    ),
    policy(
        rule(named("a"), name="tagged", match=RuleMatch(tags={"class": "gold"})),
        rule(named("b"), name="in-bucket", match=RuleMatch(buckets=("x",))),
        rule(named("c"), name="rest"),
    ),
]


@pytest.mark.parametrize("good", VALID)
def test_valid_policies_pass(good: PlacementPolicy) -> None:
    validate_policy(good, three_sites())


def bad(*replicas: TargetSpec, **fields: Any) -> PlacementPolicy:
    return policy(dataclasses.replace(rule(*replicas, name="bad"), **fields))


SHADOW_CASES = [
    (RuleMatch(), RuleMatch(key_prefix="x/"), "can never match"),
    (RuleMatch(key_prefix="x/"), RuleMatch(key_prefix="x/y/"), "can never match"),
    (RuleMatch(buckets=("b1", "b2")), RuleMatch(buckets=("b1",)), "can never match"),
    (
        RuleMatch(min_size_bytes=10),
        RuleMatch(min_size_bytes=20, max_size_bytes=30),
        "can never match",
    ),
    (
        RuleMatch(max_size_bytes=100),
        RuleMatch(min_size_bytes=0, max_size_bytes=100),
        "can never match",
    ),
    (RuleMatch(storage_classes=("A", "B")), RuleMatch(storage_classes=("B",)), "can never match"),
    (RuleMatch(tags={"k": "v"}), RuleMatch(tags={"k": "v", "j": "w"}), "can never match"),
    (RuleMatch(key_prefix="x/"), RuleMatch(key_prefix="x/"), "same match"),
]


@pytest.mark.parametrize(("first", "second", "message"), SHADOW_CASES)
def test_a_shadowed_rule_is_refused(first: RuleMatch, second: RuleMatch, message: str) -> None:
    rules = (
        rule(named("a"), name="first", match=first),
        rule(named("a"), name="bad", match=second),
    )
    with pytest.raises(PolicyError, match=f"rule 'bad' .*{message}.*'first'"):
        validate_policy(policy(*rules), three_sites())


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (RuleMatch(key_prefix="x/y/"), RuleMatch(key_prefix="x/")),
        (RuleMatch(buckets=("b1",)), RuleMatch(buckets=("b1", "b2"))),
        (RuleMatch(buckets=("b1",)), RuleMatch()),
        (RuleMatch(min_size_bytes=0), RuleMatch()),  # the later one still takes unknown sizes
        (RuleMatch(max_size_bytes=100), RuleMatch(max_size_bytes=101)),
        (RuleMatch(min_size_bytes=10), RuleMatch(min_size_bytes=5)),
        (RuleMatch(storage_classes=("A",)), RuleMatch()),
        (RuleMatch(tags={"k": "v", "j": "w"}), RuleMatch(tags={"k": "v"})),
        (RuleMatch(tags={"k": "v"}), RuleMatch(tags={"k": "other"})),
    ],
)
def test_rules_that_only_overlap_partly_are_fine(first: RuleMatch, second: RuleMatch) -> None:
    rules = (
        rule(named("a"), name="first", match=first),
        rule(named("a"), name="second", match=second),
    )
    validate_policy(policy(*rules), three_sites())


@pytest.mark.parametrize(
    ("candidate", "message"),
    [
        (bad(named("nope")), "unknown backend 'nope'"),
        (bad(TargetSpec(site="s9")), "unknown site 's9'"),
        (bad(TargetSpec(site="s2", tier=Tier.COLD)), "no backend at site 's2' of tier cold"),
        (bad(TargetSpec(tier=Tier.ARCHIVE)), "no backend at any site of tier archive"),
        (bad(TargetSpec(backend="a", site="s1")), "names backend 'a' and also a site or tier"),
        (bad(), "has no replicas"),
        (bad(named("a"), named("a")), "backend 'a' is named by more than one replica"),
        (bad(named("a"), write_mode=WriteMode.QUORUM), "needs a quorum"),
        (bad(named("a"), write_mode=WriteMode.QUORUM, quorum=0), "W=0 must be at least 1"),
        (
            bad(named("a"), named("b"), write_mode=WriteMode.QUORUM, quorum=3),
            r"W=3 exceeds the 2 .*W > N",
        ),
        (
            bad(named("a"), named("b", asynchronous=True), write_mode=WriteMode.QUORUM, quorum=2),
            r"W=2 exceeds the 1 synchronous replicas",
        ),
        (bad(named("a"), quorum=1), "quorum is given but write mode is all"),
        (bad(named("a"), write_mode=WriteMode.PRIMARY_ASYNC, quorum=1), "write mode is primary"),
        (
            bad(named("a", asynchronous=True), named("b"), write_mode=WriteMode.PRIMARY_ASYNC),
            "first replica",
        ),
        (bad(named("a", asynchronous=True)), "at least one synchronous replica"),
        (bad(*[TargetSpec()] * 4, distinct_sites=True), "4 replicas but only 3 sites"),
        (bad(*[TargetSpec()] * 5), "5 replicas but only 4 distinct backends"),
        (bad(named("a"), TargetSpec(site="s1"), distinct_sites=True), "only 1 sites"),
        (bad(named("a"), named("a2"), TargetSpec(site="s1")), "3 replicas but only 2 distinct"),
        (bad(named("a"), named("a2"), distinct_sites=True), "both at site 's1'"),
        (bad(named("a"), match=RuleMatch(min_size_bytes=10, max_size_bytes=9)), "10 is greater"),
        (bad(named("a"), match=RuleMatch(min_size_bytes=-1)), "must not be negative"),
    ],
)
def test_bad_rules_are_refused_naming_the_rule(candidate: PlacementPolicy, message: str) -> None:
    topo = three_sites()
    topo = dataclasses.replace(topo, backends={**topo.backends, "a2": BackendInfo("a2", "s1")})
    with pytest.raises(PolicyError, match=f"rule 'bad': .*{message}"):
        validate_policy(candidate, topo)


def test_a_policy_without_rules_is_refused() -> None:
    with pytest.raises(PolicyError, match="policy 'p' has no rules"):
        validate_policy(policy(), three_sites())


def test_duplicate_rule_names_are_refused() -> None:
    twice = policy(
        rule(named("a"), name="dup", match=RuleMatch(key_prefix="x")),
        rule(named("a"), name="dup", match=RuleMatch(key_prefix="y")),
    )
    with pytest.raises(PolicyError, match="rule 'dup' is defined twice"):
        validate_policy(twice, three_sites())


def test_an_empty_rule_name_is_refused() -> None:
    with pytest.raises(PolicyError, match="empty name"):
        validate_policy(policy(rule(named("a"), name="")), three_sites())


def test_validation_ignores_momentary_state_and_health() -> None:
    topo = three_sites(a=BackendState.DISABLED, b_healthy=False, c=BackendState.DRAINING)
    validate_policy(policy(ACCEPTANCE_2), topo)


def test_a_later_rule_is_checked_too() -> None:
    two = policy(
        rule(named("a"), name="ok", match=RuleMatch(key_prefix="x")),
        rule(named("zz"), name="later"),
    )
    with pytest.raises(PolicyError, match="rule 'later': unknown backend 'zz'"):
        validate_policy(two, three_sites())
