"""Issue #4, acceptance 5: add a key-encryption key, re-wrap everything, retire the old key,
and every object still reads back; a database dump holds no key material in clear."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.admin.client import AdminClient
from tests.conftest import client_for, gateway_config
from tests.gateway_process import GatewayProcess
from tests.servers import random_name

MIB = 1 << 20


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def _write_ring(path: Path, active: str, keys: dict[str, str]) -> None:
    path.write_text(json.dumps({"active": active, "keys": keys}))


def _gateway_with_ring(
    start_test_gateway: Callable[..., GatewayProcess], tmp_path: Path, k1: str, **extra: Any
) -> tuple[GatewayProcess, Path]:
    """A gateway whose key ring file holds one key, k1."""
    ring = tmp_path / "key-ring.json"
    _write_ring(ring, "k1", {"k1": k1})
    backend = {"name": "local", "driver": "localfs", "path": str(tmp_path / "store")}
    config = gateway_config(backend, encryption={"key_ring_file": str(ring)}, **extra)
    return start_test_gateway(config), ring


def _keys(admin: AdminClient) -> dict[str, dict[str, Any]]:
    return {k["name"]: k for k in admin.ok("GET", "/encryption-keys")}


def test_rotation_rewraps_retires_and_everything_still_reads(
    start_test_gateway: Callable[..., GatewayProcess], tmp_path: Path
) -> None:
    k1, k2 = _key(), _key()
    gateway, ring = _gateway_with_ring(start_test_gateway, tmp_path, k1)
    s3, admin = client_for(gateway), AdminClient.of(gateway)
    bucket = random_name("rot-")
    s3.create_bucket(Bucket=bucket)
    objects = {f"o{n}": os.urandom(1000 * (n + 1)) for n in range(5)}
    for key, body in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body, ServerSideEncryption="AES256")
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp", ServerSideEncryption="AES256")
    big = os.urandom(5 * MIB + 10)
    etag = s3.upload_part(Bucket=bucket, Key="mp", PartNumber=1, UploadId=upload["UploadId"],
                          Body=big)["ETag"]  # fmt: skip
    parts = {"Parts": [{"PartNumber": 1, "ETag": etag}]}
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload["UploadId"],
                                 MultipartUpload=parts)  # fmt: skip
    objects["mp"] = big
    made = admin.ok("POST", "/access-keys", {"tenant": "root"})
    assert _keys(admin)["k1"]["versions"] == 6

    # A new key becomes active; the old one keeps serving reads until the re-wrap.
    gateway.stop()
    _write_ring(ring, "k2", {"k1": k1, "k2": k2})
    gateway.start()
    keys = _keys(admin)
    assert keys["k2"]["active"]
    assert not keys["k1"]["active"]
    assert keys["k1"]["versions"] == 6
    for key, body in objects.items():
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
    status, refused = admin.call("POST", "/encryption-keys/k1/retire")
    assert (status, refused["error"]["code"]) == (409, "Conflict")
    done = admin.ok("POST", "/encryption-keys/rewrap")
    assert done["envelopes"] == 6
    assert done["remaining"] == 0
    keys = _keys(admin)
    assert (keys["k1"]["versions"], keys["k1"]["access_keys"]) == (0, 0)
    assert keys["k2"]["versions"] == 6
    assert admin.ok("POST", "/encryption-keys/k1/retire")["retired"] is True

    # The old key leaves the key ring for good: everything still reads, every key works.
    gateway.stop()
    _write_ring(ring, "k2", {"k2": k2})
    gateway.start()
    for key, body in objects.items():
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
    other = boto3.client(
        "s3", endpoint_url=gateway.endpoint, region_name="us-east-1",
        aws_access_key_id=made["access_key"], aws_secret_access_key=made["secret_key"],
        config=Config(retries={"max_attempts": 1}),
    )  # fmt: skip
    other.list_buckets()
    _dump_holds_no_key_material(gateway, [k1, k2, made["secret_key"], gateway.secret_key])


def _dump_holds_no_key_material(gateway: GatewayProcess, secrets: list[str]) -> None:
    dump = subprocess.run(
        ["pg_dump", "--data-only", gateway.database_url],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    assert "wrapped_key" in dump  # the dump holds the envelopes ...
    for secret in secrets:  # ... and none of the keys or secrets
        assert secret not in dump


def test_key_ring_reloads_without_restart_and_refuses_to_strand_data(
    start_test_gateway: Callable[..., GatewayProcess], tmp_path: Path
) -> None:
    k1, k2 = _key(), _key()
    gateway, ring = _gateway_with_ring(start_test_gateway, tmp_path, k1)
    assert gateway.process is not None
    pid = gateway.process.pid
    s3, admin = client_for(gateway), AdminClient.of(gateway)
    bucket = random_name("reload-")
    s3.create_bucket(Bucket=bucket)
    objects = {f"s3-{n}": os.urandom(70_000 * (n + 1)) for n in range(3)}
    for key, body in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body, ServerSideEncryption="AES256")
    kms = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "k1"}
    objects["kms"] = os.urandom(1000)
    s3.put_object(Bucket=bucket, Key="kms", Body=objects["kms"], **kms)
    with pytest.raises(ClientError) as unknown:
        s3.put_object(Bucket=bucket, Key="k2", Body=b"x", ServerSideEncryption="aws:kms",
                      SSEKMSKeyId="k2")  # fmt: skip
    assert unknown.value.response["Error"]["Code"] == "KMS.NotFoundException"

    # A key is added and made active in the file; the running node adopts it.
    _write_ring(ring, "k2", {"k1": k1, "k2": k2})
    reloaded = admin.ok("POST", "/encryption-keys/reload")
    assert reloaded == {"active": "k2", "keys": ["k1", "k2"], "added": ["k2"], "removed": []}
    objects["new"] = os.urandom(5000)
    s3.put_object(Bucket=bucket, Key="new", Body=objects["new"], ServerSideEncryption="AES256")
    objects["kms2"] = os.urandom(2000)
    s3.put_object(Bucket=bucket, Key="kms2", Body=objects["kms2"], SSEKMSKeyId="k2",
                  ServerSideEncryption="aws:kms")  # fmt: skip
    keys = _keys(admin)
    assert keys["k2"]["active"]
    assert keys["k2"]["versions"] == 2
    assert admin.ok("POST", "/encryption-keys/rewrap")["envelopes"] == 3
    keys = _keys(admin)
    # The SSE-KMS version stays under the key its writer named.
    assert (keys["k1"]["versions"], keys["k2"]["versions"]) == (1, 5)
    for key, body in objects.items():
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body

    # A ring that drops a key still in use, or changes a key's material, is refused and the
    # node keeps the ring it has.
    for refused_ring in ({"k2": k2}, {"k1": k1, "k2": _key()}):
        _write_ring(ring, "k2", refused_ring)
        status, refused = admin.call("POST", "/encryption-keys/reload")
        assert (status, refused["error"]["code"]) == (409, "Conflict")
    assert s3.get_object(Bucket=bucket, Key="kms")["Body"].read() == objects["kms"]

    # Once nothing uses k1 any more, it can leave the ring, still without a restart.
    s3.delete_object(Bucket=bucket, Key="kms")
    _write_ring(ring, "k2", {"k2": k2})
    assert admin.ok("POST", "/encryption-keys/reload")["removed"] == ["k1"]
    del objects["kms"]
    for key, body in objects.items():
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
    assert gateway.process.pid == pid
    assert gateway.process.poll() is None


def test_sighup_reloads_the_key_ring_in_every_worker_process(
    start_test_gateway: Callable[..., GatewayProcess], tmp_path: Path
) -> None:
    k1, k2 = _key(), _key()
    gateway, ring = _gateway_with_ring(start_test_gateway, tmp_path, k1, server={"workers": 2})
    assert gateway.process is not None
    s3, admin = client_for(gateway), AdminClient.of(gateway)
    bucket = random_name("hup-")
    s3.create_bucket(Bucket=bucket)
    # Under k1 for good (SSE-KMS envelopes are never re-wrapped): k1 stays in use.
    s3.put_object(Bucket=bucket, Key="old", Body=b"under k1", ServerSideEncryption="aws:kms",
                  SSEKMSKeyId="k1")  # fmt: skip
    _write_ring(ring, "k2", {"k1": k1, "k2": k2})
    os.kill(gateway.process.pid, signal.SIGHUP)
    _wait_for_log(gateway, "key ring reloaded", times=2)
    assert _keys(admin)["k2"]["active"]
    s3.put_object(Bucket=bucket, Key="new", Body=b"under k2", ServerSideEncryption="AES256")
    assert _keys(admin)["k2"]["versions"] == 1
    # Each worker refuses a ring that drops k1 and keeps the one it has.
    _write_ring(ring, "k2", {"k2": k2})
    os.kill(gateway.process.pid, signal.SIGHUP)
    _wait_for_log(gateway, "SIGHUP: key ring not reloaded", times=2)
    assert s3.get_object(Bucket=bucket, Key="old")["Body"].read() == b"under k1"
    assert s3.get_object(Bucket=bucket, Key="new")["Body"].read() == b"under k2"
    assert gateway.process.poll() is None


def _wait_for_log(gateway: GatewayProcess, line: str, times: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while gateway.log_path.read_text().count(line) < times:
        assert time.monotonic() < deadline, f"{line!r} not logged {times} times"
        time.sleep(0.1)
