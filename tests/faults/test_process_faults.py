"""Issue #10, the fault matrix's process-level rows: SIGKILL at chosen points, PostgreSQL
restarts, a full disk and clock skew, each with its expected outcome.

After every SIGKILL the gateway is started again, gc runs, and the crash-consistency check
(``check_consistent``) must pass: no visible partial object, no orphan bytes on any
backend, no placement pointing at nothing, a clean full scrub.

Clock skew is the client's only: the gateway reads the system clock and has no way to skew
its own in a test (that would take a libfaketime preload), so a request signed with a
clock off by more than 15 minutes is what is tested.
"""

from __future__ import annotations

import http.client
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from benchmarks.client import Credentials, object_url, sign
from tests.faults.conftest import TMPFS_BYTES, Rig, check_consistent, md5, wait_for
from tests.servers import random_name

KIB = 1024
MIB = 1024 * KIB
SLOW_PUT_BYTES = 4 * MIB


@pytest.fixture
def clean(rig: Rig) -> Iterator[Rig]:
    rig.restore()
    yield rig
    rig.restore()


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def _read(rig: Rig, bucket: str, key: str) -> str | None:
    try:
        return md5(rig.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "NoSuchKey":
            return None
        raise


def _signed_connection(
    rig: Rig, method: str, bucket: str, key: str, size: int, now: datetime | None = None
) -> http.client.HTTPConnection:
    """A request whose head is sent and whose body the caller sends (or not)."""
    gateway = rig.gateway
    url = object_url(gateway.endpoint, bucket, key)
    headers = sign(method, url, Credentials(gateway.access_key, gateway.secret_key),
                   {"content-length": str(size)}, now=now)  # fmt: skip
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=30)
    connection.putrequest(method, parts.path, skip_host=True, skip_accept_encoding=True)
    for name, value in headers.items():
        connection.putheader(name, value)
    connection.endheaders()
    return connection


def _pending(rig: Rig) -> int:
    return int(rig.ledger.value("SELECT count(*) FROM object_versions WHERE state = 'pending'"))


def _kill_and_restart(rig: Rig) -> None:
    rig.gateway.kill()
    rig.restore()
    rig.gateway.start()


# -- SIGKILL ----------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["local", "remote"])
def test_sigkill_mid_put_body_leaves_no_object(clean: Rig, policy: str) -> None:
    """Expected: the interrupted PUT is not visible; its bytes are reclaimed."""
    bucket, key = clean.buckets[policy], random_name("killed-")
    sent = clean.link.bytes_up
    connection = _signed_connection(clean, "PUT", bucket, key, SLOW_PUT_BYTES)
    try:
        connection.send(os.urandom(SLOW_PUT_BYTES // 2))
        if policy == "local":
            wait_for(lambda: any(p.stat().st_size for p in clean.local_temp_files()),
                     "bytes in a local temp file")  # fmt: skip
        else:
            wait_for(lambda: clean.link.bytes_up - sent > MIB, "bytes on their way to mo")
        _kill_and_restart(clean)
    finally:
        connection.close()

    assert _read(clean, bucket, key) is None
    check_consistent(clean)


def test_sigkill_after_backend_write_before_commit_leaves_no_object(clean: Rig) -> None:
    """The commit is held (the link to PostgreSQL hangs) after the bytes are published on
    the backend. Expected: not visible after the restart; gc deletes the bytes."""
    bucket, key = clean.buckets["local"], random_name("uncommitted-")
    before = clean.local_keys()
    connection = _signed_connection(clean, "PUT", bucket, key, 64 * KIB)
    try:
        connection.send(os.urandom(32 * KIB))
        wait_for(lambda: _pending(clean) == 1, "the pending version")
        clean.db_link.hang()
        connection.send(os.urandom(32 * KIB))
        wait_for(lambda: len(clean.local_keys() - before) == 1, "the bytes published")
        _kill_and_restart(clean)
    finally:
        connection.close()

    assert _read(clean, bucket, key) is None
    check_consistent(clean)


def test_sigkill_mid_multipart_complete_then_complete_again(clean: Rig) -> None:
    """Expected: the upload is still there after the restart (the completion never
    committed), completing it again gives the right bytes, nothing is left over."""
    s3, bucket, key = clean.s3, clean.buckets["remote"], random_name("mpu-")
    parts = [os.urandom(5 * MIB), os.urandom(10 * KIB)]
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    listed = [
        {"PartNumber": n, "ETag": s3.upload_part(Bucket=bucket, Key=key, UploadId=upload,
                                                 PartNumber=n, Body=data)["ETag"]}
        for n, data in enumerate(parts, start=1)
    ]  # fmt: skip
    clean.db_link.hang()
    outcome: list[Any] = []

    def complete() -> None:
        try:
            done = {"Parts": listed}
            outcome.append(
                s3.complete_multipart_upload(
                    Bucket=bucket, Key=key, UploadId=upload, MultipartUpload=done
                )
            )
        except Exception as exc:  # the connection dies with the gateway
            outcome.append(exc)

    completing = threading.Thread(target=complete)
    completing.start()
    # Time for the request to reach the gateway and block on the held database; were it
    # not there yet, the kill would leave the same state.
    threading.Event().wait(1.0)
    _kill_and_restart(clean)
    completing.join()

    assert isinstance(outcome[0], Exception)
    assert _read(clean, bucket, key) is None
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]] == [upload]
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload,
                                 MultipartUpload={"Parts": listed})  # fmt: skip
    clean.acknowledged[(bucket, key)] = md5(b"".join(parts))
    assert _read(clean, bucket, key) == md5(b"".join(parts))
    check_consistent(clean)


def test_sigkill_mid_replication_then_the_copy_completes(clean: Rig) -> None:
    """Expected: the PUT was acknowledged (local); after the restart the replication
    worker copies it again and mo holds the right bytes; no stray upload or orphan."""
    bucket, key = clean.buckets["replicated"], random_name("rep-")
    body = os.urandom(MIB)
    clean.link.throttle(64 * KIB)
    sent = clean.link.bytes_up
    clean.s3.put_object(Bucket=bucket, Key=key, Body=body)
    clean.acknowledged[(bucket, key)] = md5(body)
    wait_for(lambda: clean.link.bytes_up - sent > 200 * KIB, "the copy to be under way")
    _kill_and_restart(clean)

    def replicated() -> bool:
        rows = clean.ledger.fetch(
            "SELECT p.backend_key FROM placements p JOIN object_versions v"
            " ON v.id = p.version_pk JOIN buckets b ON b.id = v.bucket_id WHERE b.name = $1"
            " AND v.key = $2 AND p.backend = 'mo' AND p.state = 'ok'"
            " AND p.verified_at IS NOT NULL",
            bucket,
            key,
        )
        return bool(rows) and md5(clean.mo_bytes(rows[0]["backend_key"])) == md5(body)

    wait_for(replicated, "mo to hold a verified, intact replica")
    assert _read(clean, bucket, key) == md5(body)
    check_consistent(clean)


# -- PostgreSQL ---------------------------------------------------------------------------------


def test_postgres_restart_answers_503_then_recovers_without_a_gateway_restart(
    clean: Rig,
) -> None:
    """Expected: ServiceUnavailable while PostgreSQL is down, for reads and writes alike;
    once it is back, the same gateway serves, and what was stored before is intact."""
    bucket, key = clean.buckets["local"], random_name("pg-")
    clean.s3.put_object(Bucket=bucket, Key=key, Body=b"before")
    clean.acknowledged[(bucket, key)] = md5(b"before")
    clean.postgres.crash()
    try:
        with pytest.raises(ClientError) as put:
            clean.s3.put_object(Bucket=bucket, Key=key, Body=b"during")
        with pytest.raises(ClientError) as get:
            clean.s3.get_object(Bucket=bucket, Key=key)
    finally:
        clean.postgres.resume()

    assert (_code(put), _code(get)) == ("ServiceUnavailable", "ServiceUnavailable")
    wait_for(lambda: _answers(clean, bucket, key), "the gateway to reconnect")
    assert _read(clean, bucket, key) == md5(b"before")
    clean.s3.put_object(Bucket=bucket, Key=key, Body=b"after")
    clean.acknowledged[(bucket, key)] = md5(b"after")
    assert _read(clean, bucket, key) == md5(b"after")


def _answers(rig: Rig, bucket: str, key: str) -> bool:
    try:
        rig.s3.head_object(Bucket=bucket, Key=key)
    except ClientError:
        return False
    return True


# -- disk full ----------------------------------------------------------------------------------


@pytest.fixture
def full_disk(clean: Rig) -> Iterator[Rig]:
    """The local backend's tmpfs filled to within 64 KiB."""
    if not clean.disk_limited:
        pytest.skip("mounting a tmpfs is not allowed here, so the disk cannot be filled")
    filler = Path(clean.local_path) / "filler.bin"
    free = os.statvfs(clean.local_path).f_bavail * os.statvfs(clean.local_path).f_frsize
    assert free <= TMPFS_BYTES
    filler.write_bytes(b"\0" * (free - 64 * KIB))
    try:
        yield clean
    finally:
        filler.unlink()


def test_disk_full_put_fails_cleanly_and_keeps_the_old_object(full_disk: Rig) -> None:
    """Expected: ServiceUnavailable; the old object intact; no temp file left behind."""
    rig, bucket, key = full_disk, full_disk.buckets["local"], random_name("full-")
    rig.s3.put_object(Bucket=bucket, Key=key, Body=b"old")
    rig.acknowledged[(bucket, key)] = md5(b"old")

    with pytest.raises(ClientError) as info:
        rig.s3.put_object(Bucket=bucket, Key=key, Body=os.urandom(MIB))

    assert _code(info) == "ServiceUnavailable"
    assert _read(rig, bucket, key) == md5(b"old")
    assert not rig.local_temp_files()


def test_disk_full_part_upload_fails_cleanly(full_disk: Rig) -> None:
    """Expected: ServiceUnavailable for the part; the upload can still be aborted."""
    rig, bucket, key = full_disk, full_disk.buckets["local"], random_name("full-mpu-")
    upload = rig.s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]

    with pytest.raises(ClientError) as info:
        rig.s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1,
                           Body=os.urandom(MIB))  # fmt: skip

    assert _code(info) == "ServiceUnavailable"
    assert rig.s3.list_parts(Bucket=bucket, Key=key, UploadId=upload).get("Parts", []) == []
    rig.s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload)
    assert not rig.local_temp_files()


# -- clock skew ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PUT", "GET", "DELETE"])
@pytest.mark.parametrize("skew_min", [-20, 20])
def test_client_clock_skew_is_refused_and_changes_nothing(
    clean: Rig, method: str, skew_min: int
) -> None:
    """Expected: 403 RequestTimeTooSkewed, and the object unchanged."""
    bucket, key = clean.buckets["local"], random_name("skew-")
    clean.s3.put_object(Bucket=bucket, Key=key, Body=b"kept")
    clean.acknowledged[(bucket, key)] = md5(b"kept")
    body = b"changed" if method == "PUT" else b""
    now = datetime.now(UTC) + timedelta(minutes=skew_min)
    connection = _signed_connection(clean, method, bucket, key, len(body), now=now)
    try:
        connection.send(body)
        response = connection.getresponse()
        answer = response.read()
    finally:
        connection.close()

    assert response.status == 403
    assert b"<Code>RequestTimeTooSkewed</Code>" in answer
    assert _read(clean, bucket, key) == md5(b"kept")


def test_after_the_process_faults_nothing_is_lost_and_nothing_is_left_over(rig: Rig) -> None:
    rig.restore()
    wrong = {t: d for t, d in rig.acknowledged.items() if _read(rig, *t) != d}
    assert not wrong
    check_consistent(rig)
