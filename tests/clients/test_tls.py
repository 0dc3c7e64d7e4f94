"""boto3 over https with its defaults: aws-chunked bodies, CRC32 trailers, no Content-Length.

A gateway behind a TLS terminator sees exactly this, so these tests check on the wire that
the client really sent it, and that the gateway stored the right bytes and checksums.
"""

from __future__ import annotations

import base64
import io
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from tests.certs import TestCertificates
from tests.gateway_process import GatewayProcess
from tests.servers import random_name

MIB = 1024 * 1024
STREAMING_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"


@dataclass
class SentRequests:
    """What botocore put on the wire, per operation name, in order."""

    headers: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    bodies: dict[str, list[bytes]] = field(default_factory=dict)

    def record(self, request: Any, event_name: str, **_: Any) -> None:
        name = event_name.rsplit(".", 1)[-1]  # before-send.s3.PutObject
        headers = {k.lower(): _text(v) for k, v in request.headers.items()}
        self.headers.setdefault(name, []).append(headers)
        body = request.body
        self.bodies.setdefault(name, []).append(body if isinstance(body, bytes) else b"")


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


@pytest.fixture
def sent() -> SentRequests:
    return SentRequests()


def tls_client(gateway: GatewayProcess, certificates: TestCertificates, **config: Any) -> Any:
    """A boto3 client with default settings that trusts the test CA (verification stays on)."""
    return boto3.client(
        "s3",
        endpoint_url=gateway.endpoint,
        aws_access_key_id=gateway.access_key,
        aws_secret_access_key=gateway.secret_key,
        region_name="us-east-1",
        verify=str(certificates.ca_file),
        config=Config(**config) if config else None,
    )


@pytest.fixture
def tls_s3(
    tls_gateway: GatewayProcess, certificates: TestCertificates, sent: SentRequests
) -> Iterator[Any]:
    client = tls_client(tls_gateway, certificates)
    client.meta.events.register("before-send.s3", sent.record)
    yield client
    client.close()


@pytest.fixture
def tls_bucket(tls_s3: Any) -> str:
    name = random_name()
    tls_s3.create_bucket(Bucket=name)
    return name


def crc32_b64(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def composite_crc32(parts: list[bytes]) -> str:
    digests = b"".join(zlib.crc32(p).to_bytes(4, "big") for p in parts)
    return f"{crc32_b64(digests)}-{len(parts)}"


def assert_aws_chunked(headers: dict[str, str]) -> None:
    assert headers["x-amz-content-sha256"] == STREAMING_TRAILER
    assert headers["content-encoding"] == "aws-chunked"
    assert headers["x-amz-trailer"] == "x-amz-checksum-crc32"
    assert "content-length" not in headers


def test_put_get_round_trip_is_aws_chunked(
    tls_s3: Any, tls_bucket: str, sent: SentRequests
) -> None:
    body = os.urandom(MIB + 12345)
    tls_s3.put_object(Bucket=tls_bucket, Key="dir/obj", Body=body)

    (put_headers,) = sent.headers["PutObject"]
    assert_aws_chunked(put_headers)
    assert put_headers["x-amz-decoded-content-length"] == str(len(body))
    got = tls_s3.get_object(Bucket=tls_bucket, Key="dir/obj")
    assert got["Body"].read() == body
    assert got["ContentLength"] == len(body)


def test_head_with_checksum_mode_returns_trailer_checksum(tls_s3: Any, tls_bucket: str) -> None:
    body = os.urandom(300_000)
    put = tls_s3.put_object(Bucket=tls_bucket, Key="k", Body=body)
    assert put["ChecksumCRC32"] == crc32_b64(body)

    head = tls_s3.head_object(Bucket=tls_bucket, Key="k", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == crc32_b64(body)
    assert head["ContentLength"] == len(body)


def test_empty_object_over_https(tls_s3: Any, tls_bucket: str) -> None:
    tls_s3.put_object(Bucket=tls_bucket, Key="empty", Body=b"")
    got = tls_s3.get_object(Bucket=tls_bucket, Key="empty")
    assert got["Body"].read() == b""
    head = tls_s3.head_object(Bucket=tls_bucket, Key="empty", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == crc32_b64(b"")


def test_upload_fileobj_multipart_with_part_checksums(
    tls_s3: Any, tls_bucket: str, sent: SentRequests
) -> None:
    body = os.urandom(12 * MIB)
    config = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
    tls_s3.upload_fileobj(io.BytesIO(body), tls_bucket, "big", Config=config)

    part_headers = sent.headers["UploadPart"]
    assert len(part_headers) == 3
    for headers in part_headers:
        assert_aws_chunked(headers)
    (complete,) = sent.bodies["CompleteMultipartUpload"]
    assert complete.count(b"<ChecksumCRC32>") == 3
    parts = [body[i : i + 5 * MIB] for i in range(0, len(body), 5 * MIB)]
    head = tls_s3.head_object(Bucket=tls_bucket, Key="big", ChecksumMode="ENABLED")
    assert head["ContentLength"] == len(body)
    assert head["ChecksumCRC32"] == composite_crc32(parts)
    got = tls_s3.get_object(Bucket=tls_bucket, Key="big")
    assert got["Body"].read() == body


def test_download_fileobj_ranged_parts(tls_s3: Any, tls_bucket: str) -> None:
    body = os.urandom(11 * MIB)
    tls_s3.put_object(Bucket=tls_bucket, Key="ranged", Body=body)
    config = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
    out = io.BytesIO()
    tls_s3.download_fileobj(tls_bucket, "ranged", out, Config=config)
    assert out.getvalue() == body


def test_wrong_trailer_checksum_is_rejected(
    tls_gateway: GatewayProcess, certificates: TestCertificates, tls_bucket: str
) -> None:
    """The gateway checks the trailer: a body whose CRC32 does not match is refused."""
    tls_s3 = tls_client(tls_gateway, certificates, retries={"total_max_attempts": 1})

    def corrupt(request: Any, **_: Any) -> None:
        if _text(request.headers.get("x-amz-trailer", "")) == "x-amz-checksum-crc32":
            request.body = _corrupt_trailer(request.body)

    tls_s3.meta.events.register_first("before-send.s3.PutObject", corrupt)
    with pytest.raises(tls_s3.exceptions.ClientError) as raised:
        tls_s3.put_object(Bucket=tls_bucket, Key="bad", Body=b"x" * 1000)
    assert raised.value.response["Error"]["Code"] == "BadDigest"
    tls_s3.meta.events.unregister("before-send.s3.PutObject", corrupt)
    with pytest.raises(tls_s3.exceptions.ClientError):
        tls_s3.head_object(Bucket=tls_bucket, Key="bad")


def _corrupt_trailer(inner: Any) -> io.BytesIO:
    """Botocore's aws-chunked body with a zero CRC32 in the trailer instead of the real one."""
    data = b"".join(iter(lambda: bytes(inner.read(65536)), b""))
    marker = b"x-amz-checksum-crc32:"
    at = data.index(marker) + len(marker)
    return io.BytesIO(data[:at] + base64.b64encode(b"\0\0\0\0") + data[at + 8 :])


def test_sse_c_works_over_tls(tls_s3: Any, tls_bucket: str) -> None:
    """Issue #4: customer keys travel only over TLS (the default configuration)."""
    key = os.urandom(32)
    sse_c = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key}
    tls_s3.put_object(Bucket=tls_bucket, Key="c", Body=b"over tls", **sse_c)
    assert tls_s3.get_object(Bucket=tls_bucket, Key="c", **sse_c)["Body"].read() == b"over tls"
