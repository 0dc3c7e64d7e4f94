"""Crash consistency: a gateway killed with SIGKILL mid-write loses the write, and nothing else.

After a restart the interrupted object is invisible, and the gc worker reclaims every byte
the dead process left on the backend (temp files, backend multipart uploads, parts).
Multipart uploads themselves survive a crash, as S3 uploads do.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from benchmarks.client import Credentials, object_url, sign
from tests.conftest import backend_config, client_for, files_under, gateway_config
from tests.gateway_process import GatewayProcess
from tests.netproxy import LinkProxy
from tests.servers import random_name, s3_client

CRASH_GC = {"interval_s": 0.2, "pending_timeout_s": 1, "deletion_delay_s": 0, "part_grace_s": 1}
MIB = 1024 * 1024
UPLOAD_BYTES = 64 * MIB
# Enough to get past an S3 backend's first 8 MiB part, so bytes really reach the backend.
SENT_BEFORE_KILL_BYTES = 20 * MIB
WAIT_S = 30.0


def wait_for(
    condition: Callable[[], bool],
    what: str,
    state: Callable[[], object] = lambda: None,
    timeout_s: float = WAIT_S,
) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; state: {state()!r}")
        time.sleep(0.1)


def fetchval(dsn: str, sql: str) -> Any:
    async def query() -> Any:
        connection = await asyncpg.connect(dsn)
        try:
            return await connection.fetchval(sql)
        finally:
            await connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, query()).result()


class BackendView:
    """What one backend physically holds, seen around the gateway."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def _s3(self) -> Any:
        c = self.config
        return s3_client(c["endpoint"], c["access_key"], c["secret_key"])

    def keys(self) -> list[str]:
        if self.config["driver"] == "localfs":
            root = Path(self.config["path"])
            return sorted(p.relative_to(root).as_posix() for p in files_under(root))
        listed = self._s3().list_objects_v2(Bucket=self.config["bucket"])
        return sorted(item["Key"] for item in listed.get("Contents", []))

    def uploads(self) -> list[str]:
        """Backend multipart uploads in progress (S3 backends only)."""
        if self.config["driver"] == "localfs":
            return []
        listed = self._s3().list_multipart_uploads(Bucket=self.config["bucket"])
        return [u["UploadId"] for u in listed.get("Uploads", [])]

    def write_in_flight(self) -> bool:
        """Bytes of an unfinished write have reached the backend."""
        if self.config["driver"] == "localfs":
            tmp = Path(self.config["path"]) / ".tmp"
            return any(p.stat().st_size > 0 for p in tmp.iterdir())
        return bool(self.uploads())


@pytest.fixture(scope="module", params=["localfs", "moto"])
def crash_setup(
    request: pytest.FixtureRequest,
    start_module_gateway: Callable[..., GatewayProcess],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[GatewayProcess, BackendView]]:
    root = tmp_path_factory.mktemp(f"crash-{request.param}")
    backend = backend_config(request.param, request, root)
    gateway = start_module_gateway(gateway_config(backend, gc=CRASH_GC))
    yield gateway, BackendView(backend)
    gateway.stop()  # early: a 64 MiB-capable gateway per backend is not needed past here


def start_slow_put(gateway: GatewayProcess, bucket: str, key: str) -> http.client.HTTPConnection:
    """Begin a PUT of UPLOAD_BYTES and send only part of the body: the upload is mid-flight."""
    url = object_url(gateway.endpoint, bucket, key)
    headers = sign(
        "PUT",
        url,
        Credentials(gateway.access_key, gateway.secret_key),
        {"content-length": str(UPLOAD_BYTES)},
    )
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=WAIT_S)
    connection.putrequest("PUT", parts.path, skip_host=True, skip_accept_encoding=True)
    for name, value in headers.items():
        connection.putheader(name, value)
    connection.endheaders()
    chunk = os.urandom(MIB)
    for _ in range(SENT_BEFORE_KILL_BYTES // MIB):
        connection.send(chunk)
    return connection


def pending_in(dsn: str) -> int:
    return int(fetchval(dsn, "SELECT count(*) FROM object_versions WHERE state = 'pending'"))


def pending_versions(gateway: GatewayProcess) -> int:
    return pending_in(gateway.database_url)


def queued_deletions(gateway: GatewayProcess) -> int:
    return int(fetchval(gateway.database_url, "SELECT count(*) FROM backend_deletions"))


def test_kill_during_put_leaves_no_object_and_no_bytes(
    crash_setup: tuple[GatewayProcess, BackendView],
) -> None:
    gateway, backend = crash_setup
    s3 = client_for(gateway)
    bucket, key = random_name(), "big/object.bin"
    s3.create_bucket(Bucket=bucket)
    connection = start_slow_put(gateway, bucket, key)
    try:
        wait_for(backend.write_in_flight, "the upload to reach the backend", gateway.log_tail)
        assert pending_versions(gateway) == 1
        gateway.kill()
    finally:
        connection.close()
    gateway.start()

    with pytest.raises(s3.exceptions.ClientError) as info:
        s3.head_object(Bucket=bucket, Key=key)
    assert info.value.response["Error"]["Code"] == "404"
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)

    wait_for(lambda: pending_versions(gateway) == 0, "gc to reap the pending version")
    wait_for(lambda: queued_deletions(gateway) == 0, "gc to drain backend_deletions")
    wait_for(lambda: not backend.keys(), "no orphaned bytes on the backend", backend.keys)
    wait_for(lambda: not backend.uploads(), "gc to abort the backend multipart upload")
    # The gateway still works after the crash.
    s3.put_object(Bucket=bucket, Key=key, Body=b"after the crash")
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"after the crash"


# gc reaps a pending version after 1 s but sweeps a backend's unfinished writes (temp
# files, multipart uploads) only after an hour: the slow write below runs to its end.
SLOW_WRITE_GC = {**CRASH_GC, "part_grace_s": 3600}


@pytest.fixture(params=["localfs", "moto"])
def slow_write_setup(
    request: pytest.FixtureRequest,
    start_test_gateway: Callable[..., GatewayProcess],
    tmp_path: Path,
) -> tuple[GatewayProcess, BackendView]:
    backend = backend_config(request.param, request, tmp_path)
    return start_test_gateway(gateway_config(backend, gc=SLOW_WRITE_GC)), BackendView(backend)


def test_a_put_that_outlives_its_pending_version_leaves_no_bytes(
    slow_write_setup: tuple[GatewayProcess, BackendView],
) -> None:
    """A write slower than gc's pending timeout: gc reaps its version (and deletes bytes
    that are not there yet) while the body still streams; the write then lands, its commit
    finds the version gone, and the writer must delete what it stored."""
    gateway, backend = slow_write_setup
    s3 = client_for(gateway)
    bucket, key = random_name(), "slow/object.bin"
    s3.create_bucket(Bucket=bucket)
    connection = start_slow_put(gateway, bucket, key)
    try:
        wait_for(backend.write_in_flight, "the upload to reach the backend", gateway.log_tail)
        wait_for(lambda: pending_versions(gateway) == 0, "gc to reap the pending version")
        wait_for(lambda: queued_deletions(gateway) == 0, "gc to drain backend_deletions")
        chunk = os.urandom(MIB)
        for _ in range((UPLOAD_BYTES - SENT_BEFORE_KILL_BYTES) // MIB):
            connection.send(chunk)
        response = connection.getresponse()
        assert response.status == 503, response.read()
        assert b"reclaimed" in response.read()
    finally:
        connection.close()
    with pytest.raises(s3.exceptions.ClientError) as info:
        s3.head_object(Bucket=bucket, Key=key)
    assert info.value.response["Error"]["Code"] == "404"
    wait_for(lambda: not backend.keys(), "no orphaned bytes on the backend", backend.keys)


def _through(proxy: LinkProxy, dsn: str) -> str:
    parts = urlsplit(dsn)
    user = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{user}@{proxy.address}"))


@pytest.mark.parametrize("database_after", ["reachable", "unreachable"])
def test_a_commit_whose_answer_is_lost_keeps_its_bytes(
    database_after: str,
    start_test_gateway: Callable[..., GatewayProcess],
    new_database: Callable[[], str],
    tmp_path: Path,
) -> None:
    """PostgreSQL commits a PUT's version but the answer never reaches the gateway (the
    connection drops, as when PostgreSQL restarts). The writer cannot tell a lost answer
    from a failed commit, so it must not delete the bytes: the version they belong to is
    committed and has to stay readable."""
    dsn = new_database()
    backend = {"name": "localfs", "driver": "localfs", "path": str(tmp_path / "localfs")}
    target = urlsplit(dsn)
    assert target.hostname is not None
    assert target.port is not None
    with LinkProxy(target.hostname, target.port) as proxy:
        gateway = start_test_gateway(gateway_config(backend), database_url=_through(proxy, dsn))
        s3 = client_for(gateway, retries={"total_max_attempts": 1})
        bucket, key, body = random_name(), "lost/answer.bin", os.urandom(MIB)
        s3.create_bucket(Bucket=bucket)
        # commit_version's answer names its outcome; that message, and only it, is lost.
        proxy.lose(b"committed", then_cut=database_after == "unreachable")
        with pytest.raises(s3.exceptions.ClientError) as info:
            s3.put_object(Bucket=bucket, Key=key, Body=body)
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert proxy.lost == 1
        states = "SELECT string_agg(state, ',') FROM object_versions"
        assert fetchval(dsn, states) == "complete"
        proxy.restore()
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body


def _start_upload_with_two_parts(s3: Any, bucket: str, key: str) -> tuple[str, list[Any]]:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts = []
    for number in (1, 2):
        body = bytes([number]) * (5 * MIB)
        etag = s3.upload_part(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
        )["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    return upload_id, parts


def test_multipart_upload_survives_a_crash(
    crash_setup: tuple[GatewayProcess, BackendView],
) -> None:
    gateway, backend = crash_setup
    s3 = client_for(gateway)
    bucket = random_name()
    s3.create_bucket(Bucket=bucket)
    kept_id, kept_parts = _start_upload_with_two_parts(s3, bucket, "kept")
    dropped_id, _ = _start_upload_with_two_parts(s3, bucket, "dropped")
    gateway.kill()
    gateway.start()

    listed = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert sorted((u["Key"], u["UploadId"]) for u in listed) == [
        ("dropped", dropped_id),
        ("kept", kept_id),
    ]
    assert len(s3.list_parts(Bucket=bucket, Key="kept", UploadId=kept_id)["Parts"]) == 2
    s3.complete_multipart_upload(
        Bucket=bucket, Key="kept", UploadId=kept_id, MultipartUpload={"Parts": kept_parts}
    )
    s3.abort_multipart_upload(Bucket=bucket, Key="dropped", UploadId=dropped_id)

    got = s3.get_object(Bucket=bucket, Key="kept")["Body"].read()
    assert got == b"\x01" * (5 * MIB) + b"\x02" * (5 * MIB)
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)

    def only_kept_parts_remain() -> bool:
        keys = [k for k in backend.keys() if "/mpu/" in k]
        return len(keys) == 2 and all(f"/mpu/{kept_id}/" in k for k in keys)

    wait_for(only_kept_parts_remain, "gc to delete the aborted upload's parts", backend.keys)
    wait_for(lambda: queued_deletions(gateway) == 0, "gc to drain backend_deletions")
