"""Reading a version's bytes from its placements, with failover before the first byte."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from gateway.backends.base import BackendError
from gateway.backends.registry import BackendRegistry, UnknownBackend
from gateway.errors import ServiceUnavailable
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
