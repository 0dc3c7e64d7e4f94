"""The placement engine: which backends take a new object, and the order to read its replicas.

Pure functions of a policy, an object's facts and a topology snapshot; no I/O. Two invariants
the callers rely on:

- every backend named in a ``WritePlan`` exists and is writable in the snapshot it was planned
  from, and appears once;
- a replica that has no writable backend now is never swapped for a backend the rule does not
  allow; it is left out, and re-placement restores the replica count when the topology changes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.placement.model import (
    BackendInfo,
    LinkInfo,
    ObjectFacts,
    PlacementError,
    PlacementPolicy,
    PlacementRule,
    PolicyError,
    ReadPreference,
    RuleMatch,
    TargetSpec,
    Topology,
    WriteMode,
    WritePlan,
)


@dataclass(frozen=True, slots=True)
class ResolvedTargets:
    """Concrete backends for a rule's replicas, each list in the rule's order.

    ``sync`` and ``asynchronous`` follow each replica's own ``asynchronous`` flag (the write
    mode is applied by ``choose``). ``unresolved`` counts replicas with no writable backend now:
    a named backend that is unknown or not writable, or a selector with no free candidate.
    """

    sync: tuple[str, ...]
    asynchronous: tuple[str, ...]
    unresolved: int


# -- matching ------------------------------------------------------------------------------


def matching_rule(policy: PlacementPolicy, facts: ObjectFacts) -> PlacementRule:
    """The first rule of ``policy`` whose match holds for ``facts``; PlacementError if none."""
    for rule in policy.rules:
        if _matches(rule.match, facts):
            return rule
    raise PlacementError(
        f"no rule of policy {policy.name!r} matches {facts.bucket}/{facts.key}"
        f" (size {facts.size_bytes}, storage class {facts.storage_class})"
    )


def _matches(match: RuleMatch, facts: ObjectFacts) -> bool:
    return (
        (not match.buckets or facts.bucket in match.buckets)
        and facts.key.startswith(match.key_prefix)
        and _size_matches(match, facts.size_bytes)
        and (not match.storage_classes or facts.storage_class in match.storage_classes)
        and all(facts.tags.get(name) == value for name, value in match.tags.items())
    )


def _has_size_criteria(match: RuleMatch) -> bool:
    return match.min_size_bytes is not None or match.max_size_bytes is not None


def _size_matches(match: RuleMatch, size: int | None) -> bool:
    # A body of unknown length (streamed) can only satisfy a rule that does not ask for a size.
    if size is None:
        return not _has_size_criteria(match)
    too_small = match.min_size_bytes is not None and size < match.min_size_bytes
    too_large = match.max_size_bytes is not None and size > match.max_size_bytes
    return not (too_small or too_large)


# -- links ---------------------------------------------------------------------------------


def is_reachable(topology: Topology, backend: str) -> bool:
    """True when the local site has a healthy path to ``backend``.

    A backend at the local site with no configured link uses the implicit local link, which is
    always healthy; once links are configured to it, one of them must be healthy.
    """
    info = topology.backends.get(backend)
    if info is None:
        return False
    links = topology.links_to(backend)
    if not links:
        return info.site == topology.local_site
    return any(link.healthy for link in links)


def _best_links(topology: Topology, backend: str) -> list[LinkInfo]:
    links = topology.links_to(backend)
    return [link for link in links if link.healthy] or links


def _is_implicit_local(topology: Topology, info: BackendInfo) -> bool:
    return info.site == topology.local_site and not topology.links_to(info.name)


def _cost(topology: Topology, info: BackendInfo) -> float:
    if _is_implicit_local(topology, info):
        return 0.0
    return min((link.cost_per_gib for link in _best_links(topology, info.name)), default=math.inf)


def _latency(topology: Topology, info: BackendInfo) -> float:
    if _is_implicit_local(topology, info):
        return 0.0
    observed = (
        link.rtt_ms if link.latency_ewma_ms is None else link.latency_ewma_ms
        for link in _best_links(topology, info.name)
    )
    return min(observed, default=math.inf)


# -- resolving replicas to backends --------------------------------------------------------


def _fits(spec: TargetSpec, info: BackendInfo) -> bool:
    """Whether a selector (site and/or tier, either may be absent) admits ``info``."""
    return (spec.site is None or info.site == spec.site) and (
        spec.tier is None or info.tier is spec.tier
    )


def _write_rank(topology: Topology, info: BackendInfo) -> tuple[bool, float, str]:
    return (not is_reachable(topology, info.name), _cost(topology, info), info.name)


def _selector_order(rule: PlacementRule, topology: Topology) -> list[int]:
    # The selectors with the fewest candidates choose first, so a broad selector cannot take
    # the only backend a narrow one could use; ties keep the rule's order.
    def candidates(i: int) -> int:
        spec = rule.replicas[i]
        return sum(_fits(spec, info) and info.writable for info in topology.backends.values())

    selectors = [i for i, spec in enumerate(rule.replicas) if spec.backend is None]
    return sorted(selectors, key=candidates)


def _resolve(rule: PlacementRule, topology: Topology) -> list[str | None]:
    """One writable backend (or None) per replica of ``rule``, in the rule's order."""
    chosen: list[str | None] = [None] * len(rule.replicas)
    taken: set[str] = set()
    sites: set[str] = set()
    for i, spec in enumerate(rule.replicas):
        info = topology.backends.get(spec.backend) if spec.backend is not None else None
        if info is None:
            continue
        sites.add(info.site)  # reserved even when not writable: the replica belongs there
        if info.writable and info.name not in taken:
            chosen[i] = info.name
            taken.add(info.name)
    for i in _selector_order(rule, topology):
        candidates = [
            info
            for info in topology.backends.values()
            if _fits(rule.replicas[i], info)
            and info.writable
            and info.name not in taken
            and not (rule.distinct_sites and info.site in sites)
        ]
        if candidates:
            best = min(candidates, key=lambda info: _write_rank(topology, info))
            chosen[i] = best.name
            taken.add(best.name)
            sites.add(best.site)
    return chosen


def resolve_targets(rule: PlacementRule, topology: Topology) -> ResolvedTargets:
    """Pick a concrete writable backend for every replica of ``rule`` that has one now.

    A named backend is taken as is when it exists and is writable. A selector takes a writable
    backend at its site and of its tier that no other replica took (and, with
    ``distinct_sites``, at a site no other replica uses), preferring a reachable one, then
    the lowest link cost, then the name.
    """
    chosen = _resolve(rule, topology)
    pairs = list(zip(rule.replicas, chosen, strict=True))
    return ResolvedTargets(
        sync=tuple(b for spec, b in pairs if b is not None and not spec.asynchronous),
        asynchronous=tuple(b for spec, b in pairs if b is not None and spec.asynchronous),
        unresolved=chosen.count(None),
    )


# -- the write plan ------------------------------------------------------------------------


def choose(policy: PlacementPolicy, facts: ObjectFacts, topology: Topology) -> WritePlan:
    """The write plan for a new object: PlacementError (503) when its write mode cannot be met.

    - ``all``: every synchronous replica of the rule must be writable and reachable now;
      the quorum is their number.
    - ``quorum``: the reachable synchronous replicas are written now and ``rule.quorum`` of
      them must succeed. A synchronous replica that is writable but unreachable (every link to
      it unhealthy) moves to the asynchronous targets: hinted hand-off. It is not written
      synchronously even though only W writes are awaited, because the body is streamed once
      to every synchronous target and the slowest sets the pace: a dead link would stall the
      PUT until it timed out.
    - ``primary+async``: one synchronous target, the first replica; when it is unreachable or
      unresolved, the first reachable replica after it is promoted (the same hand-off as a
      quorum of 1) and the primary is queued. Every other replica is asynchronous.

    Asynchronous targets are kept when unreachable: the replication worker waits for the link.
    """
    rule = matching_rule(policy, facts)
    chosen = _resolve(rule, topology)
    if rule.write_mode is WriteMode.PRIMARY_ASYNC:
        return _primary_async_plan(rule, chosen, topology)
    pairs = list(zip(rule.replicas, chosen, strict=True))
    wanted = [b for spec, b in pairs if not spec.asynchronous]
    ready = [b for b in wanted if b is not None and is_reachable(topology, b)]
    handoff = [b for b in wanted if b is not None and not is_reachable(topology, b)]
    later = [b for spec, b in pairs if spec.asynchronous and b is not None]
    quorum = len(wanted) if rule.write_mode is WriteMode.ALL else rule.quorum
    if quorum is None or quorum < 1 or len(ready) < quorum:
        raise PlacementError(
            f"rule {rule.name!r} ({rule.write_mode}) needs {quorum} synchronous targets,"
            f" {len(ready)} of {len(wanted)} are writable and reachable now"
        )
    return WritePlan(rule.name, tuple(ready), quorum, tuple(handoff + later), rule.read_preference)


def _primary_async_plan(
    rule: PlacementRule, chosen: list[str | None], topology: Topology
) -> WritePlan:
    usable = [b for b in chosen if b is not None]
    primary = next((b for b in usable if is_reachable(topology, b)), None)
    if primary is None:
        raise PlacementError(
            f"rule {rule.name!r} (primary+async): none of its replicas is writable and reachable"
        )
    later = tuple(b for b in usable if b != primary)
    return WritePlan(rule.name, (primary,), 1, later, rule.read_preference)


# -- reads ---------------------------------------------------------------------------------


def order_replicas(
    backends: Sequence[str], topology: Topology, preference: ReadPreference
) -> list[str]:
    """The order in which to try the replicas of an object for a read.

    Unknown and disabled backends are dropped (as are duplicates); reachable backends come
    before unreachable ones; then ``preference`` decides: ``local`` puts the local site first,
    then cost, then latency; ``cheapest`` sorts by the best link cost (the implicit local link
    costs 0), then latency; ``latency`` by the observed latency EWMA (the nominal RTT when
    nothing was observed yet), then cost. The name breaks ties.
    """
    infos = [topology.backends.get(name) for name in dict.fromkeys(backends)]
    readable = [info for info in infos if info is not None and info.readable]
    return [
        info.name for info in sorted(readable, key=lambda i: _read_rank(topology, i, preference))
    ]


def _read_rank(
    topology: Topology, info: BackendInfo, preference: ReadPreference
) -> tuple[bool, float, float, float, str]:
    cost, latency = _cost(topology, info), _latency(topology, info)
    match preference:
        case ReadPreference.LOCAL:
            keys = (float(info.site != topology.local_site), cost, latency)
        case ReadPreference.CHEAPEST:
            keys = (cost, latency, 0.0)
        case ReadPreference.LATENCY:
            keys = (latency, cost, 0.0)
    return (not is_reachable(topology, info.name), *keys, info.name)


# -- validation ----------------------------------------------------------------------------


def validate_policy(policy: PlacementPolicy, topology: Topology) -> None:
    """Refuse a policy that could never be carried out as written: PolicyError naming the rule.

    Checks structure against the topology's backends and sites, never their momentary state or
    link health: a draining backend or a cut link makes writes degrade, not the policy invalid.
    """
    if not policy.rules:
        raise PolicyError(f"policy {policy.name!r} has no rules")
    seen: set[str] = set()
    for rule in policy.rules:
        if rule.name in seen:
            raise PolicyError(f"rule {rule.name!r} is defined twice in policy {policy.name!r}")
        seen.add(rule.name)
        _validate_rule(rule, topology)
    _check_shadowing(policy.rules)


def _validate_rule(rule: PlacementRule, topology: Topology) -> None:
    if not rule.name:
        raise PolicyError("a rule has an empty name")
    # Short-circuits in this order: each check relies on the ones before it.
    problem = (
        _match_problem(rule.match)
        or _replicas_problem(rule, topology)
        or _write_mode_problem(rule)
        or _capacity_problem(rule, topology)
    )
    if problem is not None:
        raise PolicyError(f"rule {rule.name!r}: {problem}")


def _match_problem(match: RuleMatch) -> str | None:
    low, high = match.min_size_bytes, match.max_size_bytes
    if (low is not None and low < 0) or (high is not None and high < 0):
        return "sizes must not be negative"
    if low is not None and high is not None and low > high:
        return f"min_size_bytes {low} is greater than max_size_bytes {high}"
    return None


def _replicas_problem(rule: PlacementRule, topology: Topology) -> str | None:
    if not rule.replicas:
        return "has no replicas"
    named = [spec.backend for spec in rule.replicas if spec.backend is not None]
    twice = sorted({name for name in named if named.count(name) > 1})
    if twice:
        return f"backend {twice[0]!r} is named by more than one replica"
    for spec in rule.replicas:
        problem = _target_problem(spec, topology)
        if problem is not None:
            return problem
    return None


def _target_problem(spec: TargetSpec, topology: Topology) -> str | None:
    if spec.backend is not None:
        if spec.site is not None or spec.tier is not None:
            return f"replica names backend {spec.backend!r} and also a site or tier"
        if spec.backend not in topology.backends:
            return f"unknown backend {spec.backend!r}"
        return None
    known_sites = {info.site for info in topology.backends.values()}
    known_sites |= {link.site for link in topology.links}
    if spec.site is not None and spec.site not in known_sites:
        return f"unknown site {spec.site!r}"
    if not any(_fits(spec, info) for info in topology.backends.values()):
        where = f"at site {spec.site!r}" if spec.site is not None else "at any site"
        tier = f" of tier {spec.tier}" if spec.tier is not None else ""
        return f"no backend {where}{tier}"
    return None


def _write_mode_problem(rule: PlacementRule) -> str | None:
    synchronous = sum(not spec.asynchronous for spec in rule.replicas)
    if rule.write_mode is not WriteMode.QUORUM:
        if rule.quorum is not None:
            return f"quorum is given but write mode is {rule.write_mode}, not quorum"
        if rule.write_mode is WriteMode.ALL and synchronous == 0:
            return "write mode all needs at least one synchronous replica"
        if rule.write_mode is WriteMode.PRIMARY_ASYNC and rule.replicas[0].asynchronous:
            return "write mode primary+async needs its first replica synchronous"
        return None
    if rule.quorum is None:
        return "write mode quorum needs a quorum W"
    if rule.quorum < 1:
        return f"quorum W={rule.quorum} must be at least 1"
    if rule.quorum > synchronous:
        return f"quorum W={rule.quorum} exceeds the {synchronous} synchronous replicas (W > N)"
    return None


def _capacity_problem(rule: PlacementRule, topology: Topology) -> str | None:
    """Whether the replicas can all land on distinct backends (and sites, when asked)."""
    if rule.distinct_sites:
        named_sites = [
            topology.backends[spec.backend].site
            for spec in rule.replicas
            if spec.backend is not None
        ]
        shared = sorted({site for site in named_sites if named_sites.count(site) > 1})
        if shared:
            return f"distinct_sites, but two named backends are both at site {shared[0]!r}"
    slots = [_slots(spec, rule.distinct_sites, topology) for spec in rule.replicas]
    placed = _max_matching(slots)
    if placed == len(slots):
        return None
    if rule.distinct_sites:
        return f"distinct_sites: {len(slots)} replicas but only {placed} sites can host them"
    return f"{len(slots)} replicas but only {placed} distinct backends can host them"


def _slots(spec: TargetSpec, by_site: bool, topology: Topology) -> set[str]:
    if spec.backend is not None:
        infos = [topology.backends[spec.backend]]
    else:
        infos = [info for info in topology.backends.values() if _fits(spec, info)]
    return {info.site if by_site else info.name for info in infos}


def _max_matching(options: list[set[str]]) -> int:
    """Size of a maximum matching of replicas to slots (Kuhn's augmenting paths)."""
    holder: dict[str, int] = {}

    def place(replica: int, visited: set[str]) -> bool:
        for slot in sorted(options[replica] - visited):
            visited.add(slot)
            if slot not in holder or place(holder[slot], visited):
                holder[slot] = replica
                return True
        return False

    return sum(place(replica, set()) for replica in range(len(options)))


def _check_shadowing(rules: Sequence[PlacementRule]) -> None:
    for later_index, later in enumerate(rules):
        for earlier in rules[:later_index]:
            if earlier.match == later.match:
                raise PolicyError(
                    f"rule {later.name!r} has the same match as rule {earlier.name!r}"
                )
            if _covers(earlier.match, later.match):
                raise PolicyError(
                    f"rule {later.name!r} can never match: rule {earlier.name!r} before it"
                    " matches every object it would (overlapping rules)"
                )


def _covers(wide: RuleMatch, narrow: RuleMatch) -> bool:
    """Whether every object ``narrow`` matches is matched by ``wide`` too."""
    return (
        _covers_values(wide.buckets, narrow.buckets)
        and narrow.key_prefix.startswith(wide.key_prefix)
        and _covers_sizes(wide, narrow)
        and _covers_values(wide.storage_classes, narrow.storage_classes)
        and wide.tags.items() <= narrow.tags.items()
    )


def _covers_values(wide: tuple[str, ...], narrow: tuple[str, ...]) -> bool:
    # An empty tuple means "any value".
    return not wide or (bool(narrow) and set(narrow) <= set(wide))


def _covers_sizes(wide: RuleMatch, narrow: RuleMatch) -> bool:
    if not _has_size_criteria(wide):
        return True
    if not _has_size_criteria(narrow):
        return False  # narrow also matches bodies of unknown size, wide does not
    low_ok = (wide.min_size_bytes or 0) <= (narrow.min_size_bytes or 0)
    high_ok = wide.max_size_bytes is None or (
        narrow.max_size_bytes is not None and narrow.max_size_bytes <= wide.max_size_bytes
    )
    return low_ok and high_ok
