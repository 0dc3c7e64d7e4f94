"""Acceptance 8 of issue #3, end to end: a node whose config holds a bad placement policy
refuses to start, says why in its log, and leaves the database exactly as it was."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.gateway_process import GatewayProcess
from tests.placement.conftest import Ledger, Topology, spread_policy


def _rule(replicas: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"name": "r", "replicas": replicas, **extra}


BAD_POLICIES = {
    "unknown backend": (
        [_rule([{"backend": "local"}, {"backend": "nowhere"}])],
        "unknown backend 'nowhere'",
    ),
    "W > N": (
        [_rule([{"backend": "local"}, {"backend": "sw"}], write_mode="quorum", quorum=3)],
        "exceeds the 2 synchronous replicas",
    ),
    "impossible distinct_sites": (
        [_rule([{"backend": "sw"}, {"site": "s2"}], distinct_sites=True)],
        "distinct_sites",
    ),
    "shadowed rule": (
        [
            {"name": "everything", "replicas": [{"backend": "local"}]},
            {"name": "logs", "match": {"key_prefix": "logs/"}, "replicas": [{"backend": "sw"}]},
        ],
        "rule 'logs' can never match",
    ),
}


def _snapshot(ledger: Ledger) -> dict[str, list[dict[str, Any]]]:
    return {
        table: ledger.fetch(f"SELECT * FROM {table} ORDER BY 1, 2")
        for table in ("placement_policies", "sites", "backends", "links")
    }


@dataclass
class Seeded:
    topology: Topology
    database_url: str
    before: dict[str, list[dict[str, Any]]]


@pytest.fixture(scope="module")
def seeded(
    topology_factory: Callable[[], Topology], start_module_gateway: Callable[..., GatewayProcess]
) -> Seeded:
    """A database a node with a good policy already started on (and stopped)."""
    topology = topology_factory()
    good = start_module_gateway(topology.config([spread_policy()]))
    good.stop()
    before = _snapshot(Ledger(good.database_url))
    assert [p["name"] for p in before["placement_policies"]] == ["default"]
    return Seeded(topology, good.database_url, before)


@pytest.mark.parametrize("case", sorted(BAD_POLICIES))
def test_bad_policy_refuses_to_start_and_changes_nothing(
    case: str, seeded: Seeded, tmp_path: Path
) -> None:
    rules, message = BAD_POLICIES[case]
    config = seeded.topology.config([spread_policy(), {"name": "broken", "rules": rules}])
    # A new backend at a new site in the same file must not be seeded either.
    config["backends"].append(
        {"name": "extra", "driver": "localfs", "site": "s9", "path": str(tmp_path / "extra")}
    )
    bad = GatewayProcess(tmp_path / "bad", seeded.database_url, config)
    try:
        with pytest.raises(RuntimeError, match="exited early"):
            bad.start()
    finally:
        bad.stop()

    log = bad.log_tail(80)
    assert "placement policy 'broken' is refused" in log, log
    assert message in log, log
    assert _snapshot(Ledger(seeded.database_url)) == seeded.before
