"""Lifecycle configurations: parsed and validated with the error codes AWS answers with, and
rendered as the canonical document that is stored (``buckets.lifecycle``) and shown back.
Pure: no I/O.

The input is the xmltodict shape of a PutBucketLifecycleConfiguration body (below its root);
the canonical document has the same shape, so a stored document parses like a request.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any, TypeVar

from gateway.errors import InvalidArgument, InvalidRequest, InvalidStorageClass, MalformedXML
from gateway.lifecycle.filters import Filter, parse_filter, render_filter
from gateway.s3.xml import as_list, element, integer, only_known, text

TRANSITION_CLASSES = frozenset(
    {"STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"}
)
# AWS keeps an object in S3 Standard this long before it may move to these classes.
IA_CLASSES = frozenset({"STANDARD_IA", "ONEZONE_IA"})
IA_MIN_DAYS = 30
MAX_RULES = 1000
MAX_ID_CHARS = 255
MAX_NEWER_NONCURRENT_VERSIONS = 100
_RULE_ELEMENTS = (
    "ID", "Filter", "Prefix", "Status", "Expiration", "Transition",
    "NoncurrentVersionTransition", "NoncurrentVersionExpiration",
    "AbortIncompleteMultipartUpload",
)  # fmt: skip
T = TypeVar("T")
_SINGLE_ACTIONS = ("Expiration", "NoncurrentVersionExpiration", "AbortIncompleteMultipartUpload")


@dataclass(frozen=True, slots=True)
class Expiration:
    days: int | None = None
    date: datetime | None = None
    expired_object_delete_marker: bool = False


@dataclass(frozen=True, slots=True)
class Transition:
    storage_class: str
    days: int | None = None
    date: datetime | None = None


@dataclass(frozen=True, slots=True)
class NoncurrentTransition:
    storage_class: str
    noncurrent_days: int
    newer_noncurrent_versions: int = 0


@dataclass(frozen=True, slots=True)
class NoncurrentExpiration:
    noncurrent_days: int
    newer_noncurrent_versions: int = 0


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    enabled: bool
    filter: Filter
    expiration: Expiration | None = None
    transitions: tuple[Transition, ...] = ()
    noncurrent_transitions: tuple[NoncurrentTransition, ...] = ()
    noncurrent_expiration: NoncurrentExpiration | None = None
    abort_incomplete_days: int | None = None

    @property
    def has_action(self) -> bool:
        return bool(
            self.expiration or self.transitions or self.noncurrent_transitions
            or self.noncurrent_expiration or self.abort_incomplete_days is not None
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class LifecycleConfiguration:
    rules: tuple[Rule, ...]

    @property
    def enabled_rules(self) -> tuple[Rule, ...]:
        return tuple(rule for rule in self.rules if rule.enabled)


def parse(document: Mapping[str, Any]) -> LifecycleConfiguration:
    """The configuration of a ``LifecycleConfiguration`` body; the S3 error otherwise."""
    only_known(document, ("Rule",), "LifecycleConfiguration")
    raw_rules = as_list(document.get("Rule"))
    if not raw_rules:
        raise MalformedXML("A lifecycle configuration needs at least one Rule.")
    if len(raw_rules) > MAX_RULES:
        raise MalformedXML(f"A lifecycle configuration has at most {MAX_RULES} rules.")
    rules = tuple(_rule(raw) for raw in raw_rules)
    ids = [rule.id for rule in rules]
    if len(set(ids)) != len(ids):
        raise InvalidArgument(
            "Rule ID must be unique. Found same ID for more than one rule", ArgumentName="ID"
        )
    return LifecycleConfiguration(rules)


def _rule(raw: Any) -> Rule:
    fields = element(raw, "Rule")
    only_known(fields, _RULE_ELEMENTS, "Rule")
    for name in _SINGLE_ACTIONS:
        if isinstance(fields.get(name), list):
            raise MalformedXML(f"A rule has at most one {name}.")
    status = text(fields.get("Status"), "Status")
    if status not in ("Enabled", "Disabled"):
        raise MalformedXML("Status must be Enabled or Disabled.")
    rule = Rule(
        id=_rule_id(fields.get("ID")),
        enabled=status == "Enabled",
        filter=parse_filter(fields),
        expiration=_optional(fields, "Expiration", _expiration),
        transitions=tuple(_transition(t) for t in as_list(fields.get("Transition"))),
        noncurrent_transitions=tuple(
            _noncurrent_transition(t) for t in as_list(fields.get("NoncurrentVersionTransition"))
        ),
        noncurrent_expiration=_optional(
            fields, "NoncurrentVersionExpiration", _noncurrent_expiration
        ),
        abort_incomplete_days=_optional(fields, "AbortIncompleteMultipartUpload", _abort_days),
    )
    _check_rule(rule)
    return rule


def _optional(fields: Mapping[str, Any], name: str, parse_one: Callable[[Any], T]) -> T | None:
    return parse_one(fields[name]) if name in fields else None


def _rule_id(value: Any) -> str:
    rule_id = text(value, "ID")
    if len(rule_id) > MAX_ID_CHARS:
        raise InvalidArgument("ID length should not exceed allowed limit of 255", ArgumentName="ID")
    # AWS names a rule that has no ID.
    return rule_id or secrets.token_hex(24)


def _days(value: Any, what: str, message: str, minimum: int) -> int:
    days = integer(value, what)
    if days < minimum:
        raise InvalidArgument(message, ArgumentName=what)
    return days


def _date(value: Any) -> datetime:
    raw = text(value, "Date").strip()
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise MalformedXML("Date must be in ISO 8601 format.") from None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if moment.timetz().replace(tzinfo=None) != time(0):
        raise InvalidArgument("'Date' must be at midnight GMT", ArgumentName="Date")
    return moment


def _one_of(fields: Mapping[str, Any], names: tuple[str, ...], where: str) -> str:
    given = [name for name in names if name in fields]
    if len(given) != 1:
        raise MalformedXML(f"{where} must have exactly one of {', '.join(names)}.")
    return given[0]


def _expiration(raw: Any) -> Expiration:
    fields = element(raw, "Expiration")
    only_known(fields, ("Days", "Date", "ExpiredObjectDeleteMarker"), "Expiration")
    chosen = _one_of(fields, ("Days", "Date", "ExpiredObjectDeleteMarker"), "Expiration")
    if chosen == "Days":
        message = "'Days' for Expiration action must be a positive integer"
        return Expiration(days=_days(fields["Days"], "Days", message, 1))
    if chosen == "Date":
        return Expiration(date=_date(fields["Date"]))
    flag = text(fields["ExpiredObjectDeleteMarker"], "ExpiredObjectDeleteMarker")
    if flag not in ("true", "false"):
        raise MalformedXML("ExpiredObjectDeleteMarker must be true or false.")
    return Expiration(expired_object_delete_marker=flag == "true")


def _storage_class(fields: Mapping[str, Any]) -> str:
    if "StorageClass" not in fields:
        raise MalformedXML("A transition needs a StorageClass.")
    storage_class = text(fields["StorageClass"], "StorageClass")
    if storage_class not in TRANSITION_CLASSES:
        raise InvalidStorageClass(StorageClassRequested=storage_class)
    return storage_class


def _transition_days(value: Any, storage_class: str, what: str, action: str) -> int:
    days = _days(value, what, f"'{what}' in {action} action must be nonnegative", 0)
    if storage_class in IA_CLASSES and days < IA_MIN_DAYS:
        raise InvalidArgument(
            f"'{what}' in {action} action must be greater than or equal to {IA_MIN_DAYS}"
            f" for storageClass '{storage_class}'",
            ArgumentName=what,
        )
    return days


def _transition(raw: Any) -> Transition:
    fields = element(raw, "Transition")
    only_known(fields, ("Days", "Date", "StorageClass"), "Transition")
    chosen = _one_of(fields, ("Days", "Date"), "Transition")
    storage_class = _storage_class(fields)
    if chosen == "Date":
        return Transition(storage_class, date=_date(fields["Date"]))
    days = _transition_days(fields["Days"], storage_class, "Days", "Transition")
    return Transition(storage_class, days=days)


def _newer_versions(fields: Mapping[str, Any]) -> int:
    if "NewerNoncurrentVersions" not in fields:
        return 0
    newer = integer(fields["NewerNoncurrentVersions"], "NewerNoncurrentVersions")
    if not 1 <= newer <= MAX_NEWER_NONCURRENT_VERSIONS:
        raise InvalidArgument(
            "NewerNoncurrentVersions must be an integer between 1 and 100",
            ArgumentName="NewerNoncurrentVersions",
        )
    return newer


def _noncurrent_days(fields: Mapping[str, Any], action: str) -> Any:
    if "NoncurrentDays" not in fields:
        raise MalformedXML(f"{action} needs NoncurrentDays.")
    return fields["NoncurrentDays"]


def _noncurrent_transition(raw: Any) -> NoncurrentTransition:
    action = "NoncurrentVersionTransition"
    fields = element(raw, action)
    only_known(fields, ("NoncurrentDays", "StorageClass", "NewerNoncurrentVersions"), action)
    storage_class = _storage_class(fields)
    raw_days = _noncurrent_days(fields, action)
    days = _transition_days(raw_days, storage_class, "NoncurrentDays", action)
    return NoncurrentTransition(storage_class, days, _newer_versions(fields))


def _noncurrent_expiration(raw: Any) -> NoncurrentExpiration:
    action = "NoncurrentVersionExpiration"
    fields = element(raw, action)
    only_known(fields, ("NoncurrentDays", "NewerNoncurrentVersions"), action)
    message = "'NoncurrentDays' for NoncurrentVersionExpiration action must be a positive integer"
    days = _days(_noncurrent_days(fields, action), "NoncurrentDays", message, 1)
    return NoncurrentExpiration(days, _newer_versions(fields))


def _abort_days(raw: Any) -> int:
    fields = element(raw, "AbortIncompleteMultipartUpload")
    only_known(fields, ("DaysAfterInitiation",), "AbortIncompleteMultipartUpload")
    if "DaysAfterInitiation" not in fields:
        raise MalformedXML("AbortIncompleteMultipartUpload needs DaysAfterInitiation.")
    message = (
        "'DaysAfterInitiation' for AbortIncompleteMultipartUpload action must be a positive integer"
    )
    return _days(fields["DaysAfterInitiation"], "DaysAfterInitiation", message, 1)


def _check_rule(rule: Rule) -> None:
    if not rule.has_action:
        raise InvalidRequest("At least one action needs to be specified in a rule")
    if rule.filter.tags and rule.abort_incomplete_days is not None:
        raise InvalidRequest("AbortIncompleteMultipartUpload cannot be specified with Tags.")
    if rule.filter.tags and rule.expiration and rule.expiration.expired_object_delete_marker:
        raise InvalidRequest("ExpiredObjectDeleteMarker cannot be specified with Tags.")
    _check_transitions(rule)
    _check_noncurrent(rule)


def _check_transitions(rule: Rule) -> None:
    classes = [t.storage_class for t in rule.transitions]
    if len(set(classes)) != len(classes):
        raise InvalidRequest(
            "'StorageClass' must be different for 'Transition' actions in same 'Rule'"
        )
    if len({t.days is None for t in rule.transitions}) > 1:
        raise InvalidRequest(
            "Found mixed 'Date' and 'Days' based Transition actions in lifecycle rule for"
            f" filter '{rule.filter.describe()}'"
        )
    expiration = rule.expiration
    if expiration is None:
        return
    for transition in rule.transitions:
        days_late = expiration.days is not None and (transition.days or 0) >= expiration.days
        date_late = (
            expiration.date is not None
            and transition.date is not None
            and (transition.date >= expiration.date)
        )
        if days_late or date_late:
            what = "Days" if days_late else "Date"
            raise InvalidArgument(
                f"'{what}' in the Expiration action for filter '{rule.filter.describe()}'"
                f" must be greater than '{what}' in the Transition action",
                ArgumentName=what,
            )


def _check_noncurrent(rule: Rule) -> None:
    classes = [t.storage_class for t in rule.noncurrent_transitions]
    if len(set(classes)) != len(classes):
        raise InvalidRequest(
            "'StorageClass' must be different for 'NoncurrentVersionTransition' actions in"
            " same 'Rule'"
        )
    expiration = rule.noncurrent_expiration
    if expiration is None:
        return
    if any(t.noncurrent_days >= expiration.noncurrent_days for t in rule.noncurrent_transitions):
        raise InvalidArgument(
            f"'NoncurrentDays' in the NoncurrentVersionExpiration action for filter"
            f" '{rule.filter.describe()}' must be greater than 'NoncurrentDays' in the"
            " NoncurrentVersionTransition action",
            ArgumentName="NoncurrentDays",
        )


# -- the canonical document ----------------------------------------------------------------


def _iso_date(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _render_expiration(expiration: Expiration) -> dict[str, str]:
    if expiration.days is not None:
        return {"Days": str(expiration.days)}
    if expiration.date is not None:
        return {"Date": _iso_date(expiration.date)}
    return {"ExpiredObjectDeleteMarker": "true" if expiration.expired_object_delete_marker
            else "false"}  # fmt: skip


def _render_transition(transition: Transition) -> dict[str, str]:
    when = (
        {"Days": str(transition.days)}
        if transition.date is None
        else {"Date": _iso_date(transition.date)}
    )
    return {**when, "StorageClass": transition.storage_class}


def _newer(count: int) -> dict[str, str]:
    return {"NewerNoncurrentVersions": str(count)} if count else {}


def render_rule(rule: Rule) -> dict[str, Any]:
    out: dict[str, Any] = {"ID": rule.id, **render_filter(rule.filter)}
    out["Status"] = "Enabled" if rule.enabled else "Disabled"
    if rule.expiration is not None:
        out["Expiration"] = _render_expiration(rule.expiration)
    if rule.transitions:
        out["Transition"] = [_render_transition(t) for t in rule.transitions]
    if rule.noncurrent_transitions:
        out["NoncurrentVersionTransition"] = [
            {"NoncurrentDays": str(t.noncurrent_days), "StorageClass": t.storage_class,
             **_newer(t.newer_noncurrent_versions)}
            for t in rule.noncurrent_transitions
        ]  # fmt: skip
    if rule.noncurrent_expiration is not None:
        nce = rule.noncurrent_expiration
        out["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": str(nce.noncurrent_days),
            **_newer(nce.newer_noncurrent_versions),
        }
    if rule.abort_incomplete_days is not None:
        out["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": str(rule.abort_incomplete_days)
        }
    return out


def render(config: LifecycleConfiguration) -> dict[str, Any]:
    """The canonical document: stored as is, rendered as is under ``LifecycleConfiguration``
    (format constant: changing it makes stored configurations unreadable)."""
    return {"Rule": [render_rule(rule) for rule in config.rules]}
