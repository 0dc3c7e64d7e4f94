"""Issue #6, access-based tiering: versions not read for N days move down a tier, and a
read brings them back up.

``local`` (site s1) is the hot tier, ``sw`` (SeaweedFS, s2) the warm one and ``mo`` (moto,
s3) the cold one; the policy keeps STANDARD objects on ``local``. The bucket's versions are
made 40 days old in the database (time is injected, as for lifecycle, and a read is always
now), so the time since the last read and the time since the write differ.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.admin.client import AdminClient
from tests.lifecycle.conftest import NO_SCHEDULED_PASS, run_lifecycle
from tests.placement.conftest import Cluster, Ledger, Topology, md5, no_retry_client
from tests.servers import random_name

TIERS = {"local": "hot", "sw": "warm", "mo": "cold"}


@pytest.fixture(scope="module")
def tiered(
    topology_factory: Callable[[], Topology], start_module_gateway: Callable[..., Any]
) -> Cluster:
    topology = topology_factory()
    policy = {"name": "default", "rules": [{"name": "hot", "replicas": [{"backend": "local"}]}]}
    config = topology.config([policy], lifecycle=NO_SCHEDULED_PASS)
    for backend in config["backends"]:
        backend["tier"] = TIERS[backend["name"]]
    gateway = start_module_gateway(config)
    return Cluster(topology, gateway, Ledger(gateway.database_url), no_retry_client(gateway))


def _settle(cluster: Cluster, days: float, timeout_s: float = 60) -> None:
    """Run passes at ``days`` until no transition waits (copies verified, switched)."""
    deadline = time.monotonic() + timeout_s
    while run_lifecycle(cluster.gateway, days)["transitions_waiting"]:
        assert time.monotonic() < deadline, cluster.gateway.log_tail()
        time.sleep(0.3)


def _where(cluster: Cluster, bucket: str) -> dict[str, tuple[str, list[str]]]:
    """Per key: (storage class, backends of its ok placements)."""
    rows = cluster.ledger.fetch(
        "SELECT v.key, v.storage_class, array_agg(p.backend ORDER BY p.backend) AS backends"
        " FROM object_versions v JOIN buckets b ON b.id = v.bucket_id"
        " JOIN placements p ON p.bucket_id = v.bucket_id AND p.version_pk = v.id"
        " AND p.state = 'ok'"
        " WHERE b.name = $1 AND v.is_latest GROUP BY v.key, v.storage_class",
        bucket,
    )
    return {r["key"]: (r["storage_class"], list(r["backends"])) for r in rows}


def _read(cluster: Cluster, bucket: str, key: str, body: bytes) -> None:
    assert md5(cluster.s3.get_object(Bucket=bucket, Key=key)["Body"].read()) == md5(body)


def test_unread_versions_move_down_and_a_read_brings_one_back(tiered: Cluster) -> None:
    bucket = random_name("tier-")
    tiered.s3.create_bucket(Bucket=bucket)
    objects = {f"k{n}": os.urandom(3000 + n) for n in range(3)}
    for key, body in objects.items():
        tiered.s3.put_object(Bucket=bucket, Key=key, Body=body)
    admin = AdminClient.of(tiered.gateway)
    setting = {"warm_after_days": 30, "cold_after_days": 90}
    assert admin.ok("PUT", f"/buckets/{bucket}/tiering", setting)["access_tiering"] == setting
    tiered.ledger.fetch(
        "UPDATE object_versions SET created_at = created_at - interval '40 days'"
        " WHERE bucket_id = (SELECT id FROM buckets WHERE name = $1)",
        bucket,
    )

    # Written 40 days ago and never read: warm.
    assert run_lifecycle(tiered.gateway, 0)["access_tiered"] == 3
    _settle(tiered, 0)
    assert _where(tiered, bucket) == {k: ("STANDARD_IA", ["sw"]) for k in objects}
    assert tiered.s3.head_object(Bucket=bucket, Key="k0")["StorageClass"] == "STANDARD_IA"

    # A read (served from sw) brings k0 back to the hot tier; the others stay.
    _read(tiered, bucket, "k0", objects["k0"])
    _settle(tiered, 0)
    where = _where(tiered, bucket)
    assert where["k0"] == ("STANDARD", ["local"])
    assert where["k1"] == where["k2"] == ("STANDARD_IA", ["sw"])
    # Read just now, though written 40 days ago: not due again.
    assert run_lifecycle(tiered.gateway, 0)["access_tiered"] == 0

    # 55 days on: k1 and k2 were not read for 95 days (cold), k0 for 55 (warm).
    assert run_lifecycle(tiered.gateway, 55)["access_tiered"] == 3
    _settle(tiered, 55)
    where = _where(tiered, bucket)
    assert where["k0"] == ("STANDARD_IA", ["sw"])
    assert where["k1"] == where["k2"] == ("GLACIER_IR", ["mo"])
    for key in ("k1", "k2"):
        _read(tiered, bucket, key, objects[key])
    _settle(tiered, 0)
    assert _where(tiered, bucket)["k1"] == ("STANDARD", ["local"])
    tiered.topology.check_ledger_matches_backends(tiered.ledger)


def test_without_access_tiering_nothing_moves_and_reads_are_not_noted(tiered: Cluster) -> None:
    bucket = random_name("flat-")
    tiered.s3.create_bucket(Bucket=bucket)
    tiered.s3.put_object(Bucket=bucket, Key="k", Body=b"stays")
    admin = AdminClient.of(tiered.gateway)
    admin.ok("PUT", f"/buckets/{bucket}/tiering", {"warm_after_days": 1})
    assert admin.ok("DELETE", f"/buckets/{bucket}/tiering")["access_tiering"] is None
    _read(tiered, bucket, "k", b"stays")
    _settle(tiered, 400)
    assert _where(tiered, bucket) == {"k": ("STANDARD", ["local"])}
    assert (
        tiered.ledger.value(
            "SELECT last_read_at FROM object_versions v JOIN buckets b ON b.id = v.bucket_id"
            " WHERE b.name = $1",
            bucket,
        )
        is None
    )


@pytest.mark.parametrize(
    ("body", "status"),
    [({"warm_after_days": 30, "cold_after_days": 30}, 422), ({"warm_after_days": 0}, 400),
     ({"cold_after_days": 9}, 400)],
)  # fmt: skip
def test_refused_settings_change_nothing(
    tiered: Cluster, body: dict[str, Any], status: int
) -> None:
    bucket = random_name("bad-")
    tiered.s3.create_bucket(Bucket=bucket)
    admin = AdminClient.of(tiered.gateway)
    got, answer = admin.call("PUT", f"/buckets/{bucket}/tiering", body)
    assert (got, set(answer)) == (status, {"error"})
    assert admin.ok("GET", f"/buckets/{bucket}")["access_tiering"] is None
    assert admin.call("PUT", "/buckets/no-such-bucket/tiering", {"warm_after_days": 1})[0] == 404
