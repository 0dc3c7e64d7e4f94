"""Storage classes map to tiers through the placement policy."""

from __future__ import annotations

import pytest

from gateway.placement.engine import choose
from gateway.placement.model import (
    BackendInfo,
    BackendState,
    ObjectFacts,
    PlacementPolicy,
    PlacementRule,
    RuleMatch,
    TargetSpec,
    Tier,
    Topology,
)
from gateway.placement.tiers import tier_of, with_tier_rules

HOT = BackendInfo("hot", "s1")
WARM = BackendInfo("warm", "s1", tier=Tier.WARM)
COLD = BackendInfo("cold", "s1", tier=Tier.COLD)
ARCHIVE = BackendInfo("archive", "s1", tier=Tier.ARCHIVE)
POLICY = PlacementPolicy(
    "p", 1, (PlacementRule("everything", RuleMatch(), (TargetSpec(backend="hot"),)),)
)


def _placed(policy: PlacementPolicy, storage_class: str, *backends: BackendInfo) -> tuple[str, ...]:
    infos = {b.name: b for b in backends}
    plan = choose(with_tier_rules(policy, infos), ObjectFacts("b", "k", 1, storage_class),
                  Topology("s1", infos))  # fmt: skip
    return plan.sync_targets + plan.async_targets


@pytest.mark.parametrize(
    ("storage_class", "tier"),
    [("STANDARD", Tier.HOT), ("REDUCED_REDUNDANCY", Tier.HOT), ("STANDARD_IA", Tier.WARM),
     ("ONEZONE_IA", Tier.WARM), ("INTELLIGENT_TIERING", Tier.WARM), ("GLACIER_IR", Tier.COLD),
     ("GLACIER", Tier.ARCHIVE), ("DEEP_ARCHIVE", Tier.ARCHIVE)],
)  # fmt: skip
def test_the_documented_mapping(storage_class: str, tier: Tier) -> None:
    assert tier_of(storage_class) is tier


@pytest.mark.parametrize(
    ("storage_class", "placed"),
    [("STANDARD", ("hot",)), ("STANDARD_IA", ("warm",)), ("GLACIER_IR", ("cold",)),
     ("DEEP_ARCHIVE", ("archive",))],
)  # fmt: skip
def test_each_class_goes_to_a_backend_of_its_tier(storage_class: str, placed: tuple[str]) -> None:
    assert _placed(POLICY, storage_class, HOT, WARM, COLD, ARCHIVE) == placed


def test_a_tier_without_backends_leaves_its_classes_to_the_policy() -> None:
    assert _placed(POLICY, "GLACIER_IR", HOT, WARM) == ("hot",)
    draining = BackendInfo("cold", "s2", tier=Tier.COLD, state=BackendState.DRAINING)
    assert _placed(POLICY, "GLACIER_IR", HOT, draining) == ("hot",)
    read_only = BackendInfo("cold", "s2", tier=Tier.COLD, state=BackendState.READ_ONLY)
    assert [r.name for r in with_tier_rules(POLICY, {"cold": read_only}).rules][0] == "tier:cold"


def test_a_rule_naming_the_class_overrides_the_mapping() -> None:
    pinned = PlacementRule(
        "ia-stays-hot", RuleMatch(storage_classes=("STANDARD_IA",)), (TargetSpec(backend="hot"),)
    )
    policy = PlacementPolicy("p", 1, (pinned, *POLICY.rules))
    assert _placed(policy, "STANDARD_IA", HOT, WARM, COLD) == ("hot",)
    # ONEZONE_IA shares the tier but is not named: it still goes warm.
    assert _placed(policy, "ONEZONE_IA", HOT, WARM, COLD) == ("warm",)


def test_a_policy_is_unchanged_without_other_tiers() -> None:
    assert with_tier_rules(POLICY, {"hot": HOT}) is POLICY
