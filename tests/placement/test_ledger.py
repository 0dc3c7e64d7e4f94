"""The placements ledger as an operator queries it: under-replicated versions, versions
that live only on one backend, and bytes per backend."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from tests.conftest import client_for
from tests.gateway_process import GatewayProcess
from tests.placement.conftest import Topology, poll
from tests.servers import random_name


def _ledger(gateway: GatewayProcess, *args: str) -> dict[str, Any]:
    code, result = gateway.cli("ledger", *args)
    assert code == 0, result
    return result


def test_ledger_queries(
    topology_factory: Callable[[], Topology], start_test_gateway: Callable[..., GatewayProcess]
) -> None:
    topology = topology_factory()
    config = topology.config()
    # The asynchronous replica (mo) is never written during the test: the ledger stays put.
    config["replication"].update(interval_s=3600, probe_interval_s=0.3)
    gateway = start_test_gateway(config)
    s3 = client_for(gateway, retries={"max_attempts": 1})
    bucket = random_name()
    s3.create_bucket(Bucket=bucket)
    both = {f"both-{i}": os.urandom(1000 + i) for i in range(4)}
    for key, body in both.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    topology.proxies["sw"].cut()
    poll(lambda: "links failing their probe: s1-sw" in gateway.log_tail(200), "sw down")
    alone = {f"alone-{i}": os.urandom(2000 + i) for i in range(3)}
    for key, body in alone.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    topology.restore()

    under = _ledger(gateway, "under-replicated")["versions"]
    # The rule asks for 3 replicas; mo was never written, sw missed the last three.
    assert {v["key"]: sorted(v["replicas"]) for v in under} == {
        **{k: ["local", "sw"] for k in both},
        **{k: ["local"] for k in alone},
    }
    assert {v["wanted"] for v in under} == {3}
    assert all("mo" in v["queued"] for v in under)

    only_local = _ledger(gateway, "only-on", "--backend", "local")["versions"]
    assert {v["key"]: v["bytes"] for v in only_local} == {k: len(b) for k, b in alone.items()}
    assert _ledger(gateway, "only-on", "--backend", "sw")["versions"] == []

    per_backend = {r["backend"]: r for r in _ledger(gateway, "bytes-per-backend")["backends"]}
    assert per_backend["local"]["bytes"] == sum(map(len, (*both.values(), *alone.values())))
    assert per_backend["local"]["replicas"] == len(both) + len(alone)
    assert (per_backend["sw"]["replicas"], per_backend["sw"]["bytes"]) == (
        len(both), sum(map(len, both.values())),
    )  # fmt: skip
    assert "mo" not in per_backend
    assert per_backend["local"]["tier"] == "hot"
