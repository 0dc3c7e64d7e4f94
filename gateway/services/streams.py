"""Stream stages for object bodies: async iterators in, async iterators out."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from gateway import checksums
from gateway.errors import BadDigest, IncompleteBody, InvalidRequest, XAmzContentSHA256Mismatch

# Below this, a thread hop costs more than the hashing it moves off the event loop.
THREAD_HASH_MIN_BYTES = 64 * 1024


@dataclass(slots=True)
class ExpectedDigests:
    """What the client claims about the body; verified before anything commits."""

    length: int | None = None
    md5: bytes | None = None
    sha256_hex: str | None = None
    checksum_algorithm: str | None = None
    # Resolved after the body ends: the value may arrive in an aws-chunked trailer.
    checksum_value: Callable[[], str | None] = field(default=lambda: None)


@dataclass(slots=True)
class BodyDigests:
    size: int
    md5: bytes
    checksum_algorithm: str
    checksum: bytes


class VerifyingStream:
    """Counts and hashes a body as it passes; raises at the end if a claim is false.

    Raising from inside the stream makes the backend abandon its atomic write, so a body
    that fails verification is never stored.
    """

    def __init__(
        self,
        source: AsyncIterator[bytes],
        expected: ExpectedDigests,
        default_algorithm: str = "CRC64NVME",
    ) -> None:
        self._source = source
        self._expected = expected
        self._md5 = hashlib.md5()
        self._sha256 = hashlib.sha256() if expected.sha256_hex else None
        self._algorithm = (expected.checksum_algorithm or default_algorithm).upper()
        self._checksum = checksums.new_hasher(self._algorithm)
        self._size = 0
        self._iterator = self._run()
        self.result: BodyDigests | None = None

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        return await self._iterator.__anext__()

    async def _run(self) -> AsyncIterator[bytes]:
        async for chunk in self._source:
            self._size += len(chunk)
            if self._expected.length is not None and self._size > self._expected.length:
                raise InvalidRequest("The body is longer than its declared length.")
            if len(chunk) >= THREAD_HASH_MIN_BYTES:
                # The digests release the GIL: hashing overlaps other requests' I/O.
                await asyncio.to_thread(self._update, chunk)
            else:
                self._update(chunk)
            yield chunk
        self.result = self._verify()

    def _update(self, chunk: bytes) -> None:
        self._md5.update(chunk)
        self._checksum.update(chunk)
        if self._sha256 is not None:
            self._sha256.update(chunk)

    def _verify(self) -> BodyDigests:
        expected = self._expected
        if expected.length is not None and self._size != expected.length:
            raise IncompleteBody()
        md5 = self._md5.digest()
        if expected.md5 is not None and md5 != expected.md5:
            raise BadDigest()
        if self._sha256 is not None and self._sha256.hexdigest() != expected.sha256_hex:
            raise XAmzContentSHA256Mismatch()
        digest = self._checksum.digest()
        claimed = expected.checksum_value()
        if claimed is not None and checksums.encode(digest) != claimed:
            raise BadDigest(
                f"The {self._algorithm} you specified did not match the calculated checksum."
            )
        return BodyDigests(self._size, md5, self._algorithm, digest)


def segment_spans(segment_sizes: list[int], start: int, end: int) -> list[tuple[int, int, int]]:
    """(segment index, offset within it, length) covering inclusive range [start, end]."""
    spans = []
    base = 0
    for index, size in enumerate(segment_sizes):
        seg_first, seg_last = base, base + size - 1
        base += size
        if size == 0 or seg_last < start or seg_first > end:
            continue
        offset = max(start, seg_first) - seg_first
        length = min(end, seg_last) - seg_first - offset + 1
        spans.append((index, offset, length))
    return spans
