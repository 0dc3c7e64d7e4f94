"""Issue #6, acceptances 1, 2 and 4: lifecycle transitions to a cold backend, and restores
from an archive backend.

``sw`` (SeaweedFS at site s2, behind a link proxy) is the cold tier, ``mo`` (moto, s3) the
archive tier; the policy keeps STANDARD objects on ``local``. A transition to GLACIER_IR
(cold) after N days, with time injected, moves each version to ``sw``: the ledger shows it,
HEAD and listings show the class, and GET returns the right bytes from ``sw``. With the
link to ``sw`` cut, nothing is deleted, the copies retry, expiration waits, and it all
finishes once the link is back. A version transitioned to GLACIER is read only after a
restore, whose copy lapses on its own.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.admin.client import AdminClient
from tests.gateway_process import GatewayProcess
from tests.lifecycle.conftest import NO_SCHEDULED_PASS, bucket_usage, run_lifecycle
from tests.placement.conftest import Cluster, Ledger, Topology, md5, no_retry_client, poll
from tests.servers import random_name

COLD = "sw"
ARCHIVE = "mo"
MIB = 1 << 20


def _local_only() -> dict[str, Any]:
    return {
        "name": "default",
        "rules": [{"name": "local", "replicas": [{"backend": "local"}]}],
    }


@pytest.fixture(scope="module")
def cold_module(
    topology_factory: Callable[[], Topology], start_module_gateway: Callable[..., GatewayProcess]
) -> Cluster:
    topology = topology_factory()
    config = topology.config([_local_only()], lifecycle=NO_SCHEDULED_PASS)
    tiers = {COLD: "cold", ARCHIVE: "archive"}
    for backend in config["backends"]:
        backend["tier"] = tiers.get(backend["name"], "hot")
    gateway = start_module_gateway(config)
    return Cluster(topology, gateway, Ledger(gateway.database_url), no_retry_client(gateway))


@pytest.fixture
def cold(cold_module: Cluster) -> Iterator[Cluster]:
    cold_module.topology.restore()
    yield cold_module
    cold_module.topology.restore()


RULES = [
    {"ID": "to-cold", "Filter": {"Prefix": "cold/"}, "Status": "Enabled",
     "Transitions": [{"Days": 1, "StorageClass": "GLACIER_IR"}]},
    {"ID": "expire", "Filter": {"Prefix": "cold/exp/"}, "Status": "Enabled",
     "Expiration": {"Days": 5}},
    {"ID": "to-archive", "Filter": {"Prefix": "archive/"}, "Status": "Enabled",
     "Transitions": [{"Days": 1, "StorageClass": "GLACIER"}]},
]  # fmt: skip


def _bucket(s3: Any) -> str:
    name = random_name("lc-cold-")
    s3.create_bucket(Bucket=name)
    s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": RULES})
    return name


def _put(cluster: Cluster, bucket: str, objects: dict[str, bytes]) -> None:
    for key, body in objects.items():
        if len(body) > 5 * MIB:
            _put_multipart(cluster.s3, bucket, key, body)
        else:
            cluster.s3.put_object(Bucket=bucket, Key=key, Body=body)


def _put_multipart(s3: Any, bucket: str, key: str, body: bytes) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts = []
    for number, start in enumerate(range(0, len(body), 5 * MIB), start=1):
        piece = body[start : start + 5 * MIB]
        etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number,
                              Body=piece)["ETag"]  # fmt: skip
        parts.append({"PartNumber": number, "ETag": etag})
    s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )


def _placements(gateway: GatewayProcess, bucket: str, key: str) -> list[str]:
    """The backends of the current version's ok placements, from the admin ledger."""
    versions = AdminClient.of(gateway).ok("GET", f"/ledger/placements?bucket={bucket}&key={key}")
    current = [v for v in versions if v["is_latest"]]
    return sorted(p["backend"] for p in current[0]["placements"] if p["state"] == "ok")


def _stored_keys(ledger: Ledger, bucket: str, keys: list[str], backend: str) -> set[str]:
    rows = ledger.fetch(
        "SELECT p.backend_key, p.segment_keys FROM placements p"
        " JOIN object_versions v ON v.id = p.version_pk JOIN buckets b ON b.id = v.bucket_id"
        " WHERE b.name = $1 AND v.key = ANY($2::text[]) AND p.backend = $3 AND p.state = 'ok'",
        bucket,
        keys,
        backend,
    )
    return {k for r in rows for k in (r["segment_keys"] or [r["backend_key"]])}


def _all_readable(cluster: Cluster, bucket: str, objects: dict[str, bytes]) -> None:
    for key, body in objects.items():
        got = cluster.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert md5(got) == md5(body), key


def _settle(cluster: Cluster, days: float, timeout_s: float = 60) -> dict[str, Any]:
    """Run passes at ``days`` until no transition waits (copies verified, switched)."""
    deadline = time.monotonic() + timeout_s
    while (report := run_lifecycle(cluster.gateway, days))["transitions_waiting"]:
        assert time.monotonic() < deadline, (report, cluster.gateway.log_tail())
        time.sleep(0.3)
    return report


def test_transition_after_n_days_moves_objects_to_the_cold_backend(cold: Cluster) -> None:
    bucket = _bucket(cold.s3)
    objects = {f"cold/{n}": os.urandom(1000 + n) for n in range(3)}
    objects["cold/big"] = os.urandom(5 * MIB + 1234)
    _put(cold, bucket, {**objects, "hot/stays": b"warm bytes"})
    usage = bucket_usage(cold.gateway, bucket)
    local_keys = _stored_keys(cold.ledger, bucket, list(objects), "local")
    assert len(local_keys) == 5  # the multipart version has two segments

    assert run_lifecycle(cold.gateway, 0.5)["transitions_started"] == 0
    assert run_lifecycle(cold.gateway, 2)["transitions_started"] == 4
    _settle(cold, 2)

    for key in objects:
        assert _placements(cold.gateway, bucket, key) == [COLD], key
        assert cold.s3.head_object(Bucket=bucket, Key=key)["StorageClass"] == "GLACIER_IR"
    assert _placements(cold.gateway, bucket, "hot/stays") == ["local"]
    listed = {
        o["Key"]: o["StorageClass"] for o in cold.s3.list_objects_v2(Bucket=bucket)["Contents"]
    }
    assert listed == {**{k: "GLACIER_IR" for k in objects}, "hot/stays": "STANDARD"}
    # The old copies are gone from local (gc), so these reads come from the cold backend.
    poll(lambda: not local_keys & cold.topology.keys("local"), "old copies deleted")
    _all_readable(cold, bucket, objects)
    assert bucket_usage(cold.gateway, bucket) == usage
    assert run_lifecycle(cold.gateway, 400)["transitions_started"] == 0
    cold.topology.check_ledger_matches_backends(cold.ledger)


def test_unreachable_cold_backend_deletes_nothing_and_the_transition_retries(
    cold: Cluster,
) -> None:
    bucket = _bucket(cold.s3)
    objects = {f"cold/{n}": os.urandom(2000 + n) for n in range(3)}
    objects["cold/exp/e"] = os.urandom(3000)
    _put(cold, bucket, objects)
    local_keys = _stored_keys(cold.ledger, bucket, list(objects), "local")
    cold.proxies[COLD].cut()

    report = run_lifecycle(cold.gateway, 2)
    assert (report["transitions_started"], report["transitions_finished"]) == (4, 0)
    # The copies fail and are retried with backoff; meanwhile every object stays readable
    # from its only copy, which nothing deletes.
    poll(lambda: _max_attempts(cold.ledger) >= 2, "copies retried")
    for _ in range(3):
        report = run_lifecycle(cold.gateway, 2)
        assert (report["transitions_waiting"], report["transitions_finished"]) == (4, 0)
        _all_readable(cold, bucket, objects)
        assert local_keys <= cold.topology.keys("local")
        assert not cold.ledger.doomed_live_keys()
    for key in objects:
        assert _placements(cold.gateway, bucket, key) == ["local"]
        assert "StorageClass" not in cold.s3.head_object(Bucket=bucket, Key=key)
    # Expiration is due for cold/exp/e, but never while its transition is unfinished.
    assert run_lifecycle(cold.gateway, 10)["expired"] == 0
    assert cold.s3.head_object(Bucket=bucket, Key="cold/exp/e")["ContentLength"] == 3000

    cold.proxies[COLD].restore()
    _settle(cold, 2)
    for key in objects:
        assert _placements(cold.gateway, bucket, key) == [COLD], key
    poll(lambda: not local_keys & cold.topology.keys("local"), "old copies deleted")
    _all_readable(cold, bucket, objects)
    # Once the transition is done, expiration goes ahead.
    assert run_lifecycle(cold.gateway, 10)["expired"] == 1
    keys = [o["Key"] for o in cold.s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["cold/0", "cold/1", "cold/2"]
    cold.topology.check_ledger_matches_backends(cold.ledger)


def _max_attempts(ledger: Ledger) -> int:
    return int(ledger.value("SELECT coalesce(max(attempts), 0) FROM replication_queue"))


def _error(call: Callable[..., Any], **kwargs: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    response = info.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_archive_restore_flow(cold: Cluster) -> None:
    s3, admin = cold.s3, AdminClient.of(cold.gateway)
    bucket = _bucket(s3)
    body = os.urandom(4321)
    s3.put_object(Bucket=bucket, Key="archive/a", Body=body)
    run_lifecycle(cold.gateway, 2)
    _settle(cold, 2)
    assert _placements(cold.gateway, bucket, "archive/a") == [ARCHIVE]
    head = s3.head_object(Bucket=bucket, Key="archive/a")
    assert (head["StorageClass"], head.get("Restore")) == ("GLACIER", None)
    assert _error(s3.get_object, Bucket=bucket, Key="archive/a") == ("InvalidObjectState", 403)

    # Held in the queue, the restore is seen in progress.
    admin.ok("POST", "/workers/replication/pause")
    time.sleep(1)
    restore = {"Days": 2, "GlacierJobParameters": {"Tier": "Standard"}}
    answer = s3.restore_object(Bucket=bucket, Key="archive/a", RestoreRequest=restore)
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert s3.head_object(Bucket=bucket, Key="archive/a")["Restore"] == 'ongoing-request="true"'
    assert _error(s3.get_object, Bucket=bucket, Key="archive/a") == ("InvalidObjectState", 403)
    again = _error(s3.restore_object, Bucket=bucket, Key="archive/a", RestoreRequest=restore)
    assert again == ("RestoreAlreadyInProgress", 409)

    admin.ok("POST", "/workers/replication/resume")
    poll(lambda: "false" in s3.head_object(Bucket=bucket, Key="archive/a").get("Restore", ""),
         "restore done")  # fmt: skip
    restored = s3.head_object(Bucket=bucket, Key="archive/a")["Restore"]
    assert restored.startswith('ongoing-request="false", expiry-date="')
    assert restored.endswith(' 00:00:00 GMT"')
    assert s3.get_object(Bucket=bucket, Key="archive/a")["Body"].read() == body
    assert _placements(cold.gateway, bucket, "archive/a") == sorted(["local", ARCHIVE])
    copy_keys = _stored_keys(cold.ledger, bucket, ["archive/a"], "local")

    # The temporary copy lapses at the first midnight UTC two days after the restore.
    assert run_lifecycle(cold.gateway, 1)["restores_expired"] == 0
    assert run_lifecycle(cold.gateway, 4)["restores_expired"] == 1
    assert _error(s3.get_object, Bucket=bucket, Key="archive/a") == ("InvalidObjectState", 403)
    assert "Restore" not in s3.head_object(Bucket=bucket, Key="archive/a")
    assert _placements(cold.gateway, bucket, "archive/a") == [ARCHIVE]
    poll(lambda: not copy_keys & cold.topology.keys("local"), "restored copy deleted")
    bucket_usage(cold.gateway, bucket)


def test_restore_is_refused_outside_the_archive_classes(cold: Cluster) -> None:
    bucket = _bucket(cold.s3)
    cold.s3.put_object(Bucket=bucket, Key="hot/k", Body=b"x")
    refused = _error(cold.s3.restore_object, Bucket=bucket, Key="hot/k",
                     RestoreRequest={"Days": 1})  # fmt: skip
    assert refused == ("InvalidObjectState", 403)


def test_storage_class_on_a_write_places_it_on_its_tier(cold: Cluster) -> None:
    s3, bucket = cold.s3, _bucket(cold.s3)
    s3.put_object(Bucket=bucket, Key="w/ir", Body=b"ir", StorageClass="GLACIER_IR")
    # No warm backend here: STANDARD_IA stays where the policy puts STANDARD.
    s3.put_object(Bucket=bucket, Key="w/ia", Body=b"ia", StorageClass="STANDARD_IA")
    s3.copy_object(Bucket=bucket, Key="w/copy", CopySource={"Bucket": bucket, "Key": "w/ia"},
                   StorageClass="GLACIER_IR")  # fmt: skip
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="w/mp", StorageClass="GLACIER_IR")[
        "UploadId"
    ]
    etag = s3.upload_part(Bucket=bucket, Key="w/mp", UploadId=upload_id, PartNumber=1,
                          Body=b"mp")["ETag"]  # fmt: skip
    parts = {"Parts": [{"PartNumber": 1, "ETag": etag}]}
    s3.complete_multipart_upload(
        Bucket=bucket, Key="w/mp", UploadId=upload_id, MultipartUpload=parts
    )
    expected = {"w/ir": [COLD], "w/ia": ["local"], "w/copy": [COLD], "w/mp": [COLD]}
    assert {key: _placements(cold.gateway, bucket, key) for key in expected} == expected
    classes = {o["Key"]: o["StorageClass"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert classes == {"w/ir": "GLACIER_IR", "w/ia": "STANDARD_IA", "w/copy": "GLACIER_IR",
                       "w/mp": "GLACIER_IR"}  # fmt: skip
    assert s3.get_object(Bucket=bucket, Key="w/mp")["Body"].read() == b"mp"
