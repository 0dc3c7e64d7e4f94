"""Hedged reads (issue #3): a GET whose first byte is late past its link's observed p95 also
asks the next replica, and the first to answer serves it.

Both replicas are remote (sw, then mo, cheapest first). The link to sw is slowed below its
first-byte timeout, so a read of sw alone succeeds, late. Which proxy carried the body
tells who served the read: sw while the link has too few reads to know its p95, mo once it
does. No timing is asserted.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from tests.conftest import client_for
from tests.gateway_process import GatewayProcess
from tests.placement.conftest import Topology, md5, remote_pair_policy
from tests.servers import random_name

BODY = os.urandom(256 * 1024)
DELAY_S = 0.4  # per direction: well past the usual first byte, within the 5 s timeout


def _read(s3: Any, bucket: str) -> bytes:
    return bytes(s3.get_object(Bucket=bucket, Key="k")["Body"].read())


def test_a_late_first_byte_is_hedged_once_the_links_p95_is_known(
    topology_factory: Callable[[], Topology], start_test_gateway: Callable[..., GatewayProcess]
) -> None:
    topology = topology_factory()
    config = topology.config(policies=[remote_pair_policy()], default_policy="remote-pair")
    config["replication"]["hedge_reads"] = True
    for link in config["links"]:
        link["first_byte_timeout_s"] = 5
    s3 = client_for(start_test_gateway(config))
    bucket = random_name()
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=BODY)
    sw, mo = topology.proxies["sw"], topology.proxies["mo"]
    try:
        # Too few reads to know sw's p95: no hedge, the slow sw serves.
        sw.delay(DELAY_S)
        before = mo.bytes_down
        assert md5(_read(s3, bucket)) == md5(BODY)
        assert mo.bytes_down - before < len(BODY)
        sw.restore()
        for _ in range(25):
            assert _read(s3, bucket) == BODY

        # Now a late first byte from sw also asks mo, which answers first.
        sw.delay(DELAY_S)
        before = mo.bytes_down
        assert md5(_read(s3, bucket)) == md5(BODY)
        assert mo.bytes_down - before >= len(BODY)
    finally:
        topology.restore()
