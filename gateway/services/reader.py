"""Reading a version's bytes from its placements, with failover before the first byte."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import TypeVar

from gateway import checksums
from gateway.backends.base import BackendError
from gateway.backends.registry import BackendRegistry, UnknownBackend
from gateway.crypto.format import (
    CHUNK,
    SEALED_CHUNK,
    TAG,
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


class ReplicaCorrupt(BackendError):
    """A replica's bytes do not match the checksum recorded when they were written."""


async def _placement_stream(
    backends: BackendRegistry, version: VersionRow, placement: PlacementRow, start: int, end: int
) -> AsyncGenerator[bytes, None]:
    backend = backends.get(placement.backend)
    segments = version.part_sizes or [version.size_bytes]
    keys = placement.segment_keys or [placement.backend_key]
    expected = version.part_checksums if version.part_sizes else [version.checksum_value]
    for index, offset, length in segment_spans(segments, start, end):
        stream = backend.get(keys[index], offset, length)
        checksum = expected[index] if expected and index < len(expected) else None
        whole = offset == 0 and length == segments[index]
        if whole and checksum and version.checksum_algorithm:
            stream = _checked(stream, version.checksum_algorithm, checksum, length)
        async for chunk in stream:
            yield chunk


async def _checked(
    stream: AsyncIterator[bytes], algorithm: str, expected: str, size: int
) -> AsyncIterator[bytes]:
    """A whole stored segment, each chunk held back until the next arrives and the last
    until the segment matched its checksum: bytes altered on the backend or on the way
    never make a complete response. A segment read in one chunk (most objects) is
    checked before its first byte, so the read fails over to the next replica."""
    hasher = checksums.new_hasher(algorithm)
    seen = 0
    held = b""
    async for chunk in stream:
        hasher.update(chunk)
        seen += len(chunk)
        if held:
            yield held
        held = chunk
    if seen != size or checksums.encode(hasher.digest()) != expected:
        raise ReplicaCorrupt(f"read {seen} of {size} bytes failing their {algorithm} checksum")
    if held:
        yield held


Chunk = TypeVar("Chunk", bytes, bytes | bytearray)


async def _prime(stream: AsyncIterator[Chunk]) -> Chunk | bytes:
    """The first non-empty chunk, or b"" when the stream is empty."""
    async for chunk in stream:
        if chunk:
            return chunk
    return b""


async def _chain(first: Chunk | bytes, rest: AsyncIterator[Chunk]) -> AsyncIterator[Chunk | bytes]:
    if first:
        yield first
    async for chunk in rest:
        yield chunk


async def open_range(
    backends: BackendRegistry, version: VersionRow, start: int, end: int, *, hedge: bool = False
) -> AsyncIterator[bytes]:
    """An iterator over bytes [start, end] of ``version`` whose first byte already arrived.

    Each placement is tried in order; an error before the first byte moves on to the
    next one, so the client never sees it. After the first byte, errors propagate. With
    ``hedge``, a first byte later than its link's observed p95 also asks the next replica,
    and the first to answer serves the read.
    """
    if end < start:
        return _empty()
    race = _FirstByteRace(backends, version, start, end, hedge)
    try:
        return await race.run()
    finally:
        await race.close_losers()


@dataclass(slots=True)
class _FirstByteRace:
    backends: BackendRegistry
    version: VersionRow
    start: int
    end: int
    hedge: bool
    running: dict[asyncio.Future[bytes], tuple[PlacementRow, AsyncGenerator[bytes, None]]] = field(
        default_factory=dict
    )
    last_error: Exception | None = None

    async def run(self) -> AsyncIterator[bytes]:
        waiting = list(self.version.placements)
        late = True  # nothing asked yet
        while waiting or self.running:
            timeout = None
            if waiting and (late or not self.running):
                timeout = self._ask(waiting.pop(0), bool(waiting))
            done, _ = await asyncio.wait(
                self.running, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            late = not done
            rank = {id(p): i for i, p in enumerate(self.version.placements)}
            # The preferred order decides between replicas that answered together.
            for task in sorted(done, key=lambda t: rank[id(self.running[t][0])]):
                placement, stream = self.running.pop(task)
                if (first := self._outcome(placement, task)) is not None:
                    return _chain(first, stream)
        raise ServiceUnavailable("No replica of this object could be read.") from self.last_error

    def _ask(self, placement: PlacementRow, more: bool) -> float | None:
        """Start reading ``placement``; return how long to wait before hedging."""
        stream = _placement_stream(self.backends, self.version, placement, self.start, self.end)
        self.running[asyncio.ensure_future(_prime(stream))] = (placement, stream)
        if not (self.hedge and more):
            return None
        return self.backends.hedge_after_s(placement.backend)

    def _outcome(self, placement: PlacementRow, task: asyncio.Future[bytes]) -> bytes | None:
        """The first chunk, or None after an error that lets the next replica serve."""
        error = task.exception()
        if error is None:
            return task.result()
        if not isinstance(error, BackendError | UnknownBackend):
            raise error
        log.warning(
            "placement %s/%s unreadable: %s", placement.backend, placement.backend_key, error
        )
        self.last_error = error
        return None

    async def close_losers(self) -> None:
        """Replicas still being asked once one answered (or the read was given up)."""
        for task, (_, stream) in self.running.items():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            with contextlib.suppress(Exception):
                await stream.aclose()
        self.running.clear()


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


async def _sealed_batches(
    backends: BackendRegistry, key: str, backend: str, first: int, last: int, size: int
) -> AsyncGenerator[list[memoryview], None]:
    """Sealed chunks ``first``..``last`` of one stored part, a backend read's worth at a
    time: one hop per read rather than per chunk, and chunks are views, not copies (only a
    chunk split across two reads is put together)."""
    start, length = stored_span(first, last, size)
    leftover = bytearray()
    async for piece in backends.get(backend).get(key, start, length):
        data = memoryview(piece)
        batch: list[memoryview] = []
        if leftover:
            needed = SEALED_CHUNK - len(leftover)
            leftover += data[:needed]
            data = data[needed:]
            if len(leftover) < SEALED_CHUNK:
                continue
            batch.append(memoryview(leftover))
            leftover = bytearray()  # the view keeps the old one: no copy needed
        whole = len(data) - len(data) % SEALED_CHUNK
        batch += [data[at : at + SEALED_CHUNK] for at in range(0, whole, SEALED_CHUNK)]
        leftover += data[whole:]
        if batch:
            yield batch
    if leftover:
        yield [memoryview(leftover)]


async def _segment_plaintext(
    backends: BackendRegistry,
    placements: list[PlacementRow],
    segment: int,
    cipher: PartCipher,
    size: int,
    span: tuple[int, int],
) -> AsyncIterator[bytes | bytearray]:
    """Plaintext bytes ``span`` of one part, opened chunk by chunk. Nothing unauthenticated
    is yielded, so a replica that is unreadable or fails authentication at any chunk is
    dropped (from ``placements``, for the parts that follow too) and the next one resumes
    at that chunk."""
    first, last = span
    first_chunk, last_chunk = chunk_range(first, last)
    final = chunk_count(size) - 1
    index = first_chunk
    buffers = _SendBuffers()
    while index <= last_chunk:
        if not placements:
            raise InternalError("No replica of this object passed authentication.")
        placement = placements[0]
        key = _segment_key(placement, segment)
        try:
            batches = _sealed_batches(backends, key, placement.backend, index, last_chunk, size)
            async with contextlib.aclosing(batches):
                async for batch in batches:
                    base = index * CHUNK  # the segment offset of the batch's first byte
                    out, opened, index, failure = _open_batch(cipher, batch, index, final, buffers)
                    wanted = _within(out, first - base, min(last + 1 - base, opened))
                    if wanted:
                        # The chunks before a failing one are authentic: send them first.
                        yield wanted
                    if failure is not None:
                        raise failure
            if index <= last_chunk:
                raise ChunkTampered(f"replica ended before chunk {index}")
        except (BackendError, UnknownBackend, ChunkTampered) as exc:
            log.error(
                "encrypted replica %s/%s failed at chunk %d: %s",
                placement.backend, key, index, exc,
            )  # fmt: skip
            placements.pop(0)


class _SendBuffers:
    """Plaintext buffers of one stream, reused once nothing else holds them. A new
    ``bytearray`` is zero-filled before it is written (a memset per MiB sent, about 5 % of
    an encrypted GET's CPU), and the transport keeps a written buffer until its bytes are on
    the socket, so a buffer is reused only when this pool holds its last reference."""

    def __init__(self) -> None:
        self._kept: list[bytearray] = []

    def take(self, size: int) -> bytearray:
        kept = self._kept
        for at in range(len(kept)):
            if len(kept[at]) == size and _refs_in(kept, at) == _ONLY_IN_A_LIST:
                buffer = kept.pop(at)
                break
        else:
            buffer = bytearray(size)
        kept.append(buffer)
        # The one being sent, the one just written and one being filled: enough to reuse.
        del kept[:-3]
        return buffer


def _refs_in(items: list[bytearray], at: int) -> int:
    return sys.getrefcount(items[at])


# The count for an item a list alone holds, measured rather than assumed: how many
# references an interpreter adds while passing arguments varies between versions.
_ONLY_IN_A_LIST = _refs_in([bytearray()], 0)


def _open_batch(
    cipher: PartCipher, batch: list[memoryview], index: int, final: int, buffers: _SendBuffers
) -> tuple[bytearray, int, int, ChunkTampered | None]:
    """Open chunks from ``index`` on into one buffer until one fails: (the buffer, how many
    of its bytes opened, the next index, the failure if any)."""
    out = buffers.take(sum(len(sealed) - TAG for sealed in batch))
    with memoryview(out) as view:
        opened, index, failure = cipher.open_batch_into(index, batch, final, view)
    return out, opened, index, failure


def _within(opened: bytearray, start: int, end: int) -> bytes | bytearray:
    """Bytes [start, end) of the opened plaintext (clamped to what opened): the buffer
    itself when all of it is wanted, the common case of a whole read."""
    start, end = max(start, 0), min(end, len(opened))
    if start == 0 and end == len(opened):
        return opened
    with memoryview(opened) as view:
        return bytes(view[start:end])


async def as_bytes(stream: AsyncIterator[bytes | bytearray]) -> AsyncIterator[bytes]:
    """For consumers that need immutable bytes (a copy's write path)."""
    async for chunk in stream:
        yield chunk if isinstance(chunk, bytes) else bytes(chunk)


async def _decrypted(
    backends: BackendRegistry, version: VersionRow, sealed: SealedVersion, first: int, last: int
) -> AsyncIterator[bytes | bytearray]:
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
) -> AsyncIterator[bytes | bytearray]:
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
