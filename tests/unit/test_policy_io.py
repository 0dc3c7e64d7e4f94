"""Placement policies to and from plain dicts: exact round trips and refused malformed input."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

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
from gateway.placement.policy_io import policy_from_dict, policy_to_dict

RICH = PlacementPolicy(
    "multi-cloud",
    7,
    (
        PlacementRule(
            "big-gold",
            RuleMatch(
                buckets=("media", "backups"),
                key_prefix="videos/",
                min_size_bytes=0,
                max_size_bytes=10**12,
                storage_classes=("STANDARD", "STANDARD_IA"),
                tags={"class": "gold", "team": "é😀"},
            ),
            (
                TargetSpec(backend="a"),
                TargetSpec(site="s2", tier=Tier.WARM),
                TargetSpec(tier=Tier.ARCHIVE, asynchronous=True),
                TargetSpec(),
            ),
            WriteMode.QUORUM,
            2,
            ReadPreference.LATENCY,
            distinct_sites=True,
        ),
        PlacementRule("primary", RuleMatch(key_prefix="logs/"), (TargetSpec(backend="b"),)),
        PlacementRule(
            "rest",
            RuleMatch(),
            (TargetSpec(backend="a"), TargetSpec(backend="c", asynchronous=True)),
            WriteMode.PRIMARY_ASYNC,
            read_preference=ReadPreference.CHEAPEST,
        ),
    ),
)

SUGGESTED: dict[str, Any] = {
    "name": "default",
    "version": 1,
    "rules": [
        {
            "name": "r1",
            "match": {
                "buckets": [],
                "key_prefix": "",
                "min_size_bytes": None,
                "max_size_bytes": None,
                "storage_classes": [],
                "tags": {},
            },
            "replicas": [
                {"backend": "a"},
                {"site": "s2", "tier": "hot"},
                {"backend": "c", "async": True},
            ],
            "write_mode": "quorum",
            "quorum": 1,
            "read_preference": "local",
            "distinct_sites": True,
        }
    ],
}


def test_a_policy_survives_json_exactly() -> None:
    stored = json.loads(json.dumps(policy_to_dict(RICH)))
    assert policy_from_dict(stored) == RICH


def test_the_documented_shape_round_trips_key_for_key() -> None:
    parsed = policy_from_dict(SUGGESTED)
    assert parsed.rules[0].replicas == (
        TargetSpec(backend="a"),
        TargetSpec(site="s2", tier=Tier.HOT),
        TargetSpec(backend="c", asynchronous=True),
    )
    assert (parsed.rules[0].write_mode, parsed.rules[0].quorum) == (WriteMode.QUORUM, 1)
    assert policy_to_dict(parsed) == SUGGESTED


def test_optional_keys_take_their_defaults() -> None:
    parsed = policy_from_dict(
        {"name": "p", "rules": [{"name": "r", "replicas": [{"backend": "a"}]}]}
    )
    assert parsed == PlacementPolicy(
        "p", 1, (PlacementRule("r", RuleMatch(), (TargetSpec(backend="a"),)),)
    )


def test_parsing_accepts_tuples_and_leaves_its_input_alone() -> None:
    data = copy.deepcopy(SUGGESTED)
    data["rules"][0]["match"]["buckets"] = ("x", "y")
    before = copy.deepcopy(data)
    assert policy_from_dict(data).rules[0].match.buckets == ("x", "y")
    assert data == before


def rule_with(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"name": "r", "replicas": [{"backend": "a"}]}
    return {"name": "p", "rules": [{**base, **fields}]}


def match_with(**fields: Any) -> dict[str, Any]:
    return rule_with(match=fields)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "policy: expected an object"),
        ({"rules": []}, "policy: missing required key 'name'"),
        ({"name": "p"}, "policy: missing required key 'rules'"),
        ({"name": "p", "rules": [], "owner": "x"}, "policy: unknown key 'owner'"),
        ({"name": "", "rules": []}, "name: must not be empty"),
        ({"name": 3, "rules": []}, "name: expected a string, got int 3"),
        ({"name": "p", "version": 0, "rules": []}, "version: must be at least 1"),
        ({"name": "p", "version": "1", "rules": []}, "version: expected an integer"),
        ({"name": "p", "version": True, "rules": []}, "version: expected an integer, got bool"),
        ({"name": "p", "rules": {}}, "rules: expected an array"),
        ({"name": "p", "rules": ["r"]}, r"rules\[0\]: expected an object"),
        ({"name": "p", "rules": [{"name": "r"}]}, r"rules\[0\]: missing required key 'replicas'"),
        (rule_with(mode="all"), r"rules\[0\]: unknown key 'mode'"),
        (rule_with(name=None), r"rules\[0\].name: expected a string, got null"),
        (rule_with(replicas="a"), r"rules\[0\].replicas: expected an array"),
        (rule_with(replicas=["a"]), r"rules\[0\].replicas\[0\]: expected an object"),
        (rule_with(replicas=[{"bucket": "a"}]), r"replicas\[0\]: unknown key 'bucket'"),
        (rule_with(replicas=[{"backend": ""}]), r"replicas\[0\].backend: must not be empty"),
        (rule_with(replicas=[{"site": 2}]), r"replicas\[0\].site: expected a string"),
        (
            rule_with(replicas=[{"tier": "lukewarm"}]),
            r"replicas\[0\].tier: unknown value 'lukewarm'",
        ),
        (rule_with(replicas=[{"tier": "HOT"}]), r"tier: unknown value 'HOT'; expected one of hot"),
        (
            rule_with(replicas=[{"backend": "a", "async": "yes"}]),
            r"replicas\[0\].async: expected true",
        ),
        (rule_with(write_mode="some"), r"rules\[0\].write_mode: unknown value 'some'"),
        (rule_with(write_mode=1), r"write_mode: expected one of all, quorum, primary\+async"),
        (rule_with(quorum="2"), r"rules\[0\].quorum: expected an integer"),
        (rule_with(quorum=0), r"rules\[0\].quorum: must be at least 1"),
        (rule_with(quorum=1.0), r"rules\[0\].quorum: expected an integer, got float"),
        (rule_with(read_preference="nearest"), r"read_preference: unknown value 'nearest'"),
        (rule_with(distinct_sites=1), r"distinct_sites: expected true or false, got int"),
        (rule_with(match=[]), r"rules\[0\].match: expected an object"),
        (match_with(prefix="x"), r"rules\[0\].match: unknown key 'prefix'"),
        (match_with(buckets="b"), r"match.buckets: expected an array"),
        (match_with(buckets=["b", 1]), r"match.buckets\[1\]: expected a string"),
        (match_with(key_prefix=None), r"match.key_prefix: expected a string, got null"),
        (match_with(min_size_bytes=-1), r"match.min_size_bytes: must be at least 0, got -1"),
        (match_with(max_size_bytes=-5), r"match.max_size_bytes: must be at least 0"),
        (match_with(max_size_bytes="1G"), r"match.max_size_bytes: expected an integer"),
        (match_with(storage_classes=[None]), r"storage_classes\[0\]: expected a string"),
        (match_with(tags=["k"]), r"match.tags: expected an object"),
        (match_with(tags={"k": 1}), r"match.tags.k: expected a string"),
        (match_with(tags={1: "v"}), r"match.tags key: expected a string"),
    ],
)
def test_malformed_input_is_refused_naming_the_field(data: Any, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        policy_from_dict(data)


def test_the_output_is_plain_json() -> None:
    text = json.dumps(policy_to_dict(RICH), sort_keys=True)
    assert '"write_mode": "quorum"' in text
    assert '"tier": "archive"' in text
    assert '"async": true' in text
