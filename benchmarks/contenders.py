"""Everything the peer benchmark drives, started side by side on one machine.

One local directory holds the disk data of every disk-backed contender: the trivial file
server's bucket, rclone's buckets (rclone serves the directory itself) and Skybridge's
localfs backend (a subdirectory), so they all write to the same filesystem. SeaweedFS is
both a direct contender and the backend of the ``-sw`` Skybridge buckets. The two Skybridge
gateways (1 and 2 worker processes) share one database, so they serve the same buckets.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.client import Credentials, LeanS3Client, object_url
from benchmarks.encryption import enable_default_sse
from benchmarks.harness import BENCH_GC, module_server, run_sync
from tests.gateway_process import GatewayProcess
from tests.servers import (
    PostgresServer,
    RcloneServer,
    SeaweedServer,
    fresh_database,
    make_bucket,
    random_name,
)

# Skybridge buckets: name -> (placement policy, default SSE-S3).
SKYBRIDGE_BUCKETS = {
    "bench": (None, False),
    "bench-sw": ("sw-only", False),
    "bench-sse": (None, True),
    "bench-2sync": ("two-sync", False),
}
# Contender suffix -> Skybridge bucket.
SKYBRIDGE_VARIANTS = {"": "bench", "-sw": "bench-sw", "-sse": "bench-sse", "-2sync": "bench-2sync"}


@dataclass(frozen=True, slots=True)
class Contender:
    """One S3 endpoint and bucket, and the server process whose CPU and memory count."""

    name: str
    endpoint: str
    credentials: Credentials
    bucket: str
    pid: int
    # "ceiling", "direct", "peer" or "skybridge".
    kind: str


def _policy(name: str, backends: list[str]) -> dict[str, Any]:
    replicas = [{"backend": b} for b in backends]
    return {"name": name, "rules": [{"name": "r", "replicas": replicas, "write_mode": "all"}]}


def _gateway_config(disk: Path, seaweed: SeaweedServer, bucket: str) -> dict[str, Any]:
    backends = [
        {"name": "local", "driver": "localfs", "path": str(disk / "skybridge")},
        {
            "name": "sw",
            "driver": "s3",
            "endpoint": seaweed.endpoint_url,
            "bucket": bucket,
            "access_key": seaweed.access_key,
            "secret_key": seaweed.secret_key,
        },
    ]
    policies = [
        _policy("default", ["local"]),
        _policy("sw-only", ["sw"]),
        _policy("two-sync", ["local", "sw"]),
    ]
    return {
        "backends": backends,
        "default_backend": "local",
        "placement_policies": policies,
        "default_policy": "default",
        "gc": BENCH_GC,
        # The production defaults, not the small pools the test suite uses.
        "database": {"pool_min": 2, "pool_max": 20},
    }


class Field:
    """The running contenders; :meth:`pick` selects them by name."""

    def __init__(self, contenders: dict[str, Contender], postgres_dsn: str) -> None:
        self.contenders = contenders
        self.postgres_dsn = postgres_dsn

    def pick(self, names: list[str]) -> list[Contender]:
        return [self.contenders[n] for n in names if n in self.contenders]


@contextlib.contextmanager
def field_of_contenders(skybridge_workers: tuple[int, ...] = (1, 2)) -> Iterator[Field]:
    """Start every contender; all stopped and their data removed on exit."""
    with contextlib.ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="sb-peers-"))
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        disk = workdir / "disk"
        disk.mkdir()
        contenders: dict[str, Contender] = {}
        none = Credentials("unused", "unused")

        endpoint, pid = stack.enter_context(module_server("benchmarks.ceiling"))
        contenders["ceiling"] = Contender("ceiling", endpoint, none, "ceiling", pid, "ceiling")
        endpoint, pid = stack.enter_context(
            module_server("benchmarks.fileserver", "--root", str(disk))
        )
        contenders["disk"] = Contender("disk", endpoint, none, "direct", pid, "direct")
        rclone = stack.enter_context(RcloneServer(disk))
        rclone_credentials = Credentials(rclone.access_key, rclone.secret_key)
        contenders["rclone"] = Contender(
            "rclone", rclone.endpoint_url, rclone_credentials, "rclone", rclone.pid, "peer"
        )
        seaweed = stack.enter_context(SeaweedServer())
        sw_bucket = random_name("sb-peers-")
        make_bucket(seaweed.endpoint_url, seaweed.access_key, seaweed.secret_key, sw_bucket)
        sw_direct = random_name("sb-direct-")
        make_bucket(seaweed.endpoint_url, seaweed.access_key, seaweed.secret_key, sw_direct)
        contenders["seaweedfs"] = Contender(
            "seaweedfs",
            seaweed.endpoint_url,
            Credentials(seaweed.access_key, seaweed.secret_key),
            sw_direct,
            seaweed.pid,
            "direct",
        )

        postgres = stack.enter_context(PostgresServer())
        dsn, drop = asyncio.run(fresh_database(postgres.dsn))
        stack.callback(run_sync, drop)
        config = _gateway_config(disk, seaweed, sw_bucket)
        for workers in skybridge_workers:
            gateway = GatewayProcess(
                workdir / f"gateway-{workers}", dsn, {**config, "server": {"workers": workers}}
            )
            gateway.start()
            stack.callback(gateway.stop)
            assert gateway.process is not None
            for suffix, bucket in SKYBRIDGE_VARIANTS.items():
                name = f"sb{workers}{suffix}"
                contenders[name] = Contender(
                    name,
                    gateway.endpoint,
                    Credentials(gateway.access_key, gateway.secret_key),
                    bucket,
                    gateway.process.pid,
                    "skybridge",
                )
        first_gateway = next(c for c in contenders.values() if c.kind == "skybridge")
        asyncio.run(_create_buckets(list(contenders.values()), first_gateway))
        try:
            yield Field(contenders, dsn)
        except BaseException:
            print(f"see the logs under {workdir}", file=sys.stderr)
            raise


async def _create_buckets(contenders: list[Contender], gateway: Contender) -> None:
    async with LeanS3Client(gateway.endpoint, gateway.credentials) as client:
        for bucket, (policy, sse) in SKYBRIDGE_BUCKETS.items():
            await _create_skybridge_bucket(client, bucket, policy, sse)
    for contender in contenders:
        if contender.kind in ("ceiling", "peer") or contender.name == "disk":
            async with LeanS3Client(contender.endpoint, contender.credentials) as client:
                await client.create_bucket(contender.bucket)


async def _create_skybridge_bucket(
    client: LeanS3Client, bucket: str, policy: str | None, sse: bool
) -> None:
    url = object_url(client.endpoint, bucket)
    body = b""
    if policy is not None:
        body = (
            b"<CreateBucketConfiguration><LocationConstraint>"
            + policy.encode()
            + b"</LocationConstraint></CreateBucketConfiguration>"
        )
    await client.request("PUT", url, data=body, headers={"content-length": str(len(body))})
    if sse:
        await enable_default_sse(client, bucket)
