"""Turning an HTTP request body into a verified byte stream and the client's claims."""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from gateway import checksums
from gateway.errors import (
    IncompleteBody,
    InvalidArgument,
    InvalidDigest,
    InvalidRequest,
    MaxMessageLengthExceeded,
    MissingContentLength,
    RequestTimeout,
    S3Error,
    error_for_code,
)
from gateway.s3 import connections
from gateway.s3.auth import Identity
from gateway.s3.chunked import AwsChunkedDecoder, ChunkedError, ChunkSigner
from gateway.services.streams import ExpectedDigests, VerifyingStream

STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
READ_CHUNK_BYTES = 256 * 1024


async def _raw(request: web.Request) -> AsyncIterator[bytes]:
    chunks = request.content.iter_chunked(READ_CHUNK_BYTES).__aiter__()
    idle_s = connections.body_idle_timeout_s(request)
    while True:
        try:
            async with asyncio.timeout(idle_s):
                chunk = await anext(chunks, None)
        except TimeoutError:
            raise RequestTimeout() from None
        except S3Error:
            raise
        except Exception:
            # The peer closed or broke the connection before the declared length arrived.
            raise IncompleteBody() from None
        if chunk is None:
            return
        yield chunk


async def _decoded(decoder: AwsChunkedDecoder) -> AsyncIterator[bytes]:
    try:
        async for chunk in decoder:
            yield chunk
    except ChunkedError as exc:
        raise error_for_code(exc.code)(exc.message) from None


def _content_md5(value: str | None) -> bytes | None:
    if value is None:
        return None
    try:
        digest = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidDigest() from None
    if len(digest) != 16:
        raise InvalidDigest()
    return digest


def _declared_length(request: web.Request, chunked: bool) -> int | None:
    name = "x-amz-decoded-content-length" if chunked else "Content-Length"
    value = request.headers.get(name)
    if value is None:
        if chunked:
            raise MissingContentLength()
        return None
    # ASCII digits only (str.isdigit() also takes "²"), and few enough for int().
    if not value.isascii() or not value.isdigit() or len(value) > 19:
        raise InvalidArgument(f"Invalid {name}", ArgumentName=name)
    return int(value)


def _checksum_claim(
    request: web.Request, decoder: AwsChunkedDecoder | None
) -> tuple[str | None, Callable[[], str | None]]:
    """The checksum algorithm and a getter for the claimed value (header or trailer)."""
    for algorithm in checksums.ALGORITHMS:
        header = checksums.header_name(algorithm)
        value = request.headers.get(header)
        if value is not None:
            _check_checksum_value(value, algorithm)
            return algorithm, lambda v=value: v
    trailer = request.headers.get("x-amz-trailer", "").strip().lower()
    if trailer:
        algorithm = trailer.removeprefix("x-amz-checksum-").upper()
        if algorithm not in checksums.ALGORITHMS or decoder is None:
            raise InvalidRequest("The value specified in the x-amz-trailer header is not supported")
        return algorithm, lambda: decoder.trailers.get(trailer)
    sdk = request.headers.get("x-amz-sdk-checksum-algorithm")
    return (sdk.upper() if sdk and sdk.upper() in checksums.ALGORITHMS else None), lambda: None


def _check_checksum_value(value: str, algorithm: str) -> None:
    try:
        checksums.decode(value, algorithm)
    except ValueError:
        raise InvalidRequest(
            f"Value for x-amz-checksum-{algorithm.lower()} header is invalid."
        ) from None


def request_body(
    request: web.Request, identity: Identity
) -> tuple[AsyncIterator[bytes], ExpectedDigests]:
    """The payload stream (aws-chunked decoded) and what the client claims about it."""
    payload_hash = identity.signed.payload_hash
    chunked = payload_hash.startswith("STREAMING-")
    decoder = None
    stream: AsyncIterator[bytes] = _raw(request)
    if chunked:
        decoder = _decoder(request, identity, payload_hash)
        stream = _decoded(decoder)
    elif request.content_length is None and request.method == "PUT":
        raise MissingContentLength()
    algorithm, claimed = _checksum_claim(request, decoder)
    expected = ExpectedDigests(
        length=_declared_length(request, chunked),
        md5=_content_md5(request.headers.get("Content-MD5")),
        sha256_hex=payload_hash if _is_hex_sha256(payload_hash) else None,
        checksum_algorithm=algorithm,
        checksum_value=claimed,
    )
    return stream, expected


def _decoder(request: web.Request, identity: Identity, payload_hash: str) -> AwsChunkedDecoder:
    if payload_hash not in (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER):
        raise InvalidArgument(
            "Unsupported x-amz-content-sha256", ArgumentName="x-amz-content-sha256"
        )
    signer = None
    if payload_hash != STREAMING_UNSIGNED_TRAILER:
        signed = identity.signed
        signer = ChunkSigner(
            identity.signing_key, signed.amz_date, signed.credential.scope, signed.signature
        )
    return AwsChunkedDecoder(
        _raw(request), signer=signer, expect_trailer=payload_hash != STREAMING_SIGNED
    )


def _is_hex_sha256(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


async def read_small_body(request: web.Request, identity: Identity, limit: int) -> bytes:
    """Read a body that is parsed (XML), verified like any other, and capped at ``limit``."""
    stream, expected = request_body(request, identity)
    if expected.length is not None and expected.length > limit:
        raise MaxMessageLengthExceeded()
    verifying = VerifyingStream(stream, expected)
    parts: list[bytes] = []
    size = 0
    async for chunk in verifying:
        size += len(chunk)
        if size > limit:
            raise MaxMessageLengthExceeded()
        parts.append(chunk)
    return b"".join(parts)
