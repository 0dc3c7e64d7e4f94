"""Issue #4: SSE-S3, SSE-KMS and SSE-C with gateway-side envelope encryption (acceptance 1
to 4, for single-part objects and copies)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from gateway.crypto.format import CHUNK, TAG
from tests.admin.client import AdminClient
from tests.conftest import client_for, files_under
from tests.gateway_process import GatewayProcess
from tests.servers import random_name

MIB = 1 << 20
SSE_C_KEY = os.urandom(32)
WRONG_KEY = os.urandom(32)


def _sse_c(key: bytes, prefix: str = "SSECustomer") -> dict[str, Any]:
    # boto3 base64-encodes the key and adds its MD5 itself.
    return {f"{prefix}Algorithm": "AES256", f"{prefix}Key": key}


def _config(root: Path, **encryption: Any) -> dict[str, Any]:
    """Two local-disk backends, both written synchronously."""
    replicas = [{"backend": "a"}, {"backend": "b"}]
    both = {"name": "default", "rules": [{"name": "both", "write_mode": "all",
                                          "replicas": replicas}]}  # fmt: skip
    return {
        "site": "s1",
        "backends": [
            {"name": "a", "driver": "localfs", "site": "s1", "path": str(root / "a")},
            {"name": "b", "driver": "localfs", "site": "s1", "path": str(root / "b")},
        ],
        "default_backend": "a",
        "placement_policies": [both],
        "gc": {"interval_s": 0.5, "deletion_delay_s": 0, "pending_timeout_s": 3600},
        # The tests speak plain HTTP; SSE-C over it is allowed only by this switch.
        "encryption": {"allow_sse_c_over_http": True, **encryption},
    }


@pytest.fixture(scope="module")
def sealed(
    start_module_gateway: Callable[..., GatewayProcess], tmp_path_factory: pytest.TempPathFactory
) -> tuple[GatewayProcess, Path]:
    root = tmp_path_factory.mktemp("sealed")
    return start_module_gateway(_config(root)), root


def _stored_files(root: Path) -> list[Path]:
    return files_under(root)


def _new_bucket(s3: Any) -> str:
    bucket = random_name("sse-")
    s3.create_bucket(Bucket=bucket)
    return bucket


RANGES = [
    (0, CHUNK - 1), (CHUNK - 1, CHUNK), (CHUNK, 2 * CHUNK - 1), (CHUNK + 1, 2 * CHUNK - 2),
    (CHUNK - 2, CHUNK + 1), (2 * CHUNK, 3 * CHUNK + 99), (0, 0), (3 * CHUNK + 99, 3 * CHUNK + 99),
    (5, 3 * CHUNK + 50),
]  # fmt: skip


@pytest.mark.parametrize("mode", ["AES256", "aws:kms", "SSE-C"])
def test_round_trips_with_ranges_at_chunk_boundaries(
    sealed: tuple[GatewayProcess, Path], mode: str
) -> None:
    gateway, _ = sealed
    s3 = client_for(gateway)
    bucket = _new_bucket(s3)
    data = os.urandom(3 * CHUNK + 100)
    extra: dict[str, str] = _sse_c(SSE_C_KEY) if mode == "SSE-C" else {"ServerSideEncryption": mode}
    if mode == "aws:kms":
        extra["SSEKMSKeyId"] = "k1"
    put = s3.put_object(Bucket=bucket, Key="obj", Body=data, **extra)
    read = _sse_c(SSE_C_KEY) if mode == "SSE-C" else {}
    if mode == "SSE-C":
        assert put["SSECustomerAlgorithm"] == "AES256"
    else:
        assert put["ServerSideEncryption"] == mode
    md5 = hashlib.md5(data).hexdigest()
    # As AWS: the ETag is the plaintext's MD5 for SSE-S3 only.
    assert (put["ETag"].strip('"') == md5) is (mode == "AES256")
    head = s3.head_object(Bucket=bucket, Key="obj", **read)
    assert head["ContentLength"] == len(data)
    assert s3.get_object(Bucket=bucket, Key="obj", **read)["Body"].read() == data
    for first, last in RANGES:
        got = s3.get_object(Bucket=bucket, Key="obj", Range=f"bytes={first}-{last}", **read)
        assert got["Body"].read() == data[first : last + 1], (first, last)
        assert got["ContentRange"] == f"bytes {first}-{last}/{len(data)}"
    for suffix in (1, 100, CHUNK + 1, len(data) + 5):
        got = s3.get_object(Bucket=bucket, Key="obj", Range=f"bytes=-{suffix}", **read)
        assert got["Body"].read() == data[-suffix:], suffix


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK])
def test_sizes_around_the_chunk(sealed: tuple[GatewayProcess, Path], size: int) -> None:
    gateway, root = sealed
    s3 = client_for(gateway)
    bucket = _new_bucket(s3)
    data = os.urandom(size)
    s3.put_object(Bucket=bucket, Key="k", Body=data, ServerSideEncryption="AES256")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == data
    # Each stored replica is the plaintext plus one tag per chunk.
    chunks = max(1, -(-size // CHUNK))
    sizes = {
        p.stat().st_size for p in _stored_files(root) if p.stat().st_size == size + TAG * chunks
    }
    assert sizes == {size + TAG * chunks}


def test_sse_c_needs_the_right_key_and_returns_no_bytes_without_it(
    sealed: tuple[GatewayProcess, Path],
) -> None:
    gateway, _ = sealed
    s3 = client_for(gateway, retries={"max_attempts": 1})
    bucket = _new_bucket(s3)
    s3.put_object(Bucket=bucket, Key="c", Body=b"customer data", **_sse_c(SSE_C_KEY))
    for call in (s3.get_object, s3.head_object):
        with pytest.raises(ClientError) as missing:
            call(Bucket=bucket, Key="c")
        assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        with pytest.raises(ClientError) as wrong:
            call(Bucket=bucket, Key="c", **_sse_c(WRONG_KEY))
        assert wrong.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError) as missing_get:
        s3.get_object(Bucket=bucket, Key="c")
    assert missing_get.value.response["Error"]["Code"] == "InvalidRequest"
    with pytest.raises(ClientError) as bad_md5:
        s3.put_object(
            Bucket=bucket, Key="d", Body=b"x", SSECustomerAlgorithm="AES256",
            # With an MD5 given, boto3 sends the key as it is: already base64.
            SSECustomerKey=base64.b64encode(SSE_C_KEY).decode(),
            SSECustomerKeyMD5=base64.b64encode(hashlib.md5(WRONG_KEY).digest()).decode(),
        )  # fmt: skip
    assert bad_md5.value.response["Error"]["Code"] == "InvalidArgument"
    with pytest.raises(ClientError) as unknown:
        s3.put_object(Bucket=bucket, Key="e", Body=b"x", ServerSideEncryption="aws:kms",
                      SSEKMSKeyId="no-such-key")  # fmt: skip
    assert unknown.value.response["Error"]["Code"] == "KMS.NotFoundException"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == ["c"]


def test_copy_reencrypts_between_modes(sealed: tuple[GatewayProcess, Path]) -> None:
    gateway, _ = sealed
    s3 = client_for(gateway)
    bucket = _new_bucket(s3)
    data = os.urandom(2 * CHUNK + 7)
    s3.put_object(Bucket=bucket, Key="src", Body=data, **_sse_c(SSE_C_KEY))
    copied = s3.copy_object(
        Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"},
        ServerSideEncryption="AES256", **_sse_c(SSE_C_KEY, "CopySourceSSECustomer"),
    )  # fmt: skip
    assert copied["ServerSideEncryption"] == "AES256"
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == data
    back = s3.copy_object(
        Bucket=bucket, Key="again", CopySource={"Bucket": bucket, "Key": "dst"},
        **_sse_c(WRONG_KEY),
    )  # fmt: skip
    assert back["SSECustomerAlgorithm"] == "AES256"
    assert s3.get_object(Bucket=bucket, Key="again", **_sse_c(WRONG_KEY))["Body"].read() == data


def _same_stored_bytes(root: Path, size: int) -> set[bytes]:
    return {path.read_bytes() for path in _stored_files(root) if path.stat().st_size == size}


def test_copy_rewraps_the_data_key_and_keeps_the_ciphertext(
    sealed: tuple[GatewayProcess, Path],
) -> None:
    gateway, root = sealed
    s3 = client_for(gateway, retries={"max_attempts": 1})
    bucket = _new_bucket(s3)
    data = os.urandom(4 * CHUNK + 13)  # sizes no other test here stores
    stored = len(data) + 5 * TAG
    s3.put_object(Bucket=bucket, Key="src", Body=data, **_sse_c(SSE_C_KEY))
    new_key = os.urandom(32)
    _copy_sse_c(s3, bucket, "src", "c", SSE_C_KEY, new_key, data)
    # Source and copy, on both backends: four files, one ciphertext.
    assert len([p for p in _stored_files(root) if p.stat().st_size == stored]) == 4
    assert len(_same_stored_bytes(root, stored)) == 1

    # SSE-S3 to SSE-KMS: the same, with a copy ETag that is no MD5 (as AWS).
    other = os.urandom(2 * CHUNK + 21)
    stored = len(other) + 3 * TAG
    put = s3.put_object(Bucket=bucket, Key="s3", Body=other, ServerSideEncryption="AES256")
    kms = s3.copy_object(
        Bucket=bucket, Key="kms", CopySource={"Bucket": bucket, "Key": "s3"},
        ServerSideEncryption="aws:kms", SSEKMSKeyId="k1",
    )  # fmt: skip
    assert kms["CopyObjectResult"]["ETag"] != put["ETag"]
    assert s3.get_object(Bucket=bucket, Key="kms")["Body"].read() == other
    assert len(_same_stored_bytes(root, stored)) == 1
    # Back to SSE-S3 the ETag must be the MD5 of the data, which only reading tells: that
    # copy is re-encrypted.
    back = s3.copy_object(
        Bucket=bucket, Key="back", CopySource={"Bucket": bucket, "Key": "kms"},
        ServerSideEncryption="AES256",
    )  # fmt: skip
    assert back["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(other).hexdigest()}"'
    assert len(_same_stored_bytes(root, stored)) == 2

    # A copy onto itself with a new customer key (how SSE-C keys are rotated) is allowed.
    _copy_sse_c(s3, bucket, "c", "c", new_key, os.urandom(32), data)


def _copy_sse_c(
    s3: Any, bucket: str, source: str, key: str, old: bytes, new: bytes, data: bytes
) -> None:
    """Copy an SSE-C object under a new customer key: the copy reads back with the new key
    only."""
    s3.copy_object(
        Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": source},
        **_sse_c(old, "CopySourceSSECustomer"), **_sse_c(new),
    )  # fmt: skip
    assert s3.get_object(Bucket=bucket, Key=key, **_sse_c(new))["Body"].read() == data
    with pytest.raises(ClientError) as old_key:
        s3.get_object(Bucket=bucket, Key=key, **_sse_c(old))
    assert old_key.value.response["Error"]["Code"] == "AccessDenied"


def test_a_rewrapping_copy_of_a_damaged_replica_copies_by_decryption(
    sealed: tuple[GatewayProcess, Path],
) -> None:
    gateway, root = sealed
    s3 = client_for(gateway, retries={"max_attempts": 1})
    bucket = _new_bucket(s3)
    data = os.urandom(3 * CHUNK + 17)
    s3.put_object(Bucket=bucket, Key="src", Body=data, ServerSideEncryption="AES256")
    replicas = _replicas_of(root, len(data) + 4 * TAG)
    for replica in replicas.values():  # whichever replica the copy reads first is damaged
        _flip(replica, 2 * CHUNK + 5)
        s3.copy_object(
            Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"},
            ServerSideEncryption="aws:kms", SSEKMSKeyId="k1",
        )  # fmt: skip
        assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == data
        _flip(replica, 2 * CHUNK + 5)
    assert "fails its checksum; copying by decryption" in gateway.log_path.read_text()


def test_bucket_default_encryption(sealed: tuple[GatewayProcess, Path]) -> None:
    gateway, _ = sealed
    s3 = client_for(gateway)
    bucket = _new_bucket(s3)
    with pytest.raises(ClientError) as none:
        s3.get_bucket_encryption(Bucket=bucket)
    assert none.value.response["Error"]["Code"] == "ServerSideEncryptionConfigurationNotFoundError"
    rule = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms",
                                                   "KMSMasterKeyID": "k1"}}  # fmt: skip
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [rule]})
    got = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    assert (
        got["Rules"][0]["ApplyServerSideEncryptionByDefault"]
        == rule["ApplyServerSideEncryptionByDefault"]
    )
    put = s3.put_object(Bucket=bucket, Key="k", Body=b"defaulted")
    assert (put["ServerSideEncryption"], put["SSEKMSKeyId"]) == ("aws:kms", "k1")
    assert s3.head_object(Bucket=bucket, Key="k")["ServerSideEncryption"] == "aws:kms"
    s3.delete_bucket_encryption(Bucket=bucket)
    assert "ServerSideEncryption" not in s3.put_object(Bucket=bucket, Key="p", Body=b"plain")


def test_a_flipped_byte_fails_over_and_never_reaches_the_client(
    sealed: tuple[GatewayProcess, Path],
) -> None:
    gateway, root = sealed
    s3 = client_for(gateway, retries={"max_attempts": 1})
    bucket = _new_bucket(s3)
    data = os.urandom(3 * CHUNK - 3)  # a size no other test here stores
    s3.put_object(Bucket=bucket, Key="t", Body=data, ServerSideEncryption="AES256")
    replicas = _replicas_of(root, len(data) + 3 * TAG)
    assert set(replicas) == {"a", "b"}
    # One byte in the second chunk of replica a: the read falls over to b mid-stream.
    _flip(replicas["a"], CHUNK + TAG + 10)
    assert s3.get_object(Bucket=bucket, Key="t")["Body"].read() == data
    assert s3.get_object(Bucket=bucket, Key="t", Range="bytes=0-99")["Body"].read() == data[:100]
    # The same chunk damaged on both replicas: no wrong byte is ever sent. A read that needs
    # only that chunk fails before its first byte ...
    _flip(replicas["b"], CHUNK + TAG + 20)
    with pytest.raises(ClientError) as failed:
        s3.get_object(Bucket=bucket, Key="t", Range=f"bytes={CHUNK}-{CHUNK + 10}")
    assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    # ... and a whole read is cut off after the good first chunk, never continued wrongly.
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "t"})
    received = _read_until_cut(url)
    assert received == data[:CHUNK]
    assert "failed at chunk" in gateway.log_path.read_text()


def _read_until_cut(url: str) -> bytes:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    connection.request("GET", f"{parts.path}?{parts.query}")
    response = connection.getresponse()
    assert response.status == 200
    received = b""
    try:
        while chunk := response.read(4096):
            received += chunk
    except http.client.IncompleteRead as cut:
        received += cut.partial
    finally:
        connection.close()
    return received


def _replicas_of(root: Path, size: int) -> dict[str, Path]:
    found = {}
    for path in _stored_files(root):
        # gc may delete another test's file between the listing and the stat.
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_size == size:
                found[path.relative_to(root).parts[0]] = path
    return found


def _flip(path: Path, offset: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0x01
    path.write_bytes(bytes(raw))


def test_encrypt_everywhere_leaves_no_plaintext_on_any_backend(
    start_test_gateway: Callable[..., GatewayProcess], tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("everywhere")
    gateway = start_test_gateway(_config(root, encrypt_everywhere=True))
    s3 = client_for(gateway, retries={"max_attempts": 1})
    bucket = _new_bucket(s3)
    marker = b"PLAINTEXT-MARKER-" + os.urandom(8).hex().encode()
    bodies = {f"k{n}": marker * (1 + n * 500) for n in range(6)}
    for key, body in bodies.items():
        put = s3.put_object(Bucket=bucket, Key=key, Body=body)
        assert put["ServerSideEncryption"] == "AES256"
    s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "k3"})
    for key, body in bodies.items():
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
    big = marker * (6 * MIB // len(marker))
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big")
    assert upload["ServerSideEncryption"] == "AES256"
    parts = [
        {"PartNumber": n, "ETag": s3.upload_part(Bucket=bucket, Key="big", PartNumber=n,
                                                 UploadId=upload["UploadId"], Body=chunk)["ETag"]}
        for n, chunk in ((1, big[: 5 * MIB]), (2, big[5 * MIB :]))
    ]  # fmt: skip
    s3.complete_multipart_upload(Bucket=bucket, Key="big", UploadId=upload["UploadId"],
                                 MultipartUpload={"Parts": parts})  # fmt: skip
    assert s3.get_object(Bucket=bucket, Key="big")["Body"].read() == big
    files = _stored_files(root)
    assert len(files) >= 2 * (len(bodies) + 2)
    assert [p for p in files if marker in p.read_bytes()] == []
    code, scrub = gateway.cli("scrub", "--full")
    assert code == 0, scrub
    assert (scrub["missing"], scrub["corrupt"]) == (0, 0)


def test_replication_copies_ciphertext_and_verifies_it(
    start_test_gateway: Callable[..., GatewayProcess], tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("replicated")
    config = _config(root)
    config["placement_policies"][0]["rules"][0]["replicas"] = [
        {"backend": "a"}, {"backend": "b", "async": True},
    ]  # fmt: skip
    gateway = start_test_gateway(config)
    s3 = client_for(gateway)
    bucket = _new_bucket(s3)
    data = os.urandom(2 * CHUNK + 1)
    s3.put_object(Bucket=bucket, Key="r", Body=data, **_sse_c(SSE_C_KEY))
    admin = AdminClient.of(gateway)
    [version] = admin.ok("GET", f"/ledger/placements?bucket={bucket}&key=r")
    deadline = time.monotonic() + 30
    while len([p for p in version["placements"] if p["state"] == "ok"]) < 2:
        assert time.monotonic() < deadline, version
        time.sleep(0.2)
        [version] = admin.ok("GET", f"/ledger/placements?bucket={bucket}&key=r")
    # Both replicas hold the same ciphertext (no key was needed to copy or verify it).
    replicas = _replicas_of(root, len(data) + 3 * TAG)
    assert replicas["a"].read_bytes() == replicas["b"].read_bytes()
    assert {p["size_bytes"] for p in version["placements"]} == {len(data) + 3 * TAG}
    _flip(replicas["a"], 3)
    assert s3.get_object(Bucket=bucket, Key="r", **_sse_c(SSE_C_KEY))["Body"].read() == data
    code, scrub = gateway.cli("scrub", "--full", "--no-repair")
    assert code == 3, scrub
    assert scrub["corrupt"] == 1


@pytest.mark.parametrize("mode", ["AES256", "SSE-C"])
def test_multipart_parts_are_sealed_on_their_own(
    sealed: tuple[GatewayProcess, Path], mode: str
) -> None:
    gateway, _ = sealed
    s3 = client_for(gateway)
    bucket = _new_bucket(s3)
    sizes = [5 * MIB + 3, 5 * MIB, 100 * 1024 + 7]
    data = os.urandom(sum(sizes))
    write = _sse_c(SSE_C_KEY) if mode == "SSE-C" else {"ServerSideEncryption": "AES256"}
    read = _sse_c(SSE_C_KEY) if mode == "SSE-C" else {}
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp", **write)["UploadId"]
    parts, offset = [], 0
    # Part numbers with a gap: each part is sealed under its own number.
    for number, size in zip((1, 2, 4), sizes, strict=True):
        sent = s3.upload_part(Bucket=bucket, Key="mp", PartNumber=number, UploadId=upload,
                              Body=data[offset : offset + size], **read)  # fmt: skip
        etag = sent["ETag"]
        assert sent.get("SSECustomerAlgorithm" if mode == "SSE-C" else "ServerSideEncryption")
        parts.append({"PartNumber": number, "ETag": etag})
        offset += size
    done = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload,
                                        MultipartUpload={"Parts": parts})  # fmt: skip
    head = s3.head_object(Bucket=bucket, Key="mp", **read)
    if mode == "SSE-C":
        assert head["SSECustomerAlgorithm"] == "AES256"
    else:
        assert done["ServerSideEncryption"] == head["ServerSideEncryption"] == "AES256"
    assert s3.get_object(Bucket=bucket, Key="mp", **read)["Body"].read() == data
    boundary = sizes[0]
    for first, last in ((boundary - 1, boundary), (boundary - CHUNK, boundary + CHUNK),
                        (boundary + sizes[1] - 5, len(data) - 1), (CHUNK - 1, CHUNK)):  # fmt: skip
        got = s3.get_object(Bucket=bucket, Key="mp", Range=f"bytes={first}-{last}", **read)
        assert got["Body"].read() == data[first : last + 1], (first, last)
    part = s3.get_object(Bucket=bucket, Key="mp", PartNumber=2, **read)["Body"].read()
    assert part == data[boundary : boundary + sizes[1]]
    # UploadPartCopy from the encrypted object into another encrypted upload.
    copy_upload = s3.create_multipart_upload(Bucket=bucket, Key="cp", **write)["UploadId"]
    source = _sse_c(SSE_C_KEY, "CopySourceSSECustomer") if mode == "SSE-C" else {}
    copied = s3.upload_part_copy(
        Bucket=bucket, Key="cp", PartNumber=1, UploadId=copy_upload,
        CopySource={"Bucket": bucket, "Key": "mp"}, CopySourceRange=f"bytes=10-{5 * MIB + 9}",
        **read, **source,
    )  # fmt: skip
    s3.complete_multipart_upload(
        Bucket=bucket, Key="cp", UploadId=copy_upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": copied["CopyPartResult"]["ETag"]}]},
    )  # fmt: skip
    assert s3.get_object(Bucket=bucket, Key="cp", **read)["Body"].read() == data[10 : 5 * MIB + 10]


def test_a_policy_can_require_ciphertext_on_one_backend(
    start_test_gateway: Callable[..., GatewayProcess], tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("policy-encrypt")
    config = _config(root)
    config["placement_policies"][0]["rules"][0]["replicas"] = [
        {"backend": "a"}, {"backend": "b", "encrypt": True},
    ]  # fmt: skip
    gateway = start_test_gateway(config)
    s3, admin = client_for(gateway), AdminClient.of(gateway)
    marker = b"CLEAR-MARKER-" + os.urandom(8).hex().encode()
    sealed_bucket, clear_bucket = _new_bucket(s3), _new_bucket(s3)
    admin.ok("PUT", "/policies/only-a", {"rules": [{"name": "r", "replicas": [{"backend": "a"}]}]})
    admin.ok("PUT", f"/buckets/{clear_bucket}/placement", {"policy": "only-a"})
    put = s3.put_object(Bucket=sealed_bucket, Key="k", Body=marker * 100)
    assert put["ServerSideEncryption"] == "AES256"
    s3.put_object(Bucket=clear_bucket, Key="k", Body=marker * 100)
    for bucket in (sealed_bucket, clear_bucket):
        assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == marker * 100
    holders = [p for p in _stored_files(root) if marker in p.read_bytes()]
    # Only the object placed by the policy without the requirement is stored in clear.
    assert len(holders) == 1
    assert holders[0].relative_to(root).parts[0] == "a"


def test_sse_c_is_refused_over_plain_http_by_default(local_gateway: GatewayProcess) -> None:
    s3 = client_for(local_gateway, retries={"max_attempts": 1})
    bucket = _new_bucket(s3)
    s3.put_object(Bucket=bucket, Key="c", Body=b"clear")
    calls: list[tuple[Callable[..., Any], dict[str, Any]]] = [
        (s3.put_object, {"Body": b"x"}),
        (s3.get_object, {}),
    ]
    for call, extra in calls:
        with pytest.raises(ClientError) as refused:
            call(Bucket=bucket, Key="c", **extra, **_sse_c(SSE_C_KEY))
        assert refused.value.response["Error"]["Code"] == "InvalidRequest"
        assert "secure connection" in refused.value.response["Error"]["Message"]
