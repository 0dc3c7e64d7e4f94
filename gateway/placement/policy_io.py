"""Placement policies as plain JSON-able dicts: the admin API, the config file and the jsonb column.

Format constant: stored policies are read back with ``policy_from_dict``; renaming a key makes
them unreadable. The shape::

    {"name": "default", "version": 1, "rules": [{
        "name": "r1",
        "match": {"buckets": [], "key_prefix": "", "min_size_bytes": null,
                  "max_size_bytes": null, "storage_classes": [], "tags": {}},
        "replicas": [{"backend": "a"}, {"site": "s2", "tier": "hot"},
                     {"backend": "c", "async": true, "encrypt": true}],
        "write_mode": "quorum", "quorum": 1, "read_preference": "local",
        "distinct_sites": true}]}

``version`` (default 1), ``match`` and its keys, and every rule key but ``name`` and
``replicas`` are optional. Parsing checks shape only; ``engine.validate_policy`` checks the
policy against a topology.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, TypeVar

from gateway.placement.model import (
    PlacementPolicy,
    PlacementRule,
    PolicyError,
    ReadPreference,
    RuleMatch,
    TargetSpec,
    Tier,
    WriteMode,
)

_E = TypeVar("_E", bound=StrEnum)

_POLICY_KEYS = frozenset({"name", "version", "rules"})
_RULE_KEYS = frozenset(
    {"name", "match", "replicas", "write_mode", "quorum", "read_preference", "distinct_sites"}
)
_MATCH_KEYS = frozenset(
    {"buckets", "key_prefix", "min_size_bytes", "max_size_bytes", "storage_classes", "tags"}
)
_REPLICA_KEYS = frozenset({"backend", "site", "tier", "async", "encrypt"})


# -- to dicts ------------------------------------------------------------------------------


def policy_to_dict(policy: PlacementPolicy) -> dict[str, Any]:
    """The JSON-able form of ``policy``; ``policy_from_dict`` gives back an equal policy."""
    return {
        "name": policy.name,
        "version": policy.version,
        "rules": [_rule_to_dict(rule) for rule in policy.rules],
    }


def _rule_to_dict(rule: PlacementRule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "match": _match_to_dict(rule.match),
        "replicas": [_replica_to_dict(spec) for spec in rule.replicas],
        "write_mode": rule.write_mode.value,
        "quorum": rule.quorum,
        "read_preference": rule.read_preference.value,
        "distinct_sites": rule.distinct_sites,
    }


def _match_to_dict(match: RuleMatch) -> dict[str, Any]:
    return {
        "buckets": list(match.buckets),
        "key_prefix": match.key_prefix,
        "min_size_bytes": match.min_size_bytes,
        "max_size_bytes": match.max_size_bytes,
        "storage_classes": list(match.storage_classes),
        "tags": dict(match.tags),
    }


def _replica_to_dict(spec: TargetSpec) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if spec.backend is not None:
        data["backend"] = spec.backend
    if spec.site is not None:
        data["site"] = spec.site
    if spec.tier is not None:
        data["tier"] = spec.tier.value
    if spec.asynchronous:
        data["async"] = True
    if spec.encrypt:
        data["encrypt"] = True
    return data


# -- from dicts ----------------------------------------------------------------------------


def policy_from_dict(data: Mapping[str, Any]) -> PlacementPolicy:
    """Parse a policy; PolicyError naming the offending field on any malformed input."""
    obj = _object(data, "policy", _POLICY_KEYS, required=("name", "rules"))
    rules = _array(obj["rules"], "rules")
    return PlacementPolicy(
        name=_name(obj["name"], "name"),
        version=_integer(obj.get("version", 1), "version", minimum=1),
        rules=tuple(_rule(item, f"rules[{i}]") for i, item in enumerate(rules)),
    )


def _rule(data: Any, where: str) -> PlacementRule:
    obj = _object(data, where, _RULE_KEYS, required=("name", "replicas"))
    replicas = _array(obj["replicas"], f"{where}.replicas")
    quorum = obj.get("quorum")
    return PlacementRule(
        name=_name(obj["name"], f"{where}.name"),
        match=_match(obj.get("match", {}), f"{where}.match"),
        replicas=tuple(_replica(item, f"{where}.replicas[{i}]") for i, item in enumerate(replicas)),
        write_mode=_enum(WriteMode, obj.get("write_mode", "all"), f"{where}.write_mode"),
        quorum=None if quorum is None else _integer(quorum, f"{where}.quorum", minimum=1),
        read_preference=_enum(
            ReadPreference, obj.get("read_preference", "local"), f"{where}.read_preference"
        ),
        distinct_sites=_boolean(obj.get("distinct_sites", False), f"{where}.distinct_sites"),
    )


def _match(data: Any, where: str) -> RuleMatch:
    obj = _object(data, where, _MATCH_KEYS)
    low, high = obj.get("min_size_bytes"), obj.get("max_size_bytes")
    return RuleMatch(
        buckets=_strings(obj.get("buckets", []), f"{where}.buckets"),
        key_prefix=_string(obj.get("key_prefix", ""), f"{where}.key_prefix"),
        min_size_bytes=None if low is None else _integer(low, f"{where}.min_size_bytes"),
        max_size_bytes=None if high is None else _integer(high, f"{where}.max_size_bytes"),
        storage_classes=_strings(obj.get("storage_classes", []), f"{where}.storage_classes"),
        tags=_tags(obj.get("tags", {}), f"{where}.tags"),
    )


def _replica(data: Any, where: str) -> TargetSpec:
    obj = _object(data, where, _REPLICA_KEYS)
    backend, site, tier = obj.get("backend"), obj.get("site"), obj.get("tier")
    return TargetSpec(
        backend=None if backend is None else _name(backend, f"{where}.backend"),
        site=None if site is None else _name(site, f"{where}.site"),
        tier=None if tier is None else _enum(Tier, tier, f"{where}.tier"),
        asynchronous=_boolean(obj.get("async", False), f"{where}.async"),
        encrypt=_boolean(obj.get("encrypt", False), f"{where}.encrypt"),
    )


# -- JSON value checks ---------------------------------------------------------------------


def _object(
    data: Any, where: str, allowed: frozenset[str], required: tuple[str, ...] = ()
) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise PolicyError(f"{where}: expected an object, got {_kind(data)}")
    unknown = sorted(str(key) for key in data if key not in allowed)
    if unknown:
        raise PolicyError(
            f"{where}: unknown key {unknown[0]!r}; expected one of {', '.join(sorted(allowed))}"
        )
    missing = [key for key in required if key not in data]
    if missing:
        raise PolicyError(f"{where}: missing required key {missing[0]!r}")
    return data


def _array(data: Any, where: str) -> list[Any] | tuple[Any, ...]:
    if not isinstance(data, list | tuple):
        raise PolicyError(f"{where}: expected an array, got {_kind(data)}")
    return data


def _string(data: Any, where: str) -> str:
    if not isinstance(data, str):
        raise PolicyError(f"{where}: expected a string, got {_kind(data)}")
    return data


def _name(data: Any, where: str) -> str:
    if not _string(data, where):
        raise PolicyError(f"{where}: must not be empty")
    return str(data)


def _strings(data: Any, where: str) -> tuple[str, ...]:
    return tuple(_string(item, f"{where}[{i}]") for i, item in enumerate(_array(data, where)))


def _tags(data: Any, where: str) -> dict[str, str]:
    if not isinstance(data, Mapping):
        raise PolicyError(f"{where}: expected an object, got {_kind(data)}")
    return {_string(k, f"{where} key"): _string(v, f"{where}.{k}") for k, v in data.items()}


def _integer(data: Any, where: str, minimum: int = 0) -> int:
    # bool is an int subclass in Python, but `true` is no size or quorum in JSON.
    if not isinstance(data, int) or isinstance(data, bool):
        raise PolicyError(f"{where}: expected an integer, got {_kind(data)}")
    if data < minimum:
        raise PolicyError(f"{where}: must be at least {minimum}, got {data}")
    return data


def _boolean(data: Any, where: str) -> bool:
    if not isinstance(data, bool):
        raise PolicyError(f"{where}: expected true or false, got {_kind(data)}")
    return data


def _enum(kind: type[_E], data: Any, where: str) -> _E:
    choices = ", ".join(member.value for member in kind)
    if not isinstance(data, str):
        raise PolicyError(f"{where}: expected one of {choices}, got {_kind(data)}")
    try:
        return kind(data)
    except ValueError:
        raise PolicyError(f"{where}: unknown value {data!r}; expected one of {choices}") from None


def _kind(data: Any) -> str:
    return "null" if data is None else f"{type(data).__name__} {data!r}"[:80]
