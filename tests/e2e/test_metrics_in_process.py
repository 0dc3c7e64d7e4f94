"""Issue #7, Prometheus metrics: the S3 app built by ``create_app`` serves real S3 clients in
this process, and ``/metrics`` is mounted on a separate admin app with ``add_routes``, as
the admin listener mounts it. A known workload must move every counter by exactly its
size; the gauges read at scrape time must show the replication backlog and the quota."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import boto3
import pytest
from aiohttp import web
from botocore.config import Config

from gateway.app import RUNTIME, Runtime, create_app
from gateway.config import GatewayConfig, from_mapping
from gateway.observability.metrics import CONTENT_TYPE, add_routes
from metadata.access_keys import AccessKeyRepo
from metadata.buckets import BucketRepo
from metadata.usage import Quota, UsageRepo
from tests import observability as o
from tests.servers import LOOPBACK, random_name

ACCESS_KEY, SECRET_KEY = "SBMETRICSKEY", "sb-metrics-secret-do-not-leak"
QUOTA_BYTES = 1_000_000


@dataclass
class Served:
    s3_endpoint: str
    metrics_url: str
    runtime: Runtime

    def client(self, secret_key: str = SECRET_KEY) -> Any:
        return boto3.client(
            "s3", endpoint_url=self.s3_endpoint, aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=secret_key, region_name="us-east-1",
            config=Config(retries={"max_attempts": 1}),
        )  # fmt: skip

    async def scrape(self) -> tuple[str, o.Samples]:
        async with aiohttp.ClientSession() as session, session.get(self.metrics_url) as answer:
            assert answer.status == 200
            assert answer.headers["Content-Type"] == CONTENT_TYPE
            text = await answer.text()
        return text, o.parse(text)


def _config(database_url: str, root: Path) -> GatewayConfig:
    # Two backends: "a" written at once, "b" asynchronously by a replication worker that
    # runs only at start, so that what the workload queues stays queued.
    raw = {
        "data_dir": str(root / "data"),
        "backends": [
            {"name": name, "driver": "localfs", "path": str(root / name)} for name in ("a", "b")
        ],
        "default_backend": "a",
        "placement_policies": [{
            "name": "default",
            "rules": [{"name": "later", "replicas": [{"backend": "a"},
                                                     {"backend": "b", "async": True}]}],
        }],
        "replication": {"interval_s": 3600, "probe_interval_s": 0.2},
        "database": {"pool_min": 1, "pool_max": 4},
    }  # fmt: skip
    return from_mapping(raw, {"SKYBRIDGE_DATABASE_URL": database_url})


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket()
    sock.bind((LOOPBACK, 0))
    site = web.SockSite(runner, sock)
    await site.start()
    return runner, f"http://{LOOPBACK}:{sock.getsockname()[1]}"


@pytest.fixture
async def served(new_database: Callable[[], str], tmp_path: Path) -> AsyncIterator[Served]:
    s3_app = create_app(_config(new_database(), tmp_path))
    admin_app = web.Application()
    add_routes(admin_app, s3_app)
    s3_runner, s3_endpoint = await _serve(s3_app)
    admin_runner, admin_endpoint = await _serve(admin_app)
    try:
        runtime = s3_app[RUNTIME]
        await AccessKeyRepo(runtime.pool).ensure(ACCESS_KEY, SECRET_KEY)
        yield Served(s3_endpoint, admin_endpoint + "/metrics", runtime)
    finally:
        await admin_runner.cleanup()
        await s3_runner.cleanup()


async def _bucket_with_quota(served: Served) -> tuple[str, str]:
    bucket = random_name()
    await asyncio.to_thread(served.client().create_bucket, Bucket=bucket)
    row = await BucketRepo(served.runtime.pool).get(bucket)
    assert row is not None
    quota = Quota("bucket", str(row.id), QUOTA_BYTES, None, True)
    await UsageRepo(served.runtime.pool).set_quota(quota)
    return bucket, str(row.id)


async def test_a_known_workload_moves_every_counter_by_its_size(served: Served) -> None:
    bucket, bucket_id = await _bucket_with_quota(served)
    _, before = await served.scrape()
    workload = o.Workload(bucket)
    await asyncio.to_thread(workload.run, served.client(), served.s3_endpoint)
    _, after = await served.scrape()
    await asyncio.to_thread(o.refused_upload, served.client("wrong-secret"), bucket)
    _, refused = await served.scrape()

    o.check_s3_counters(before, after, workload)
    o.check_link_counters(before, after, link="direct:a", backend="a")
    o.check_workers(after, ["gc", "replication"])
    assert o.value(after, "skybridge_metadata_up") == 1
    # Refused before its body was sent (Expect: 100-continue): counted all the same.
    put_403 = {"operation": "PutObject", "status": "403"}
    assert o.moved(after, refused, "skybridge_s3_requests_total", **put_403) == 1
    assert o.moved(after, refused, "skybridge_s3_received_bytes_total", operation="PutObject") == 0


async def test_scrape_time_gauges_show_the_backlog_and_the_quota(served: Served) -> None:
    bucket, bucket_id = await _bucket_with_quota(served)
    await asyncio.to_thread(o.Workload(bucket).run, served.client(), served.s3_endpoint)
    text, after = await served.scrape()

    total = sum(o.SIZES)
    assert o.value(after, "skybridge_replication_queue_depth", backend="b") == len(o.SIZES)
    assert o.value(after, "skybridge_replication_lag_bytes", backend="b") == total
    assert o.value(after, "skybridge_replication_oldest_task_age_seconds", backend="b") > 0
    assert o.value(after, "skybridge_replication_queue_depth", backend="a") == 0
    scope = {"scope": "bucket", "scope_id": bucket_id}
    assert o.value(after, "skybridge_usage_bytes", **scope) == total
    assert o.value(after, "skybridge_usage_objects", **scope) == len(o.SIZES)
    assert o.value(after, "skybridge_quota_max_bytes", **scope) == QUOTA_BYTES
    assert o.value(after, "skybridge_quota_headroom_bytes", **scope) == QUOTA_BYTES - total
    assert o.value(after, "skybridge_quota_hard", **scope) == 1
    assert SECRET_KEY not in text
