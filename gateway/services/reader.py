"""Reading a version's bytes from its placements, with failover before the first byte."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass

from gateway.backends.base import BackendError
from gateway.backends.registry import BackendRegistry, UnknownBackend
from gateway.crypto.format import (
    CHUNK,
    SEALED_CHUNK,
    ChunkTampered,
    PartCipher,
    chunk_range,
    stored_span,
)
from gateway.crypto.format import chunks as chunk_count
from gateway.errors import InternalError, ServiceUnavailable
from gateway.services.streams import segment_spans
from metadata.models import PlacementRow, VersionRow

log = logging.getLogger(__name__)


async def _placement_stream(
    backends: BackendRegistry, placement: PlacementRow, segments: list[int], start: int, end: int
) -> AsyncIterator[bytes]:
    backend = backends.get(placement.backend)
    if placement.segment_keys is None:
        async for chunk in backend.get(placement.backend_key, start, end - start + 1):
            yield chunk
        return
    for index, offset, length in segment_spans(segments, start, end):
        async for chunk in backend.get(placement.segment_keys[index], offset, length):
            yield chunk


async def _prime(stream: AsyncIterator[bytes]) -> bytes:
    """The first non-empty chunk, or b"" when the stream is empty."""
    async for chunk in stream:
        if chunk:
            return chunk
    return b""


async def _chain(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first:
        yield first
    async for chunk in rest:
        yield chunk


async def open_range(
    backends: BackendRegistry, version: VersionRow, start: int, end: int
) -> AsyncIterator[bytes]:
    """An iterator over bytes [start, end] of ``version`` whose first byte already arrived.

    Each placement is tried in order; an error before the first byte moves on to the
    next one, so the client never sees it. After the first byte, errors propagate.
    """
    if end < start:
        return _empty()
    segments = version.part_sizes or [version.size_bytes]
    last_error: Exception | None = None
    for placement in version.placements:
        stream = _placement_stream(backends, placement, segments, start, end)
        try:
            first = await _prime(stream)
        except (BackendError, UnknownBackend) as exc:
            log.warning(
                "placement %s/%s unreadable: %s", placement.backend, placement.backend_key, exc
            )
            last_error = exc
            continue
        return _chain(first, stream)
    raise ServiceUnavailable("No replica of this object could be read.") from last_error


async def _empty() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover - makes this an async generator


@dataclass(frozen=True, slots=True)
class SealedVersion:
    """What opening an encrypted version takes: its data key, salt and part numbers."""

    data_key: bytes
    salt: bytes
    # The part number each segment was sealed under (a single-part object: part 0).
    parts: tuple[int, ...] = ()

    def cipher(self, segment: int) -> PartCipher:
        return PartCipher(self.data_key, self.salt, self.parts[segment] if self.parts else 0)


def _segment_key(placement: PlacementRow, segment: int) -> str:
    return placement.segment_keys[segment] if placement.segment_keys else placement.backend_key


async def _sealed_chunks(
    backends: BackendRegistry, key: str, backend: str, first: int, last: int, size: int
) -> AsyncGenerator[bytes, None]:
    """Sealed chunks ``first``..``last`` of one stored part."""
    start, length = stored_span(first, last, size)
    buffer = bytearray()
    async for piece in backends.get(backend).get(key, start, length):
        buffer += piece
        while len(buffer) >= SEALED_CHUNK:
            yield bytes(buffer[:SEALED_CHUNK])
            del buffer[:SEALED_CHUNK]
    if buffer:
        yield bytes(buffer)


async def _segment_plaintext(
    backends: BackendRegistry,
    placements: list[PlacementRow],
    segment: int,
    cipher: PartCipher,
    size: int,
    span: tuple[int, int],
) -> AsyncIterator[bytes]:
    """Plaintext bytes ``span`` of one part, opened chunk by chunk. Nothing unauthenticated
    is yielded, so a replica that is unreadable or fails authentication at any chunk is
    dropped (from ``placements``, for the parts that follow too) and the next one resumes
    at that chunk."""
    first, last = span
    first_chunk, last_chunk = chunk_range(first, last)
    final = chunk_count(size) - 1
    index = first_chunk
    while index <= last_chunk:
        if not placements:
            raise InternalError("No replica of this object passed authentication.")
        placement = placements[0]
        key = _segment_key(placement, segment)
        try:
            sealed_chunks = _sealed_chunks(
                backends, key, placement.backend, index, last_chunk, size
            )
            async with contextlib.aclosing(sealed_chunks):
                async for sealed in sealed_chunks:
                    plain = cipher.open(index, sealed, index == final)
                    low = first - index * CHUNK if index == first_chunk else 0
                    high = last - index * CHUNK + 1 if index == last_chunk else len(plain)
                    index += 1
                    yield plain[low:high]
            if index <= last_chunk:
                raise ChunkTampered(f"replica ended before chunk {index}")
        except (BackendError, UnknownBackend, ChunkTampered) as exc:
            log.error(
                "encrypted replica %s/%s failed at chunk %d: %s",
                placement.backend, key, index, exc,
            )  # fmt: skip
            placements.pop(0)


async def _decrypted(
    backends: BackendRegistry, version: VersionRow, sealed: SealedVersion, first: int, last: int
) -> AsyncIterator[bytes]:
    sizes = version.part_sizes or [version.size_bytes]
    placements = list(version.placements)
    for segment, offset, length in segment_spans(sizes, first, last):
        span = (offset, offset + length - 1)
        cipher = sealed.cipher(segment)
        async for piece in _segment_plaintext(
            backends, placements, segment, cipher, sizes[segment], span
        ):
            yield piece


async def open_encrypted_range(
    backends: BackendRegistry, version: VersionRow, sealed: SealedVersion, start: int, end: int
) -> AsyncIterator[bytes]:
    """Like ``open_range`` for an encrypted version: the first chunk is opened (and
    authenticated) before this returns."""
    if end < start:
        return _empty()
    stream = _decrypted(backends, version, sealed, start, end)
    try:
        first = await _prime(stream)
    except InternalError:
        raise ServiceUnavailable("No replica of this object could be read.") from None
    return _chain(first, stream)
