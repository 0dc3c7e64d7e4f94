"""Acceptance 2 of issue #3: quorum writes (W=1 of local+sw, mo asynchronous) with a cut link.

Every PUT is acknowledged while the sw link is down; the replication queue fills in the
missing replicas once it is back, and the backends really hold what the ledger says.
"""

from __future__ import annotations

import io
import os
import random
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from tests.placement.conftest import Cluster, md5
from tests.servers import random_name

MIB = 1024 * 1024
# Above the S3 driver's 8 MiB part size: the backend write itself goes multipart.
LARGE_BYTES = 9 * MIB
MULTIPART = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
N_OBJECTS = 199  # plus one multipart upload: 200 objects


def _payloads(rng: random.Random) -> dict[str, bytes]:
    bodies = {}
    for i in range(N_OBJECTS):
        size = LARGE_BYTES if i in (30, 130) else rng.randint(4 * 1024, 64 * 1024)
        bodies[f"obj/{i:03d}"] = rng.randbytes(size)
    # Uploaded by upload_fileobj as a gateway multipart upload (5 MiB parts), during the cut.
    bodies["obj/150-multipart"] = rng.randbytes(11 * MIB)
    return bodies


def _put(s3: Any, bucket: str, key: str, body: bytes) -> None:
    if key.endswith("-multipart"):
        s3.upload_fileobj(io.BytesIO(body), bucket, key, Config=MULTIPART)
    else:
        s3.put_object(Bucket=bucket, Key=key, Body=body)


def _put_all(s3: Any, bucket: str, bodies: dict[str, bytes]) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        # list() re-raises the first failed PUT: every one must be acknowledged.
        list(pool.map(lambda item: _put(s3, bucket, *item), bodies.items()))


def _get_md5(s3: Any, bucket: str, key: str) -> str:
    return md5(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def _assert_reads_back(s3: Any, bucket: str, bodies: dict[str, bytes]) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = dict(zip(bodies, pool.map(lambda k: _get_md5(s3, bucket, k), bodies), strict=True))
    wrong = [key for key, body in bodies.items() if got[key] != md5(body)]
    assert not wrong, f"GET returned the wrong bytes for {wrong[:5]}"


def _assert_backends_hold(cluster: Cluster, bucket: str, bodies: dict[str, bytes]) -> None:
    """Read every replica around the gateway and compare it with what was PUT."""
    rows = cluster.ledger.fetch(
        "SELECT v.key, p.backend, p.backend_key, p.segment_keys FROM placements p"
        " JOIN object_versions v ON v.id = p.version_pk JOIN buckets b ON b.id = v.bucket_id"
        " WHERE b.name = $1 AND p.state = 'ok'",
        bucket,
    )
    assert len(rows) == 3 * len(bodies)
    topology = cluster.topology
    wrong = []
    for row in rows:
        keys = row["segment_keys"] or [row["backend_key"]]
        data = b"".join(topology.stored_bytes(row["backend"], key) for key in keys)
        if md5(data) != md5(bodies[row["key"]]):
            wrong.append((row["key"], row["backend"], len(data)))
    assert not wrong, f"replicas whose bytes differ from the PUT: {wrong[:5]}"


def test_every_put_succeeds_while_a_sync_link_is_cut(cluster: Cluster) -> None:
    s3, ledger = cluster.s3, cluster.ledger
    bucket = random_name()
    s3.create_bucket(Bucket=bucket)
    bodies = _payloads(random.Random(2024))
    keys = list(bodies)
    first = {k: bodies[k] for k in keys if k < "obj/100"}
    second = {k: bodies[k] for k in keys if k >= "obj/100"}

    _put_all(s3, bucket, first)
    cluster.proxies["sw"].cut()
    _put_all(s3, bucket, second)
    _assert_reads_back(s3, bucket, bodies)

    # The cut really cost sw its synchronous replicas: they wait in the queue.
    missing_sw = [v for v in ledger.complete_versions(bucket) if "sw" not in v["backends"]]
    assert any(v["key"] in second for v in missing_sw)
    assert ledger.queue_length() > 0

    cluster.proxies["sw"].restore()
    ledger.wait_replicated(bucket, replicas=3)
    versions = ledger.complete_versions(bucket)
    assert len(versions) == len(bodies)
    assert all(v["backends"] == ["local", "mo", "sw"] for v in versions)
    _assert_backends_hold(cluster, bucket, bodies)
    cluster.topology.check_ledger_matches_backends(ledger)
    assert ledger.doomed_live_keys() == []
    _assert_reads_back(s3, bucket, bodies)


def test_put_succeeds_when_the_sync_link_resets_mid_body(cluster: Cluster) -> None:
    s3, ledger = cluster.s3, cluster.ledger
    bucket = random_name()
    s3.create_bucket(Bucket=bucket)
    body = os.urandom(3 * MIB)
    cluster.proxies["sw"].reset_after(256 * 1024)

    s3.put_object(Bucket=bucket, Key="reset", Body=body)

    assert _get_md5(s3, bucket, "reset") == md5(body)
    (version,) = ledger.complete_versions(bucket)
    assert "sw" not in version["backends"]
    cluster.proxies["sw"].restore()
    ledger.wait_replicated(bucket, replicas=3)
    # The partial write on sw must not be deleted once the replica took its key.
    assert ledger.doomed_live_keys() == []
    _assert_backends_hold(cluster, bucket, {"reset": body})


def test_put_that_cannot_meet_its_write_mode_fails_and_leaves_nothing(cluster: Cluster) -> None:
    s3, ledger = cluster.s3, cluster.ledger
    bucket = random_name()
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "all-sync"})
    s3.put_object(Bucket=bucket, Key="before", Body=b"both sync targets were up")
    cluster.proxies["sw"].cut()

    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket=bucket, Key="doomed", Body=os.urandom(256 * 1024))

    assert caught.value.response["Error"]["Code"] == "ServiceUnavailable"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    with pytest.raises(ClientError) as head:
        s3.head_object(Bucket=bucket, Key="doomed")
    assert head.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert "complete" not in ledger.versions_by_state(bucket, "doomed")
    queued = ledger.value(
        "SELECT count(*) FROM replication_queue q JOIN object_versions v ON v.id = q.version_pk"
        " JOIN buckets b ON b.id = v.bucket_id WHERE b.name = $1",
        bucket,
    )
    assert queued == 0
    bucket_id = ledger.value("SELECT id FROM buckets WHERE name = $1", bucket)
    local = {k for k in cluster.topology.keys("local") if k.startswith(f"b{bucket_id}/")}
    # Only the earlier object's replica: the failed PUT's bytes were discarded.
    assert len(local) == 1
    assert s3.get_object(Bucket=bucket, Key="before")["Body"].read() == (
        b"both sync targets were up"
    )
