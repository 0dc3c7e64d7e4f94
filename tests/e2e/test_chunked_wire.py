"""aws-chunked bodies on the wire: signed chunks, trailers, and every way they can be wrong."""

from __future__ import annotations

import base64
import os
import zlib
from typing import Any

import pytest

from tests import rawclient
from tests.conftest import client_for
from tests.e2e.test_bad_input import NO_RETRIES, unchanged
from tests.gateway_process import GatewayProcess
from tests.servers import random_name

CHUNK_BYTES = 64 * 1024
CRC32_TRAILER = "x-amz-checksum-crc32"


def _crc32_b64(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def _chunks(body: bytes) -> list[bytes]:
    return [body[i : i + CHUNK_BYTES] for i in range(0, len(body), CHUNK_BYTES)]


def _creds(gateway: GatewayProcess) -> rawclient.Credentials:
    return rawclient.Credentials(gateway.endpoint, gateway.access_key, gateway.secret_key)


def _put_chunked(
    gateway: GatewayProcess,
    bucket: str,
    key: str,
    payload: bytes,
    *,
    mode: str,
    trailer_value: str | None = None,
    decoded_length: int | None = None,
    corrupt: str | None = None,
    transfer_chunked: bool = False,
    content_encoding: str | None = None,
) -> rawclient.Response:
    """PUT ``payload`` aws-chunked in ``mode`` (the x-amz-content-sha256 value).

    ``corrupt`` is "signature" (one hex digit of the second chunk's signature) or "data"
    (one byte of the second chunk's data) and is applied after signing.
    """
    creds = _creds(gateway)
    with_trailer = mode != rawclient.STREAMING_SIGNED
    headers = rawclient.chunked_headers(
        len(payload) if decoded_length is None else decoded_length,
        CRC32_TRAILER if with_trailer else None,
    )
    if content_encoding is not None:
        headers["content-encoding"] = content_encoding
    signed = rawclient.sign(
        creds, "PUT", rawclient.object_path(bucket, key), headers=headers, payload_hash=mode
    )
    trailers = None
    if with_trailer:
        trailers = {CRC32_TRAILER: trailer_value or _crc32_b64(payload)}
    seed = None if mode == rawclient.STREAMING_UNSIGNED_TRAILER else signed
    body = rawclient.encode_chunked(_chunks(payload), seed, trailers)
    if corrupt is not None:
        body = _corrupt(body, corrupt)
    return rawclient.send(creds, signed, body, transfer_chunked=transfer_chunked)


def _corrupt(body: bytes, what: str) -> bytes:
    marker = b"chunk-signature="
    second = body.index(marker, body.index(marker) + 1) + len(marker)
    if what == "signature":
        digit = b"1" if body[second : second + 1] != b"1" else b"2"
        return body[:second] + digit + body[second + 1 :]
    data_at = body.index(b"\r\n", second) + 2 + 100
    return body[:data_at] + bytes([body[data_at] ^ 0x01]) + body[data_at + 1 :]


@pytest.fixture
def local_s3(local_gateway: GatewayProcess) -> Any:
    return client_for(local_gateway, retries=NO_RETRIES)


@pytest.fixture
def local_bucket(local_s3: Any) -> str:
    name = random_name()
    local_s3.create_bucket(Bucket=name)
    local_s3.put_object(Bucket=name, Key="existing", Body=b"old content")
    return name


# Valid uploads round-trip


@pytest.mark.parametrize(
    "mode",
    [
        rawclient.STREAMING_SIGNED,
        rawclient.STREAMING_SIGNED_TRAILER,
        rawclient.STREAMING_UNSIGNED_TRAILER,
    ],
)
@pytest.mark.parametrize("transfer_chunked", [False, True], ids=["content-length", "te-chunked"])
def test_valid_chunked_upload_round_trips(
    local_gateway: GatewayProcess,
    local_s3: Any,
    local_bucket: str,
    mode: str,
    transfer_chunked: bool,
) -> None:
    payload = os.urandom(3 * CHUNK_BYTES + 1234)
    answer = _put_chunked(
        local_gateway, local_bucket, "k", payload, mode=mode, transfer_chunked=transfer_chunked
    )
    assert answer.status == 200, answer.body
    got = local_s3.get_object(Bucket=local_bucket, Key="k", ChecksumMode="ENABLED")
    assert got["Body"].read() == payload
    assert got["ContentLength"] == len(payload)
    assert "aws-chunked" not in got.get("ContentEncoding", "")
    if mode != rawclient.STREAMING_SIGNED:
        assert got["ChecksumCRC32"] == _crc32_b64(payload)


def test_aws_chunked_is_not_stored_as_content_encoding(
    local_gateway: GatewayProcess, local_s3: Any, local_bucket: str
) -> None:
    payload = os.urandom(1000)
    mode = rawclient.STREAMING_SIGNED
    answer = _put_chunked(
        local_gateway, local_bucket, "gz", payload, mode=mode, content_encoding="aws-chunked,gzip"
    )
    assert answer.status == 200, answer.body
    assert local_s3.head_object(Bucket=local_bucket, Key="gz")["ContentEncoding"] == "gzip"


def test_empty_signed_chunked_upload(
    local_gateway: GatewayProcess, local_s3: Any, local_bucket: str
) -> None:
    answer = _put_chunked(
        local_gateway, local_bucket, "empty", b"", mode=rawclient.STREAMING_SIGNED
    )
    assert answer.status == 200, answer.body
    assert local_s3.get_object(Bucket=local_bucket, Key="empty")["Body"].read() == b""


# Broken uploads store nothing


@pytest.mark.parametrize("corrupt", ["signature", "data"])
@pytest.mark.parametrize(
    "mode",
    [rawclient.STREAMING_SIGNED, rawclient.STREAMING_SIGNED_TRAILER],
    ids=["plain", "trailer"],
)
def test_bad_chunk_signature(gateway: GatewayProcess, mode: str, corrupt: str) -> None:
    s3 = client_for(gateway, retries=NO_RETRIES)
    bucket = random_name()
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="existing", Body=b"old content")
    payload = os.urandom(3 * CHUNK_BYTES)
    with unchanged(gateway, s3, bucket):
        for key in ("new", "existing"):
            answer = _put_chunked(gateway, bucket, key, payload, mode=mode, corrupt=corrupt)
            assert (answer.status, answer.error_code()) == (403, "SignatureDoesNotMatch")
    assert s3.get_object(Bucket=bucket, Key="existing")["Body"].read() == b"old content"


@pytest.mark.parametrize(
    "mode", [rawclient.STREAMING_SIGNED_TRAILER, rawclient.STREAMING_UNSIGNED_TRAILER]
)
def test_wrong_crc32_trailer_is_bad_digest(
    local_gateway: GatewayProcess, local_s3: Any, local_bucket: str, mode: str
) -> None:
    payload = os.urandom(2 * CHUNK_BYTES)
    with unchanged(local_gateway, local_s3, local_bucket):
        answer = _put_chunked(
            local_gateway, local_bucket, "existing", payload, mode=mode, trailer_value="AAAAAA=="
        )
        assert (answer.status, answer.error_code()) == (400, "BadDigest")
    assert local_s3.get_object(Bucket=local_bucket, Key="existing")["Body"].read() == b"old content"


@pytest.mark.parametrize(
    "mode",
    [rawclient.STREAMING_SIGNED, rawclient.STREAMING_UNSIGNED_TRAILER],
    ids=["signed", "unsigned"],
)
def test_decoded_length_larger_than_body(
    local_gateway: GatewayProcess, local_s3: Any, local_bucket: str, mode: str
) -> None:
    payload = os.urandom(CHUNK_BYTES + 10)
    with unchanged(local_gateway, local_s3, local_bucket):
        answer = _put_chunked(
            local_gateway, local_bucket, "k", payload, mode=mode, decoded_length=len(payload) + 1
        )
        assert (answer.status, answer.error_code()) == (400, "IncompleteBody")


def test_decoded_length_smaller_than_body(
    local_gateway: GatewayProcess, local_s3: Any, local_bucket: str
) -> None:
    payload = os.urandom(CHUNK_BYTES + 10)
    with unchanged(local_gateway, local_s3, local_bucket):
        answer = _put_chunked(
            local_gateway,
            local_bucket,
            "k",
            payload,
            mode=rawclient.STREAMING_SIGNED,
            decoded_length=len(payload) - 1,
        )
        assert answer.status == 400
        assert answer.error_code() in ("IncompleteBody", "InvalidRequest")


def test_truncated_chunked_body(
    local_gateway: GatewayProcess, local_s3: Any, local_bucket: str
) -> None:
    creds = _creds(local_gateway)
    payload = os.urandom(2 * CHUNK_BYTES)
    headers = rawclient.chunked_headers(len(payload))
    path = rawclient.object_path(local_bucket, "k")
    signed = rawclient.sign(
        creds, "PUT", path, headers=headers, payload_hash=rawclient.STREAMING_SIGNED
    )
    body = rawclient.encode_chunked(_chunks(payload), signed)
    # The framing stops mid-chunk, but Content-Length matches what is sent.
    cut = body[: len(body) // 2]
    with unchanged(local_gateway, local_s3, local_bucket):
        answer = rawclient.send(creds, signed, cut)
        assert (answer.status, answer.error_code()) == (400, "IncompleteBody")
