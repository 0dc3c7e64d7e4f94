"""The fault matrix's rig: one gateway whose every dependency a test can break.

- ``local``: a localfs backend on a small tmpfs (8 MiB), so a test can fill the disk;
  where mounting is not allowed it is a plain directory and the disk-full cases skip.
- ``mo`` (moto, tier warm): reached over a link whose endpoint is a :class:`LinkProxy`
  (cut, reset, delay, throttle, corrupt) in front of a :class:`FaultProxy` (500, 503,
  hang, partial body, wrong ETag) in front of moto.
- PostgreSQL: a cluster of the rig's own (it can crash and resume it), reached through a
  :class:`LinkProxy` too, so a test can hold the gateway's commit while bytes are written.

Buckets pick their placement policy by LocationConstraint: ``remote`` (mo only),
``replicated`` (local now, mo through the replication queue), ``both`` (local and mo at
once, W=1: a failed mo write is queued for replication) and ``local`` (local only; its
lifecycle rule transitions ``tr/`` keys to STANDARD_IA, the warm tier: mo).
"""

from __future__ import annotations

import contextlib
import hashlib
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.conftest import client_for, files_under, run_sync
from tests.deploy.conftest import RestartablePostgres
from tests.faultproxy import FaultProxy
from tests.gateway_process import GatewayProcess
from tests.lifecycle.conftest import NO_SCHEDULED_PASS
from tests.netproxy import LinkProxy
from tests.placement.conftest import Ledger
from tests.servers import LOOPBACK, MotoServer, fresh_database, make_bucket, random_name, s3_client

TMPFS_BYTES = 8 * 1024 * 1024
WAIT_S = 30.0
# Short, so that crash tests see gc reap quickly, yet longer than any write under a fault
# (a write still running when its pending version is reaped lands as orphan bytes).
GC = {"interval_s": 0.2, "deletion_delay_s": 0, "pending_timeout_s": 8, "part_grace_s": 8}
# No link probes: they would spend a fault rule meant for the operation under test.
REPLICATION = {"interval_s": 0.2, "stall_timeout_s": 1, "retry_base_delay_s": 0.2,
               "retry_max_delay_s": 1, "first_byte_timeout_s": 1,
               "probe_interval_s": 0, "lease_s": 3}  # fmt: skip
LIFECYCLE_RULES = [{"ID": "warm", "Filter": {"Prefix": "tr/"}, "Status": "Enabled",
                    "Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}]}]  # fmt: skip


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.1)


def _policies() -> list[dict[str, Any]]:
    def policy(name: str, replicas: list[dict[str, Any]], **rule: Any) -> dict[str, Any]:
        return {"name": name, "rules": [{"name": name, "replicas": replicas, **rule}]}

    return [
        policy("local", [{"backend": "local"}]),
        policy("remote", [{"backend": "mo"}]),
        policy("replicated", [{"backend": "local"}, {"backend": "mo", "async": True}]),
        policy("both", [{"backend": "local"}, {"backend": "mo"}], write_mode="quorum", quorum=1),
    ]


@contextlib.contextmanager
def _tmpfs(path: Path) -> Iterator[bool]:
    """A tmpfs of TMPFS_BYTES at ``path``: True if mounted, False if not allowed here."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES}", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    try:
        yield mounted.returncode == 0
    finally:
        if mounted.returncode == 0:
            subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


@dataclass
class Rig:
    gateway: GatewayProcess
    postgres: RestartablePostgres
    db_link: LinkProxy
    link: LinkProxy
    backend: FaultProxy
    moto: MotoServer
    mo_bucket: str
    local_path: Path
    disk_limited: bool
    ledger: Ledger
    buckets: dict[str, str] = field(default_factory=dict)
    # Every acknowledged write: (bucket, key) -> md5, None once deleted.
    acknowledged: dict[tuple[str, str], str | None] = field(default_factory=dict)

    @property
    def s3(self) -> Any:
        """One attempt per request: a retry must never hide a failure from the matrix."""
        return client_for(
            self.gateway,
            retries={"mode": "standard", "total_max_attempts": 1},
            read_timeout=30,
            connect_timeout=5,
        )

    def restore(self) -> None:
        self.link.restore()
        self.backend.restore()
        self.db_link.restore()

    def mo_keys(self) -> set[str]:
        client = s3_client(self.moto.endpoint_url, self.moto.access_key, self.moto.secret_key)
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=self.mo_bucket)
        return {item["Key"] for page in pages for item in page.get("Contents", [])}

    def mo_bytes(self, key: str) -> bytes:
        client = s3_client(self.moto.endpoint_url, self.moto.access_key, self.moto.secret_key)
        data: bytes = client.get_object(Bucket=self.mo_bucket, Key=key)["Body"].read()
        return data

    def mo_uploads(self) -> list[str]:
        client = s3_client(self.moto.endpoint_url, self.moto.access_key, self.moto.secret_key)
        listed = client.list_multipart_uploads(Bucket=self.mo_bucket)
        return [u["UploadId"] for u in listed.get("Uploads", [])]

    def local_keys(self) -> set[str]:
        root = self.local_path
        return {
            p.relative_to(root).as_posix()
            for p in files_under(root)
            if ".tmp" not in p.relative_to(root).parts
        }

    def local_temp_files(self) -> list[Path]:
        return [p for p in (self.local_path / ".tmp").glob("*") if p.is_file()]


def _with_port(dsn: str, port: int) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(netloc=f"{parts.username}@{LOOPBACK}:{port}"))


@pytest.fixture(scope="module")
def rig(moto_server: MotoServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    root = tmp_path_factory.mktemp("faults")
    with contextlib.ExitStack() as stack:
        postgres = stack.enter_context(RestartablePostgres())
        dsn, _drop = run_sync(lambda: fresh_database(postgres.dsn))
        db_link = stack.enter_context(LinkProxy(LOOPBACK, postgres.port))
        mo_bucket = random_name("sb-faults-")
        make_bucket(moto_server.endpoint_url, "testing", "testing", mo_bucket)
        backend = stack.enter_context(FaultProxy(moto_server.endpoint_url, hang_s=30))
        link = stack.enter_context(LinkProxy(LOOPBACK, backend.port))
        local = Path(tempfile.mkdtemp(dir=root, prefix="local-"))
        disk_limited = stack.enter_context(_tmpfs(local))
        config = _config(local, moto_server, mo_bucket, link)
        gateway = GatewayProcess(root / "gateway", _with_port(dsn, db_link.port), config)
        gateway.start()
        stack.callback(gateway.stop)
        rig = Rig(gateway, postgres, db_link, link, backend, moto_server, mo_bucket, local,
                  disk_limited, Ledger(dsn))  # fmt: skip
        _make_buckets(rig)
        yield rig


def _config(local: Path, moto: MotoServer, bucket: str, link: LinkProxy) -> dict[str, Any]:
    return {
        "site": "s1",
        "backends": [
            {"name": "local", "driver": "localfs", "site": "s1", "path": str(local)},
            {"name": "mo", "driver": "s3", "site": "s2", "tier": "warm",
             "endpoint": moto.endpoint_url, "bucket": bucket, "access_key": moto.access_key,
             "secret_key": moto.secret_key, "read_timeout_s": 5},
        ],
        "links": [{"name": "s1-mo", "site": "s1", "backend": "mo", "endpoint": link.url,
                   "first_byte_timeout_s": 1, "breaker_failures": 1000}],
        "default_backend": "local",
        "placement_policies": _policies(),
        "default_policy": "local",
        "replication": REPLICATION,
        "gc": GC,
        "lifecycle": NO_SCHEDULED_PASS,
        "server": {"shutdown_timeout_s": 2},
        "database": {"pool_min": 1, "pool_max": 6},
    }  # fmt: skip


def _make_buckets(rig: Rig) -> None:
    s3 = rig.s3
    for policy in ("local", "remote", "replicated", "both"):
        name = random_name(f"mx-{policy}-")
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": policy})
        rig.buckets[policy] = name
    s3.put_bucket_lifecycle_configuration(
        Bucket=rig.buckets["local"], LifecycleConfiguration={"Rules": LIFECYCLE_RULES}
    )


def check_consistent(rig: Rig) -> None:
    """Crash consistency, once gc has run: no write left half done, no orphan bytes on any
    backend, no placement pointing at nothing, and a full scrub finds nothing wrong."""
    ledger = rig.ledger

    def settled() -> bool:
        unfinished = ledger.value(
            "SELECT count(*) FROM object_versions WHERE state IN ('pending', 'failed')"
        )
        return unfinished == 0 and ledger.queue_length() == 0 and ledger.deletions_length() == 0

    wait_for(settled, "gc and replication to settle")
    wait_for(lambda: not rig.mo_uploads(), "gc to abort abandoned backend uploads")
    wait_for(lambda: not rig.local_temp_files(), "gc to sweep temp files of dead writes")
    referenced: dict[str, set[str]] = {"local": set(), "mo": set()}
    for p in ledger.ok_placements():
        referenced[p["backend"]].update(p["segment_keys"] or [p["backend_key"]])
    parts = ledger.fetch("SELECT backend_key, backends FROM multipart_parts")
    for part in parts:
        for backend in part["backends"]:
            referenced[backend].add(part["backend_key"])
    stored = {"local": rig.local_keys(), "mo": rig.mo_keys()}
    for backend in ("local", "mo"):
        assert referenced[backend] <= stored[backend], f"placements on {backend} point at nothing"
        assert stored[backend] <= referenced[backend], f"orphan bytes on {backend}"
    code, report = rig.gateway.cli("scrub", "--full")
    assert (code, report["missing"], report["corrupt"], report["orphans"]) == (0, 0, 0, {})
