"""Acceptance 3 of issue #3: reads fail over to the other replica when a link is cut or hangs.

The bucket's policy (``remote-pair``) keeps one replica on sw and one on mo and reads the
cheapest first, which is sw. No timings are asserted here; the benchmarks measure them.
"""

from __future__ import annotations

import os
from typing import Any

from tests.netproxy import LinkProxy
from tests.placement.conftest import Cluster, md5, poll
from tests.servers import random_name

MIB = 1024 * 1024
# Below the S3 driver's 8 MiB part size: moto lists every multipart upload as initiated in
# 2010, so the gc sweep of abandoned uploads would abort a backend multipart write to it.
SIZES = {"small": 40 * 1024, "medium": 2 * MIB, "large": 7 * MIB}
BREAKER_THRESHOLD = 3


def _setup(cluster: Cluster) -> tuple[str, dict[str, bytes]]:
    bucket = random_name()
    cluster.s3.create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "remote-pair"}
    )
    bodies = {name: os.urandom(size) for name, size in SIZES.items()}
    for key, body in bodies.items():
        cluster.s3.put_object(Bucket=bucket, Key=key, Body=body)
    versions = cluster.ledger.complete_versions(bucket)
    assert [v["backends"] for v in versions] == [["mo", "sw"]] * len(bodies)
    return bucket, bodies


def _read(s3: Any, bucket: str, key: str, **kwargs: Any) -> bytes:
    data: bytes = s3.get_object(Bucket=bucket, Key=key, **kwargs)["Body"].read()
    return data


def _assert_all_read(cluster: Cluster, bucket: str, bodies: dict[str, bytes]) -> None:
    for key, body in bodies.items():
        assert md5(_read(cluster.s3, bucket, key)) == md5(body), key
    ranged = _read(cluster.s3, bucket, "large", Range="bytes=5000000-7000000")
    assert ranged == bodies["large"][5_000_000:7_000_001]
    suffix = _read(cluster.s3, bucket, "medium", Range="bytes=-1000")
    assert suffix == bodies["medium"][-1000:]


def _served_by_sw(cluster: Cluster, bucket: str, body: bytes) -> bool:
    proxy = cluster.proxies["sw"]
    before = proxy.bytes_down
    assert _read(cluster.s3, bucket, "small") == body
    return proxy.bytes_down - before >= len(body)


def _assert_sw_skipped(cluster: Cluster, bucket: str, bodies: dict[str, bytes]) -> None:
    """With the breaker open, reads go to mo without opening connections to sw."""
    proxy: LinkProxy = cluster.proxies["sw"]
    before = proxy.connections
    for _ in range(5):
        assert _read(cluster.s3, bucket, "small") == bodies["small"]
    # At most one half-open probe (two attempts by the S3 client) if the cooldown passed.
    assert proxy.connections - before <= 2


def test_reads_prefer_the_cheapest_link(cluster: Cluster) -> None:
    bucket, bodies = _setup(cluster)
    assert _served_by_sw(cluster, bucket, bodies["small"])
    mo_before = cluster.proxies["mo"].bytes_down
    _assert_all_read(cluster, bucket, bodies)
    # Only background chatter (the gc sweep lists uploads) crossed the mo link, no object.
    assert cluster.proxies["mo"].bytes_down - mo_before < len(bodies["small"])


def test_reads_fail_over_when_the_first_link_is_cut_then_hangs(cluster: Cluster) -> None:
    bucket, bodies = _setup(cluster)
    sw, mo = cluster.proxies["sw"], cluster.proxies["mo"]

    sw.cut()
    mo_before = mo.bytes_down
    _assert_all_read(cluster, bucket, bodies)
    assert mo.bytes_down - mo_before >= sum(len(b) for b in bodies.values())
    _assert_sw_skipped(cluster, bucket, bodies)

    sw.restore()
    # The breaker half-opens after its cooldown and a successful probe closes it again.
    poll(lambda: _served_by_sw(cluster, bucket, bodies["small"]), "reads to return to sw", 20)

    sw.hang()
    for _ in range(BREAKER_THRESHOLD):
        assert _read(cluster.s3, bucket, "small") == bodies["small"]
    _assert_all_read(cluster, bucket, bodies)
    _assert_sw_skipped(cluster, bucket, bodies)
