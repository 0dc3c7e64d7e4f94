"""A queued copy over a hung link is given up after the stall timeout (2 s here) and
retried, instead of waiting for as long as the link hangs with the rest of its batch."""

from __future__ import annotations

import os
import time

from tests.placement.conftest import Cluster, md5
from tests.servers import random_name

MIB = 1024 * 1024
# Larger than the socket buffers between the gateway and a proxy that stopped reading.
BODY_BYTES = 32 * MIB
WAIT_S = 30.0


def _stall_errors(cluster: Cluster) -> list[str]:
    rows = cluster.ledger.fetch("SELECT last_error FROM replication_queue WHERE attempts > 0")
    return [str(r["last_error"]) for r in rows if "took no data" in str(r["last_error"])]


def test_a_copy_over_a_hung_link_is_given_up_and_retried(cluster: Cluster) -> None:
    s3, ledger = cluster.s3, cluster.ledger
    bucket = random_name()
    s3.create_bucket(Bucket=bucket)
    body = os.urandom(BODY_BYTES)
    cluster.proxies["mo"].hang()  # mo is the policy's asynchronous replica

    s3.put_object(Bucket=bucket, Key="big", Body=body)
    deadline = time.monotonic() + WAIT_S
    while not _stall_errors(cluster) and time.monotonic() < deadline:
        time.sleep(0.2)

    assert _stall_errors(cluster), ledger.fetch("SELECT * FROM replication_queue")
    cluster.proxies["mo"].restore()
    ledger.wait_replicated(bucket, replicas=3)
    stored = cluster.topology.stored_bytes("mo", _mo_key(cluster, bucket))
    assert md5(stored) == md5(body)
    cluster.topology.check_ledger_matches_backends(ledger)
    assert ledger.doomed_live_keys() == []


def _mo_key(cluster: Cluster, bucket: str) -> str:
    rows = cluster.ledger.fetch(
        "SELECT p.backend_key FROM placements p JOIN buckets b ON b.id = p.bucket_id"
        " WHERE b.name = $1 AND p.backend = 'mo' AND p.state = 'ok'",
        bucket,
    )
    return str(rows[0]["backend_key"])
