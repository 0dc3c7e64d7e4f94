"""A three-site topology for the placement acceptance tests (issue #3).

``local`` is a localfs directory at the node's own site s1; ``sw`` (SeaweedFS, site s2) and
``mo`` (moto, site s3) are reached over links whose endpoint is a :class:`LinkProxy`, so a
test can cut, hang or reset the path to either cloud. :class:`Ledger` reads the gateway's
PostgreSQL so tests can compare what the metadata claims with what the backends hold.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.conftest import client_for
from tests.gateway_process import GatewayProcess
from tests.netproxy import LinkProxy
from tests.servers import (
    LOOPBACK,
    MotoServer,
    SeaweedServer,
    make_bucket,
    random_name,
    s3_client,
)

REMOTE = ("sw", "mo")
DRAIN_TIMEOUT_S = 60.0
_POLL_S = 0.2


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def spread_policy() -> dict[str, Any]:
    """Acceptance 2: W=1 over local and sw, mo asynchronous, each replica on its own site."""
    return {
        "name": "default",
        "rules": [
            {
                "name": "spread",
                "replicas": [
                    {"backend": "local"},
                    {"backend": "sw"},
                    {"backend": "mo", "async": True},
                ],
                "write_mode": "quorum",
                "quorum": 1,
                "read_preference": "local",
                "distinct_sites": True,
            }
        ],
    }


def remote_pair_policy() -> dict[str, Any]:
    """Both replicas remote and synchronous; the cheaper link (sw) is read first."""
    return {
        "name": "remote-pair",
        "rules": [
            {
                "name": "pair",
                "replicas": [{"backend": "sw"}, {"backend": "mo"}],
                "write_mode": "all",
                "read_preference": "cheapest",
                "distinct_sites": True,
            }
        ],
    }


def all_sync_policy() -> dict[str, Any]:
    """local and sw both synchronous (W=2): a PUT needs both."""
    return {
        "name": "all-sync",
        "rules": [
            {
                "name": "both",
                "replicas": [{"backend": "local"}, {"backend": "sw"}],
                "write_mode": "all",
                "distinct_sites": True,
            }
        ],
    }


def _run(coro_factory: Callable[[], Any]) -> Any:
    # The tests are synchronous (boto3); each query gets a short-lived loop in a thread.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(coro_factory())).result()


@dataclass
class Ledger:
    """Read-only queries on one gateway's database."""

    dsn: str

    def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        async def go() -> list[dict[str, Any]]:
            con = await asyncpg.connect(self.dsn)
            try:
                return [dict(r) for r in await con.fetch(sql, *args)]
            finally:
                await con.close()

        rows: list[dict[str, Any]] = _run(go)
        return rows

    def value(self, sql: str, *args: Any) -> Any:
        rows = self.fetch(sql, *args)
        return next(iter(rows[0].values())) if rows else None

    def queue_length(self) -> int:
        return int(self.value("SELECT count(*) FROM replication_queue"))

    def deletions_length(self) -> int:
        return int(self.value("SELECT count(*) FROM backend_deletions"))

    def complete_versions(self, bucket: str) -> list[dict[str, Any]]:
        """Complete, non-marker versions of ``bucket`` with their verified ok placements."""
        return self.fetch(
            "SELECT v.id, v.key, v.version_id, v.size_bytes, v.is_latest,"
            " count(p.id) FILTER (WHERE p.state = 'ok' AND p.verified_at IS NOT NULL)"
            "   AS verified,"
            " count(p.id) AS placements,"
            " coalesce(array_agg(p.backend ORDER BY p.backend)"
            "   FILTER (WHERE p.id IS NOT NULL), '{}') AS backends"
            " FROM object_versions v JOIN buckets b ON b.id = v.bucket_id"
            " LEFT JOIN placements p ON p.bucket_id = v.bucket_id AND p.version_pk = v.id"
            " WHERE b.name = $1 AND v.state = 'complete' AND NOT v.is_delete_marker"
            " GROUP BY v.bucket_id, v.id ORDER BY v.id",
            bucket,
        )

    def ok_placements(self) -> list[dict[str, Any]]:
        return self.fetch(
            "SELECT p.version_pk, p.backend, p.backend_key, p.segment_keys, p.size_bytes,"
            " v.part_sizes FROM placements p JOIN object_versions v ON v.id = p.version_pk"
            " WHERE p.state = 'ok' ORDER BY p.id"
        )

    def versions_by_state(self, bucket: str, key: str) -> dict[str, int]:
        rows = self.fetch(
            "SELECT v.state, count(*) AS n FROM object_versions v"
            " JOIN buckets b ON b.id = v.bucket_id WHERE b.name = $1 AND v.key = $2"
            " GROUP BY v.state",
            bucket,
            key,
        )
        return {r["state"]: r["n"] for r in rows}

    def doomed_live_keys(self) -> list[dict[str, Any]]:
        """Deletions queued for bytes an ok placement still references: data loss to come."""
        return self.fetch(
            "SELECT d.backend, d.backend_key, d.not_before FROM backend_deletions d"
            " JOIN placements p ON p.backend = d.backend AND p.state = 'ok'"
            " AND (p.backend_key = d.backend_key OR d.backend_key = ANY(p.segment_keys))"
        )

    def wait_replicated(
        self, bucket: str, replicas: int, timeout_s: float = DRAIN_TIMEOUT_S
    ) -> None:
        """Poll until the queue is empty and every version of ``bucket`` has ``replicas``
        verified placements; fail with what is still missing otherwise."""
        deadline = time.monotonic() + timeout_s
        while True:
            short = [v for v in self.complete_versions(bucket) if v["verified"] != replicas]
            queued = self.queue_length()
            if not short and queued == 0:
                return
            if time.monotonic() > deadline:
                errors = self.fetch(
                    "SELECT target_backend, attempts, last_error FROM replication_queue LIMIT 5"
                )
                pytest.fail(
                    f"not replicated after {timeout_s} s: {len(short)} versions short of"
                    f" {replicas} (e.g. {short[:3]}), {queued} queued: {errors}"
                )
            time.sleep(_POLL_S)


def read_md5(s3: Any, bucket: str, key: str) -> str | None:
    """The MD5 of the object's bytes, or None when the key does not exist."""
    try:
        return md5(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except s3.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] == "NoSuchKey":
            return None
        raise


def multipart_across(clients: list[Any], bucket: str, key: str, parts: list[bytes]) -> None:
    """Created through the first client, part N through client N (cycling), completed
    through the last: a multipart upload that no single node sees whole."""
    upload = clients[0].create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    done = []
    for number, data in enumerate(parts, start=1):
        etag = clients[number % len(clients)].upload_part(
            Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=data
        )["ETag"]
        done.append({"PartNumber": number, "ETag": etag})
    clients[-1].complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": done}
    )


def poll(condition: Callable[[], bool], what: str, timeout_s: float = DRAIN_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(_POLL_S)


@dataclass
class Topology:
    """Backends at three sites and a proxy playing each link to a remote cloud."""

    root: Path
    seaweedfs: SeaweedServer
    moto: MotoServer
    buckets: dict[str, str] = field(default_factory=dict)
    proxies: dict[str, LinkProxy] = field(default_factory=dict)

    def open(self) -> None:
        for name, server in (("sw", self.seaweedfs), ("mo", self.moto)):
            self.buckets[name] = random_name("sb-place-")
            make_bucket(
                server.endpoint_url, server.access_key, server.secret_key, self.buckets[name]
            )
            proxy = LinkProxy(LOOPBACK, server.port)
            proxy.start()
            self.proxies[name] = proxy

    def close(self) -> None:
        for proxy in self.proxies.values():
            proxy.stop()

    def restore(self) -> None:
        for proxy in self.proxies.values():
            proxy.restore()

    @property
    def local_path(self) -> Path:
        return self.root / "local"

    def server(self, backend: str) -> SeaweedServer | MotoServer:
        return self.seaweedfs if backend == "sw" else self.moto

    def config(self, policies: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
        backends: list[dict[str, Any]] = [
            {"name": "local", "driver": "localfs", "site": "s1", "path": str(self.local_path)}
        ]
        links = []
        for position, (name, site, cost) in enumerate((("sw", "s2", 0.01), ("mo", "s3", 0.05))):
            server = self.server(name)
            backends.append(
                {
                    "name": name,
                    "driver": "s3",
                    "site": site,
                    "endpoint": server.endpoint_url,
                    "bucket": self.buckets[name],
                    "access_key": server.access_key,
                    "secret_key": server.secret_key,
                }
            )
            links.append(
                {
                    "name": f"s1-{name}",
                    "site": "s1",
                    "backend": name,
                    "endpoint": self.proxies[name].url,
                    "first_byte_timeout_s": 1,
                    "rtt_ms": 10 + position,
                    "cost_per_gib": cost,
                    "position": 0,
                }
            )
        return {
            "site": "s1",
            "backends": backends,
            "default_backend": "local",
            "links": links,
            "placement_policies": (
                policies
                if policies is not None
                else [spread_policy(), remote_pair_policy(), all_sync_policy()]
            ),
            "default_policy": "default",
            "replication": {
                "interval_s": 0.2,
                "stall_timeout_s": 2,
                "retry_base_delay_s": 0.2,
                "retry_max_delay_s": 2,
                "concurrency": 4,
                "first_byte_timeout_s": 2,
            },
            "gc": {"interval_s": 0.5, "deletion_delay_s": 0, "pending_timeout_s": 3600},
            **extra,
        }

    # -- what the backends really hold, read around the gateway --------------------------------

    def direct_client(self, backend: str) -> Any:
        server = self.server(backend)
        return s3_client(server.endpoint_url, server.access_key, server.secret_key)

    def stored_size(self, backend: str, key: str) -> int | None:
        if backend == "local":
            path = self.local_path / key
            return path.stat().st_size if path.is_file() else None
        try:
            head = self.direct_client(backend).head_object(Bucket=self.buckets[backend], Key=key)
        except self.direct_client(backend).exceptions.ClientError:
            return None
        return int(head["ContentLength"])

    def stored_bytes(self, backend: str, key: str) -> bytes:
        if backend == "local":
            return (self.local_path / key).read_bytes()
        response = self.direct_client(backend).get_object(Bucket=self.buckets[backend], Key=key)
        data: bytes = response["Body"].read()
        return data

    def keys(self, backend: str) -> set[str]:
        """Every object key the backend holds (localfs writes in progress excluded)."""
        if backend == "local":
            found = set()
            for directory, subdirs, files in os.walk(self.local_path):
                subdirs[:] = [d for d in subdirs if d != ".tmp"]
                for name in files:
                    found.add(str((Path(directory) / name).relative_to(self.local_path)))
            return found
        client = self.direct_client(backend)
        keys: set[str] = set()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.buckets[backend]):
            keys.update(item["Key"] for item in page.get("Contents", []))
        return keys

    def check_ledger_matches_backends(self, ledger: Ledger) -> None:
        """Every ok placement's bytes are on its backend with the right size."""
        problems = []
        for p in ledger.ok_placements():
            if p["segment_keys"]:
                pieces = list(zip(p["segment_keys"], p["part_sizes"], strict=True))
            else:
                pieces = [(p["backend_key"], p["size_bytes"])]
            for key, size in pieces:
                found = self.stored_size(p["backend"], key)
                if found != size:
                    problems.append((p["backend"], key, size, found))
        assert not problems, f"placements whose bytes are missing or wrong: {problems[:5]}"


@pytest.fixture(scope="module")
def topology_factory(
    seaweedfs_server: SeaweedServer,
    moto_server: MotoServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[], Topology]]:
    """Fresh backend buckets and link proxies per call; proxies stop at module end."""
    made: list[Topology] = []

    def make() -> Topology:
        topology = Topology(tmp_path_factory.mktemp("topology"), seaweedfs_server, moto_server)
        made.append(topology)
        topology.open()
        return topology

    yield make
    for topology in made:
        topology.close()


def no_retry_client(gateway: GatewayProcess) -> Any:
    """A boto3 client that makes one attempt, so a failed request is never hidden by a retry."""
    return client_for(gateway, retries={"mode": "standard", "max_attempts": 1})


@dataclass
class Cluster:
    """A started gateway over a topology, with its database ledger and an S3 client."""

    topology: Topology
    gateway: GatewayProcess
    ledger: Ledger
    s3: Any

    @property
    def proxies(self) -> dict[str, LinkProxy]:
        return self.topology.proxies


@pytest.fixture(scope="module")
def cluster_module(
    topology_factory: Callable[[], Topology], start_module_gateway: Callable[..., GatewayProcess]
) -> Cluster:
    topology = topology_factory()
    gateway = start_module_gateway(topology.config())
    return Cluster(topology, gateway, Ledger(gateway.database_url), no_retry_client(gateway))


@pytest.fixture
def cluster(cluster_module: Cluster) -> Iterator[Cluster]:
    """The module's cluster; every link is restored after the test, pass or fail."""
    cluster_module.topology.restore()
    yield cluster_module
    cluster_module.topology.restore()
