"""What lifecycle rules make due, table-driven from the rules AWS documents."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from gateway.lifecycle.actions import Due, Kind, actions_for_key, due_at, upload_due
from gateway.lifecycle.filters import Filter
from gateway.lifecycle.rules import (
    Expiration,
    NoncurrentExpiration,
    NoncurrentTransition,
    Rule,
    Transition,
)

T0 = datetime(2030, 3, 10, 15, 30, tzinfo=UTC)


@dataclass(frozen=True)
class V:
    name: str
    created_at: datetime = T0
    key: str = "logs/a"
    size_bytes: int = 100
    tags: dict[str, str] = field(default_factory=dict)
    storage_class: str = "STANDARD"
    is_delete_marker: bool = False
    transitioning: bool = False


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def _rule(**actions: object) -> Rule:
    return Rule("r", True, Filter(prefix="logs/"), **actions)  # type: ignore[arg-type]


def _summary(dues: list[Due[V]]) -> list[tuple[str, str, str | None]]:
    return [(due.kind.value, due.version.name, due.storage_class) for due in dues]


def test_due_at_rounds_up_to_the_next_midnight_utc() -> None:
    assert due_at(T0, 1) == datetime(2030, 3, 12, tzinfo=UTC)
    assert due_at(datetime(2030, 3, 10, tzinfo=UTC), 1) == datetime(2030, 3, 11, tzinfo=UTC)
    assert due_at(T0, 0) == datetime(2030, 3, 11, tzinfo=UTC)
    assert due_at(datetime(9999, 12, 30, tzinfo=UTC), 5) == datetime.max.replace(tzinfo=UTC)


EXPIRE_30 = _rule(expiration=Expiration(days=30))
TIERS = _rule(transitions=(Transition("STANDARD_IA", days=30), Transition("GLACIER", days=90)))
NONCURRENT = _rule(
    noncurrent_expiration=NoncurrentExpiration(10, newer_noncurrent_versions=1),
    noncurrent_transitions=(NoncurrentTransition("GLACIER_IR", 5),),
)
MARKERS = _rule(expiration=Expiration(expired_object_delete_marker=True))

Expected = list[tuple[str, str, str | None]]
CASES: list[tuple[list[Rule], list[V], datetime, Expected]] = [
    # Expiration of the current version, by days (rounded up to midnight) and by date.
    ([EXPIRE_30], [V("cur")], day(30), []),
    ([EXPIRE_30], [V("cur")], day(31), [("expire", "cur", None)]),
    ([_rule(expiration=Expiration(date=day(5)))], [V("cur")], day(5), [("expire", "cur", None)]),
    # Outside the filter nothing happens.
    ([EXPIRE_30], [V("cur", key="data/a")], day(99), []),
    ([Rule("t", True, Filter(tags=(("tier", "x"),)), Expiration(days=1))],
     [V("cur", tags={"tier": "y"})], day(9), []),
    ([Rule("s", True, Filter(size_greater_than=100), Expiration(days=1))], [V("cur")], day(9), []),
    # Transitions: the coldest class due, never back up, not while one is unfinished.
    ([TIERS], [V("cur")], day(31), [("transition", "cur", "STANDARD_IA")]),
    ([TIERS], [V("cur")], day(91), [("transition", "cur", "GLACIER")]),
    ([TIERS], [V("cur", storage_class="GLACIER")], day(91), []),
    ([TIERS], [V("cur", transitioning=True)], day(91), []),
    # Expiration beats transition, but waits for an unfinished transition.
    ([TIERS, EXPIRE_30], [V("cur")], day(91), [("expire", "cur", None)]),
    ([EXPIRE_30], [V("cur", transitioning=True)], day(91), []),
    # Noncurrent versions count from their successor and keep the newest ones.
    ([NONCURRENT], [V("cur", created_at=day(20)), V("n1", created_at=day(10)), V("n2")],
     day(16), [("transition", "n2", "GLACIER_IR")]),
    ([NONCURRENT], [V("cur", created_at=day(20)), V("n1", created_at=day(10)), V("n2")],
     day(26), [("transition", "n1", "GLACIER_IR"), ("remove", "n2", None)]),
    ([NONCURRENT], [V("cur", created_at=day(20)), V("n1", created_at=day(10)), V("n2")],
     day(99), [("transition", "n1", "GLACIER_IR"), ("remove", "n2", None)]),
    # A current delete marker is removed only once no noncurrent version is left.
    ([MARKERS], [V("dm", is_delete_marker=True, size_bytes=0)], day(0), [("remove", "dm", None)]),
    ([MARKERS], [V("dm", is_delete_marker=True, size_bytes=0), V("old")], day(99), []),
    # Expiration in days clears an expired delete marker once it is that old.
    ([EXPIRE_30], [V("dm", is_delete_marker=True, size_bytes=0)], day(29), []),
    ([EXPIRE_30], [V("dm", is_delete_marker=True, size_bytes=0)], day(31),
     [("remove", "dm", None)]),
    # Noncurrent delete markers expire like other noncurrent versions.
    ([_rule(noncurrent_expiration=NoncurrentExpiration(1))],
     [V("cur", created_at=day(1)), V("dm", is_delete_marker=True, size_bytes=0)], day(3),
     [("remove", "dm", None)]),
]  # fmt: skip


@pytest.mark.parametrize(("rules", "versions", "now", "expected"), CASES)
def test_actions_for_key(
    rules: list[Rule], versions: list[V], now: datetime, expected: Expected
) -> None:
    assert _summary(actions_for_key(rules, versions, now)) == expected


def test_every_due_kind_is_covered() -> None:
    kinds = {kind for _, _, _, expected in CASES for kind, _, _ in expected}
    assert kinds == {kind.value for kind in Kind}


@pytest.mark.parametrize(
    ("key", "now", "due"),
    [("logs/u", day(7), False), ("logs/u", day(8), True), ("data/u", day(99), False)],
)
def test_incomplete_uploads_are_aborted_after_their_days(
    key: str, now: datetime, due: bool
) -> None:
    rules = [_rule(abort_incomplete_days=7)]
    assert upload_due(rules, key, T0, now) is due
