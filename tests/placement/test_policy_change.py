"""Policies managed at runtime: a new version of a policy re-places existing versions, a
bucket can be given another policy, and a bad policy is refused and changes nothing."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import client_for
from tests.gateway_process import GatewayProcess
from tests.placement.conftest import Ledger, Topology, md5, poll
from tests.servers import random_name


def _cli(gateway: GatewayProcess, *args: str) -> tuple[int, dict[str, Any]]:
    return gateway.cli(*args)


def _write(tmp_path: Path, name: str, document: dict[str, Any]) -> str:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(document))
    return str(path)


def _placed(ledger: Ledger, bucket: str, key: str) -> set[str]:
    rows = ledger.fetch(
        "SELECT p.backend FROM placements p JOIN object_versions v ON v.id = p.version_pk"
        " JOIN buckets b ON b.id = v.bucket_id WHERE b.name = $1 AND v.key = $2"
        " AND v.is_latest AND p.state = 'ok'",
        bucket,
        key,
    )
    return {r["backend"] for r in rows}


def test_policy_changes_at_runtime(
    topology_factory: Callable[[], Topology],
    start_test_gateway: Callable[..., GatewayProcess],
    tmp_path: Path,
) -> None:
    topology = topology_factory()
    config = topology.config()
    config["replication"]["replacement_interval_s"] = 3600  # passes only when asked
    gateway = start_test_gateway(config)
    ledger = Ledger(gateway.database_url)
    s3 = client_for(gateway)
    bucket = random_name()
    s3.create_bucket(Bucket=bucket)
    bodies = {f"k{i}": os.urandom(5000 + i) for i in range(5)}
    for key, body in bodies.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    ledger.wait_replicated(bucket, 3)

    # A bad policy is refused, and the stored policies stay exactly as they were.
    before = _cli(gateway, "policy", "list")[1]
    bad = {"name": "default", "rules": [{"name": "r", "replicas": [{"backend": "nowhere"}]}]}
    code, refused = _cli(gateway, "policy", "set", "--file", _write(tmp_path, "bad", bad))
    assert code == 1
    assert "nowhere" in refused["error"]
    assert _cli(gateway, "policy", "list")[1] == before

    # The default policy now wants local and mo only: sw's replicas become extra.
    two = {"name": "default", "rules": [
        {"name": "here-and-mo", "replicas": [{"backend": "local"}, {"backend": "mo"}]}
    ]}  # fmt: skip
    code, done = _cli(gateway, "policy", "set", "--file", _write(tmp_path, "two", two))
    assert (code, done) == (0, {"set": "default", "version": 2})
    code, dry = _cli(gateway, "rebalance", "--dry-run")
    assert (dry["copies"], dry["retirements"]) == (0, len(bodies))
    code, moved = _cli(gateway, "rebalance")
    assert (moved["copies"], moved["retirements"]) == (0, len(bodies))
    assert all(_placed(ledger, bucket, key) == {"local", "mo"} for key in bodies)
    for key, body in bodies.items():
        assert md5(s3.get_object(Bucket=bucket, Key=key)["Body"].read()) == md5(body)
    poll(lambda: ledger.deletions_length() == 0, "sw replicas deleted")

    # A second policy, assigned to one bucket, takes effect on the running gateway.
    remote = {"name": "remote", "rules": [
        {"name": "clouds", "replicas": [{"backend": "sw"}, {"backend": "mo"}]}
    ]}  # fmt: skip
    assert _cli(gateway, "policy", "set", "--file", _write(tmp_path, "remote", remote))[0] == 0
    other = random_name()
    s3.create_bucket(Bucket=other)
    code, assigned = _cli(gateway, "policy", "assign", "--bucket", other, "--policy", "remote")
    assert (code, assigned) == (0, {"bucket": other, "policy": "remote"})
    attempt = iter(range(10_000))

    def uses_remote() -> bool:
        key = f"n{next(attempt)}"
        s3.put_object(Bucket=other, Key=key, Body=b"remote")
        return _placed(ledger, other, key) == {"sw", "mo"}

    # Nodes reread policies every few seconds.
    poll(uses_remote, "the new policy in force", timeout_s=20)
    assert _cli(gateway, "policy", "assign", "--bucket", other, "--policy", "nope")[0] == 1
