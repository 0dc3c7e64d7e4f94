"""What a lifecycle configuration makes due, for one key's versions at a given time. Pure.

Times follow AWS: an action due N days after a moment is due at the first midnight UTC at or
after that moment plus N days. Current versions count from their creation, noncurrent ones
from the creation of the version that replaced them. Of everything due for one version,
expiration wins over transition, and a transition goes to the coldest class due, never
back to a warmer one. A version whose transition is unfinished is neither expired nor moved
again until it is done.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Generic, Protocol, TypeVar

from gateway.lifecycle.rules import Expiration, Rule

# How far down the tiers each storage class sits; a transition only ever goes further down.
COLDNESS = {
    "STANDARD": 0, "REDUCED_REDUNDANCY": 0, "INTELLIGENT_TIERING": 1, "STANDARD_IA": 2,
    "ONEZONE_IA": 2, "GLACIER_IR": 3, "GLACIER": 4, "DEEP_ARCHIVE": 5,
}  # fmt: skip
_NEVER = datetime.max.replace(tzinfo=UTC)


class Version(Protocol):
    """What the rules look at in a version (delete markers included)."""

    @property
    def key(self) -> str: ...
    @property
    def size_bytes(self) -> int: ...
    @property
    def tags(self) -> Mapping[str, str]: ...
    @property
    def storage_class(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def is_delete_marker(self) -> bool: ...
    @property
    def transitioning(self) -> bool: ...


V = TypeVar("V", bound=Version)


class Kind(StrEnum):
    # The current object goes: a delete marker takes its place, or, unversioned, it is deleted.
    EXPIRE = "expire"
    # One version is deleted for good: a noncurrent one, or an expired delete marker.
    REMOVE = "remove"
    TRANSITION = "transition"


@dataclass(frozen=True, slots=True)
class Due(Generic[V]):
    kind: Kind
    version: V
    storage_class: str | None = None


def due_at(moment: datetime, days: int) -> datetime:
    """The first midnight UTC at or after ``moment`` plus ``days``."""
    try:
        end = moment.astimezone(UTC) + timedelta(days=days)
        midnight = end.replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight if midnight == end else midnight + timedelta(days=1)
    except OverflowError:
        return _NEVER


def actions_for_key(rules: Sequence[Rule], versions: Sequence[V], now: datetime) -> list[Due[V]]:
    """What is due for one key. ``versions`` are its complete versions, newest (the current
    one) first; ``rules`` the enabled rules of the bucket."""
    if not versions:
        return []
    found = [_current(rules, versions[0], len(versions) > 1, now)]
    for newer_noncurrent, version in enumerate(versions[1:]):
        # Noncurrent since its successor (the version just newer) was written.
        since = versions[newer_noncurrent].created_at
        found.append(_noncurrent(rules, version, since, newer_noncurrent, now))
    return [due for due in found if due is not None]


def upload_due(rules: Sequence[Rule], key: str, initiated_at: datetime, now: datetime) -> bool:
    """Whether an incomplete multipart upload is to be aborted. Uploads are matched on the
    prefix only: they have no tags (such rules are refused) and no size yet."""
    return any(
        rule.abort_incomplete_days is not None
        and key.startswith(rule.filter.prefix or "")
        and due_at(initiated_at, rule.abort_incomplete_days) <= now
        for rule in rules
    )


def _matching(rules: Sequence[Rule], version: Version) -> list[Rule]:
    return [r for r in rules if r.filter.matches(version.key, version.size_bytes, version.tags)]


def _reached(days: int | None, date: datetime | None, since: datetime, now: datetime) -> bool:
    if date is not None:
        return date <= now
    return days is not None and due_at(since, days) <= now


def _expired(expiration: Expiration | None, created_at: datetime, now: datetime) -> bool:
    return expiration is not None and _reached(expiration.days, expiration.date, created_at, now)


def _removes_marker(expiration: Expiration | None, marker: Version, now: datetime) -> bool:
    # Expiration in days also clears expired delete markers once they are that old (AWS).
    if expiration is None:
        return False
    days = expiration.days
    return expiration.expired_object_delete_marker or (
        days is not None and due_at(marker.created_at, days) <= now
    )


def _current(rules: Sequence[Rule], version: V, has_older: bool, now: datetime) -> Due[V] | None:
    matching = _matching(rules, version)
    if version.is_delete_marker:
        # Only a delete marker with no noncurrent version behind it is "expired".
        if not has_older and any(_removes_marker(r.expiration, version, now) for r in matching):
            return Due(Kind.REMOVE, version)
        return None
    if version.transitioning:
        return None
    if any(_expired(r.expiration, version.created_at, now) for r in matching):
        return Due(Kind.EXPIRE, version)
    reached = [
        t.storage_class
        for r in matching
        for t in r.transitions
        if _reached(t.days, t.date, version.created_at, now)
    ]
    return _transition(version, reached)


def _noncurrent(
    rules: Sequence[Rule], version: V, since: datetime, newer: int, now: datetime
) -> Due[V] | None:
    if version.transitioning:
        return None
    matching = _matching(rules, version)
    for rule in matching:
        expiration = rule.noncurrent_expiration
        if (
            expiration is not None
            and newer >= expiration.newer_noncurrent_versions
            and due_at(since, expiration.noncurrent_days) <= now
        ):
            return Due(Kind.REMOVE, version)
    if version.is_delete_marker:
        return None
    reached = [
        t.storage_class
        for r in matching
        for t in r.noncurrent_transitions
        if newer >= t.newer_noncurrent_versions and due_at(since, t.noncurrent_days) <= now
    ]
    return _transition(version, reached)


def _transition(version: V, reached: list[str]) -> Due[V] | None:
    target = max(reached, key=lambda c: COLDNESS.get(c, 0), default=None)
    if target is None or COLDNESS.get(target, 0) <= COLDNESS.get(version.storage_class, 0):
        return None
    return Due(Kind.TRANSITION, version, target)
