"""Streaming decoder for ``Content-Encoding: aws-chunked`` request bodies.

Three forms, chosen by x-amz-content-sha256:

- STREAMING-AWS4-HMAC-SHA256-PAYLOAD: signed chunks, no trailer.
- STREAMING-UNSIGNED-PAYLOAD-TRAILER: plain chunks, then trailer lines.
- STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER: signed chunks, trailer lines and
  ``x-amz-trailer-signature``.

Wire format::

    <hex-size>[;chunk-signature=<64 hex>]\\r\\n<data>\\r\\n ... 0[;chunk-signature=...]\\r\\n
    [name:value\\r\\n ...]\\r\\n

Memory: unsigned chunks are passed through piece by piece as they arrive. A signed chunk is
held whole (at most ``max_signed_chunk_bytes``) because its signature must be verified before
any of its bytes are released. Every header and trailer line is length-bounded.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

from gateway.sigv4 import chunk_string_to_sign, hmac_hex, trailer_string_to_sign

MAX_TRAILER_LINES = 32
DEFAULT_MAX_SIGNED_CHUNK_BYTES = 16 * 1024 * 1024
TRAILER_SIGNATURE = "x-amz-trailer-signature"

_HEX_SIZE = re.compile(rb"[0-9a-fA-F]{1,16}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_CRLF = b"\r\n"


class ChunkedError(Exception):
    """A bad aws-chunked body; ``code`` is the S3 error code to answer with.

    Codes: IncompleteBody (the body ended early), SignatureDoesNotMatch (a chunk or trailer
    signature is wrong), InvalidArgument (malformed framing), InvalidRequest (trailer misuse).
    """

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


@dataclass(frozen=True)
class ChunkSigner:
    """Signing context of a streaming request; the header signature is the seed."""

    signing_key: bytes
    amz_date: str
    scope: str
    seed_signature: str


class _Reader:
    """Byte-level access to an async source of arbitrary-sized pieces."""

    def __init__(self, source: AsyncIterable[bytes]) -> None:
        self._source = source.__aiter__()
        self._buf = b""
        self._pos = 0

    async def _next_piece(self) -> bytes | None:
        async for piece in self._source:
            if piece:
                return bytes(piece)
        return None

    async def read_line(self, limit: int) -> bytes | None:
        """The next line without its CRLF, or None at end of input on a line boundary."""
        start = self._pos
        while True:
            end = self._buf.find(_CRLF, start)
            if end - self._pos > limit:
                raise ChunkedError("InvalidArgument", f"line longer than {limit} bytes")
            if end >= 0:
                line = self._buf[self._pos : end]
                self._pos = end + 2
                return line
            if len(self._buf) - self._pos > limit:
                raise ChunkedError("InvalidArgument", f"line longer than {limit} bytes")
            start = max(self._pos, len(self._buf) - 1)
            piece = await self._next_piece()
            if piece is None:
                if self._pos == len(self._buf):
                    return None
                raise ChunkedError("IncompleteBody", "body ended inside a line")
            start -= self._pos
            self._buf = self._buf[self._pos :] + piece
            self._pos = 0

    async def read_some(self, n: int) -> bytes:
        """Between 1 and ``n`` bytes; IncompleteBody if the input is exhausted."""
        if self._pos < len(self._buf):
            piece = self._buf[self._pos : self._pos + n]
            self._pos += len(piece)
            return piece
        fresh = await self._next_piece()
        if fresh is None:
            raise ChunkedError("IncompleteBody", "body ended inside a chunk")
        if len(fresh) <= n:
            return fresh
        self._buf, self._pos = fresh, n
        return fresh[:n]

    async def expect_crlf(self) -> None:
        tail = b""
        while len(tail) < 2:
            tail += await self.read_some(2 - len(tail))
        if tail != _CRLF:
            raise ChunkedError("InvalidArgument", "chunk data is not followed by CRLF")


class AwsChunkedDecoder:
    """Decode an aws-chunked body; iterate for the payload bytes.

    After iteration ends, ``trailers`` holds the trailer headers (lower-cased names, without
    x-amz-trailer-signature) and ``decoded_length`` the number of payload bytes yielded.
    With a ``signer`` every chunk signature (and the trailer signature, if a trailer is
    expected) is verified before the bytes it covers are yielded.
    """

    def __init__(
        self,
        source: AsyncIterable[bytes],
        *,
        signer: ChunkSigner | None,
        expect_trailer: bool,
        max_chunk_header_bytes: int = 4096,
        max_signed_chunk_bytes: int = DEFAULT_MAX_SIGNED_CHUNK_BYTES,
    ) -> None:
        self._reader = _Reader(source)
        self._signer = signer
        self._expect_trailer = expect_trailer
        self._max_line = max_chunk_header_bytes
        self._max_signed_chunk = max_signed_chunk_bytes
        self._previous_signature = signer.seed_signature if signer else ""
        self.trailers: dict[str, str] = {}
        self.decoded_length = 0

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._decode()

    async def _decode(self) -> AsyncIterator[bytes]:
        while True:
            size, signature = await self._chunk_header()
            if size == 0:
                self._verify_chunk(signature, hashlib.sha256(b"").hexdigest())
                break
            async for piece in self._chunk_data(size, signature):
                self.decoded_length += len(piece)
                yield piece
            await self._reader.expect_crlf()
        await self._read_trailer()

    async def _chunk_header(self) -> tuple[int, str | None]:
        line = await self._reader.read_line(self._max_line)
        if line is None:
            raise ChunkedError("IncompleteBody", "body ended before the final chunk")
        size_text, _, extensions = line.partition(b";")
        if not _HEX_SIZE.fullmatch(size_text):
            raise ChunkedError("InvalidArgument", "malformed chunk size")
        return int(size_text, 16), self._chunk_signature(extensions)

    def _chunk_signature(self, extensions: bytes) -> str | None:
        if self._signer is None:
            return None  # unsigned bodies carry no signature; extensions are ignored
        name, _, value = extensions.decode("latin-1").partition("=")
        if name.strip() != "chunk-signature" or not _HEX64.fullmatch(value.strip()):
            raise ChunkedError("InvalidArgument", "missing or malformed chunk-signature")
        return value.strip()

    async def _chunk_data(self, size: int, signature: str | None) -> AsyncIterator[bytes]:
        if self._signer is None:
            remaining = size
            while remaining:
                piece = await self._reader.read_some(remaining)
                remaining -= len(piece)
                yield piece
            return
        yield await self._signed_chunk(size, signature)

    async def _signed_chunk(self, size: int, signature: str | None) -> bytes:
        if size > self._max_signed_chunk:
            raise ChunkedError("InvalidArgument", f"chunk larger than {self._max_signed_chunk}")
        data = bytearray()
        digest = hashlib.sha256()
        while len(data) < size:
            piece = await self._reader.read_some(size - len(data))
            digest.update(piece)
            data += piece
        self._verify_chunk(signature, digest.hexdigest())
        return bytes(data)

    def _verify_chunk(self, signature: str | None, sha256_hex: str) -> None:
        if self._signer is None or signature is None:
            return
        s = self._signer
        to_sign = chunk_string_to_sign(s.amz_date, s.scope, self._previous_signature, sha256_hex)
        self._check(s, signature, to_sign, "chunk")

    def _check(self, signer: ChunkSigner, signature: str, to_sign: str, what: str) -> None:
        expected = hmac_hex(signer.signing_key, to_sign)
        if not hmac.compare_digest(expected, signature):
            raise ChunkedError("SignatureDoesNotMatch", f"{what} signature does not match")
        self._previous_signature = signature

    async def _read_trailer(self) -> None:
        # The empty line that ends the body is required: without it a body cut short
        # between trailer lines would be indistinguishable from a complete one.
        trailer_signature: str | None = None
        for _ in range(MAX_TRAILER_LINES + 1):
            line = await self._reader.read_line(self._max_line)
            if line is None:
                raise ChunkedError("IncompleteBody", "body ended before its final empty line")
            if not line:
                break
            name, value = _trailer_line(line)
            if not self._expect_trailer:
                raise ChunkedError("InvalidRequest", "trailer sent but not declared")
            if name == TRAILER_SIGNATURE:
                trailer_signature = value
            elif name in self.trailers:
                raise ChunkedError("InvalidArgument", f"duplicate trailer {name!r}")
            else:
                self.trailers[name] = value
        else:
            raise ChunkedError("InvalidArgument", "too many trailer lines")
        self._verify_trailer(trailer_signature)

    def _verify_trailer(self, signature: str | None) -> None:
        if self._signer is None or not self._expect_trailer:
            return
        if signature is None or not _HEX64.fullmatch(signature):
            raise ChunkedError("SignatureDoesNotMatch", "missing or malformed trailer signature")
        canonical = "".join(f"{name}:{value}\n" for name, value in self.trailers.items())
        s = self._signer
        to_sign = trailer_string_to_sign(
            s.amz_date, s.scope, self._previous_signature, canonical.encode("utf-8")
        )
        self._check(s, signature, to_sign, "trailer")


def _trailer_line(line: bytes) -> tuple[str, str]:
    name, sep, value = line.decode("latin-1").partition(":")
    if not sep or not name.strip():
        raise ChunkedError("InvalidArgument", "malformed trailer line")
    return name.strip().lower(), value.strip()
