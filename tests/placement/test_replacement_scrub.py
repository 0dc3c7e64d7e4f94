"""Issue #3 acceptance 4 (re-placement, with a dry run that matches what moves) and the
scrub half of acceptance 7 (missing and corrupt replicas found and repaired, orphans)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import client_for
from tests.gateway_process import GatewayProcess
from tests.placement.conftest import Ledger, Topology, md5, poll
from tests.servers import random_name

SIZES = [0, 1, 4096, 65_536, 300_000, 1 << 20]


def selector_policy() -> dict[str, Any]:
    """One replica here, one on any other site: which one is the engine's choice."""
    return {
        "name": "default",
        "rules": [
            {
                "name": "here-and-away",
                "replicas": [{"backend": "local"}, {"tier": "hot"}],
                "write_mode": "all",
                "distinct_sites": True,
            }
        ],
    }


def _cli(gateway: GatewayProcess, *args: str) -> tuple[int, dict[str, Any]]:
    return gateway.cli(*args)


def _placed(ledger: Ledger) -> dict[int, set[str]]:
    rows = ledger.fetch(
        "SELECT v.id, array_agg(p.backend) AS backends FROM object_versions v"
        " JOIN placements p ON p.version_pk = v.id AND p.state = 'ok'"
        " WHERE v.state = 'complete' AND NOT v.is_delete_marker GROUP BY v.id"
    )
    return {r["id"]: set(r["backends"]) for r in rows}


@pytest.fixture
def selector_cluster(
    topology_factory: Callable[[], Topology], start_test_gateway: Callable[..., GatewayProcess]
) -> tuple[Topology, GatewayProcess, Ledger]:
    topology = topology_factory()
    config = topology.config([selector_policy()])
    # Passes run only when the test asks, through the CLI.
    config["replication"]["replacement_interval_s"] = 3600
    gateway = start_test_gateway(config)
    return topology, gateway, Ledger(gateway.database_url)


@pytest.mark.parametrize("state", ["draining", "disabled"])
def test_replacement_restores_the_replica_count_and_the_dry_run_matches(
    selector_cluster: tuple[Topology, GatewayProcess, Ledger], state: str
) -> None:
    topology, gateway, ledger = selector_cluster
    s3 = client_for(gateway)
    bucket = random_name()
    s3.create_bucket(Bucket=bucket)
    bodies = {f"obj-{i}": os.urandom(size) for i, size in enumerate(SIZES)}
    for key, body in bodies.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    before = _placed(ledger)
    assert set(map(frozenset, before.values())) == {frozenset({"local", "sw"})}

    ledger.value("UPDATE backends SET state = $1 WHERE name = 'sw' RETURNING name", state)
    code, dry = _cli(gateway, "rebalance", "--dry-run")
    assert code == 0
    assert dry["dry_run"] is True
    assert (dry["versions"], dry["copies"], dry["retirements"]) == (len(SIZES), len(SIZES), 0)
    assert dry["bytes"] == sum(SIZES)
    assert dry["egress_per_link"] == {"direct:local": sum(SIZES), "s1-mo": sum(SIZES)}
    assert _placed(ledger) == before, "a dry run changes nothing"
    assert ledger.queue_length() == 0

    code, done = _cli(gateway, "rebalance")
    assert code == 0
    assert {k: v for k, v in done.items() if k != "dry_run"} == {
        k: v for k, v in dry.items() if k != "dry_run"
    }
    ledger.wait_replicated(bucket, 3)
    # What moved is exactly what the dry run announced: one verified copy per version on mo.
    moved = ledger.fetch(
        "SELECT sum(size_bytes)::bigint AS total, count(*) AS n FROM placements"
        " WHERE backend = 'mo' AND state = 'ok' AND verified_at IS NOT NULL"
    )[0]
    assert (moved["n"], moved["total"] or 0) == (dry["copies"], dry["bytes"])
    # Reads use both placements during the move; once the copies exist the old one goes.
    code, second = _cli(gateway, "rebalance")
    assert (second["copies"], second["retirements"]) == (0, len(SIZES))
    assert set(map(frozenset, _placed(ledger).values())) == {frozenset({"local", "mo"})}
    for key, body in bodies.items():
        assert md5(s3.get_object(Bucket=bucket, Key=key)["Body"].read()) == md5(body)
    # gc removes the retired bytes from sw.
    poll(lambda: ledger.deletions_length() == 0, "retired replicas deleted")
    prefix = f"b{ledger.value('SELECT id FROM buckets WHERE name = $1', bucket)}/"
    assert not [k for k in topology.keys("sw") if k.startswith(prefix)]
    ledger.value("UPDATE backends SET state = 'active' WHERE name = 'sw' RETURNING name")


def test_scrub_finds_repairs_and_reports(
    selector_cluster: tuple[Topology, GatewayProcess, Ledger],
) -> None:
    topology, gateway, ledger = selector_cluster
    s3 = client_for(gateway)
    bucket = random_name()
    s3.create_bucket(Bucket=bucket)
    bodies = {f"k{i}": os.urandom(10_000 + i) for i in range(6)}
    for key, body in bodies.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    code, clean = _cli(gateway, "scrub", "--full")
    assert code == 0, clean
    assert (clean["missing"], clean["corrupt"], clean["orphans"]) == (0, 0, {})
    assert clean["read_back"] == clean["checked"] == 2 * len(bodies)

    keys = {
        r["key"]: r["backend_key"]
        for r in ledger.fetch(
            "SELECT v.key, p.backend_key FROM object_versions v JOIN placements p"
            " ON p.version_pk = v.id WHERE p.backend = 'local' AND v.state = 'complete'"
        )
    }
    # Damage: flip bytes of one local replica (same size), delete one sw replica, and
    # drop a file no placement knows about.
    victim = topology.local_path / keys["k1"]
    victim.write_bytes(bytes(b ^ 0xFF for b in victim.read_bytes()))
    sw_bucket = topology.buckets["sw"]
    topology.direct_client("sw").delete_object(Bucket=sw_bucket, Key=keys["k2"])
    orphan = topology.local_path / "b999999" / "o" / "zz" / "orphan"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"nobody's")

    code, found = _cli(gateway, "scrub", "--full")
    assert code == 3
    assert (found["missing"], found["corrupt"], found["repaired"]) == (1, 1, 2)
    assert found["orphans"] == {"local": ["b999999/o/zz/orphan"]}
    ledger.wait_replicated(bucket, 2)
    code, after = _cli(gateway, "scrub", "--full")
    assert code == 0
    assert (after["missing"], after["corrupt"]) == (0, 0)
    for key, body in bodies.items():
        assert md5(s3.get_object(Bucket=bucket, Key=key)["Body"].read()) == md5(body)
    assert topology.stored_bytes("local", keys["k1"]) == bodies["k1"]
