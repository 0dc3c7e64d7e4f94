"""The encrypted object format (pure logic): sealing streams of any piece size, and every
way of moving, truncating or swapping chunks is detected."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest

from gateway.crypto.envelope import EncryptingStream
from gateway.crypto.format import (
    CHUNK,
    SEALED_CHUNK,
    ChunkTampered,
    PartCipher,
    chunks,
    stored_size,
)

KEY, SALT = os.urandom(32), os.urandom(16)


async def _pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    for at in range(0, len(data), size):
        yield data[at : at + size]


def _seal(data: bytes, piece: int, part: int = 0) -> bytes:
    async def run() -> bytes:
        stream = EncryptingStream(_pieces(data, piece), PartCipher(KEY, SALT, part), len(data))
        return b"".join([chunk async for chunk in stream])

    return asyncio.run(run())


def _open_all(stored: bytes, size: int, part: int = 0) -> bytes:
    cipher = PartCipher(KEY, SALT, part)
    sealed = [stored[at : at + SEALED_CHUNK] for at in range(0, len(stored), SEALED_CHUNK)]
    last = chunks(size) - 1
    return b"".join(cipher.open(i, c, i == last) for i, c in enumerate(sealed or [b""]))


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 5])
@pytest.mark.parametrize("piece", [1000, CHUNK, 3 * CHUNK + 7])
def test_any_piece_size_seals_to_the_same_format(size: int, piece: int) -> None:
    data = os.urandom(size)
    stored = _seal(data, piece)
    assert len(stored) == stored_size(size)
    assert _open_all(stored, size) == data


def test_tampering_is_detected() -> None:
    size = 3 * CHUNK
    stored = _seal(os.urandom(size), CHUNK)
    cipher = PartCipher(KEY, SALT, 0)
    first, second, third = (stored[i * SEALED_CHUNK : (i + 1) * SEALED_CHUNK] for i in range(3))
    flipped = bytes([first[0] ^ 1]) + first[1:]
    attempts = [
        (0, flipped, False),  # a flipped byte
        (0, second, False),  # chunks reordered
        (1, third, True),  # the last chunk moved up: truncation
        (2, third, False),  # the last chunk not flagged last
    ]
    for index, sealed, last in attempts:
        with pytest.raises(ChunkTampered):
            cipher.open(index, sealed, last)
    with pytest.raises(ChunkTampered):  # another part's key
        PartCipher(KEY, SALT, 1).open(0, first, False)
    with pytest.raises(ChunkTampered):  # another object's salt
        PartCipher(KEY, os.urandom(16), 0).open(0, first, False)


@pytest.mark.parametrize("part", [0, 7])
def test_a_batch_opens_like_chunk_by_chunk_and_stops_at_the_first_bad_chunk(part: int) -> None:
    size = 4 * CHUNK + 9
    data = os.urandom(size)
    stored = _seal(data, CHUNK, part)
    cipher = PartCipher(KEY, SALT, part)
    views = [
        memoryview(stored)[at : at + SEALED_CHUNK] for at in range(0, len(stored), SEALED_CHUNK)
    ]
    out = bytearray(size - CHUNK)
    # Chunks 1..4 (the last one short and flagged last), as a ranged read opens them.
    assert cipher.open_batch_into(1, views[1:], 4, memoryview(out)) == (size - CHUNK, 5, None)
    assert out == data[CHUNK:] == _open_all(stored, size, part)[CHUNK:]

    damaged = bytearray(stored)
    damaged[2 * SEALED_CHUNK + 5] ^= 1
    views = [
        memoryview(damaged)[at : at + SEALED_CHUNK] for at in range(0, len(damaged), SEALED_CHUNK)
    ]
    out = bytearray(size)
    opened, index, failure = cipher.open_batch_into(0, views, 4, memoryview(out))
    assert (opened, index) == (2 * CHUNK, 2)
    assert isinstance(failure, ChunkTampered)
    assert out[:opened] == data[: 2 * CHUNK]
    # Flagged last too early, the last chunk of a batch is refused (truncation).
    opened, index, failure = cipher.open_batch_into(0, views[:2], 1, memoryview(out))
    assert (opened, index, isinstance(failure, ChunkTampered)) == (CHUNK, 1, True)
