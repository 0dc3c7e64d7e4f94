"""Active link probes: a dead link is noticed without client traffic, and a restored one
is written to again without waiting for client traffic to test it."""

from __future__ import annotations

import os
from collections.abc import Callable

from tests.conftest import client_for
from tests.gateway_process import GatewayProcess
from tests.placement.conftest import Ledger, Topology, poll
from tests.servers import random_name


def _stored_on(ledger: Ledger, bucket: str, key: str) -> set[str]:
    rows = ledger.fetch(
        "SELECT p.backend FROM placements p JOIN object_versions v ON v.id = p.version_pk"
        " JOIN buckets b ON b.id = v.bucket_id WHERE b.name = $1 AND v.key = $2"
        " AND v.is_latest AND p.state = 'ok'",
        bucket,
        key,
    )
    return {r["backend"] for r in rows}


def test_probes_take_a_link_out_and_bring_it_back(
    topology_factory: Callable[[], Topology], start_test_gateway: Callable[..., GatewayProcess]
) -> None:
    topology = topology_factory()
    config = topology.config()
    # No replication during the test: the replicas right after a PUT are the sync ones.
    config["replication"].update(interval_s=3600, probe_interval_s=0.3)
    # Once open, the sw link's breaker would stay open for an hour: only a probe can close it.
    for link in config["links"]:
        link["breaker_cooldown_s"] = 3600
    gateway = start_test_gateway(config)
    ledger = Ledger(gateway.database_url)
    s3 = client_for(gateway, retries={"max_attempts": 1})
    bucket = random_name()
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="before", Body=os.urandom(1000))
    assert _stored_on(ledger, bucket, "before") == {"local", "sw"}

    topology.proxies["sw"].cut()
    # Noticed by the probes alone: no client request goes near sw in the meantime.
    poll(lambda: "links failing their probe: s1-sw" in gateway.log_tail(200), "probe failure")
    s3.put_object(Bucket=bucket, Key="during", Body=os.urandom(1000))
    assert _stored_on(ledger, bucket, "during") == {"local"}

    topology.proxies["sw"].restore()
    attempt = iter(range(10_000))

    def written_to_sw_again() -> bool:
        key = f"after-{next(attempt)}"
        s3.put_object(Bucket=bucket, Key=key, Body=os.urandom(1000))
        return _stored_on(ledger, bucket, key) == {"local", "sw"}

    poll(written_to_sw_again, "sw back in the write set", timeout_s=15)
