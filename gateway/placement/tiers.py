"""Storage classes and tiers: which backends a version of each storage class belongs on. Pure.

The frequent-access classes (STANDARD and the like) are placed by the placement policy's
rules. The others map to a tier: STANDARD_IA, ONEZONE_IA and INTELLIGENT_TIERING to warm,
GLACIER_IR to cold, GLACIER and DEEP_ARCHIVE to archive. A version of such a class is
placed on one backend of its tier, unless a rule of the policy names the storage class
itself (``match.storage_classes``): that rule then decides, so a policy can override the
mapping class by class. A tier with no backend that holds data (active or read-only) leaves
its classes to the policy's rules, so a topology without such backends places them as
before and re-placement moves them back when the last backend of their tier leaves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from gateway.placement.model import (
    BackendInfo,
    BackendState,
    PlacementPolicy,
    PlacementRule,
    RuleMatch,
    TargetSpec,
    Tier,
)

TIER_OF_CLASS: dict[str, Tier] = {
    "STANDARD_IA": Tier.WARM,
    "ONEZONE_IA": Tier.WARM,
    "INTELLIGENT_TIERING": Tier.WARM,
    "GLACIER_IR": Tier.COLD,
    "GLACIER": Tier.ARCHIVE,
    "DEEP_ARCHIVE": Tier.ARCHIVE,
}
# States whose backends hold data, so their tier can take the classes mapped to it.
_HOLDING = (BackendState.ACTIVE, BackendState.READ_ONLY)


def tier_of(storage_class: str) -> Tier:
    return TIER_OF_CLASS.get(storage_class, Tier.HOT)


def is_archive(storage_class: str) -> bool:
    """Versions of these classes are read only from a restored copy (RestoreObject)."""
    return tier_of(storage_class) is Tier.ARCHIVE


def with_tier_rules(
    policy: PlacementPolicy, backends: Mapping[str, BackendInfo]
) -> PlacementPolicy:
    """``policy`` with, before its own rules, one rule per tier present for the storage
    classes of that tier that no rule of ``policy`` names."""
    named = {c for rule in policy.rules for c in rule.match.storage_classes}
    present = {info.tier for info in backends.values() if info.state in _HOLDING}
    added = []
    for tier in (Tier.WARM, Tier.COLD, Tier.ARCHIVE):
        classes = tuple(c for c, t in TIER_OF_CLASS.items() if t is tier and c not in named)
        if classes and tier in present:
            added.append(
                PlacementRule(f"tier:{tier}", RuleMatch(storage_classes=classes),
                              (TargetSpec(tier=tier),))
            )  # fmt: skip
    return replace(policy, rules=(*added, *policy.rules)) if added else policy
