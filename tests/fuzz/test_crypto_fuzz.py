"""The encrypted format's range maths: for any part size and plaintext range, the stored
span read is exactly the sealed chunks that hold the range (none missing, none extra), and
opening them gives exactly the range's plaintext. Multipart segment spans likewise."""

from __future__ import annotations

import asyncio
import os

from hypothesis import given
from hypothesis import strategies as st

from gateway.crypto.envelope import EncryptingStream
from gateway.crypto.format import (
    CHUNK,
    SEALED_CHUNK,
    TAG,
    PartCipher,
    chunk_range,
    chunks,
    stored_size,
    stored_span,
)
from gateway.services.streams import segment_spans
from tests.fuzz.drive import collect, pieces_of

KEY, SALT = os.urandom(32), os.urandom(16)


@st.composite
def ranges(draw: st.DrawFn, max_size: int) -> tuple[int, int, int]:
    """(size, first, last) with 0 <= first <= last < size."""
    size = draw(st.integers(1, max_size))
    first = draw(st.integers(0, size - 1))
    return size, first, draw(st.integers(first, size - 1))


def _chunk_bounds(index: int, size: int) -> tuple[int, int]:
    """Plaintext [start, end) of chunk ``index``, from the format's definition."""
    return index * CHUNK, min((index + 1) * CHUNK, size)


@given(ranges(2**50))
def test_the_stored_span_is_exactly_the_chunks_of_the_range(
    size_first_last: tuple[int, int, int],
) -> None:
    size, first, last = size_first_last
    low, high = chunk_range(first, last)
    assert _chunk_bounds(low, size)[0] <= first < _chunk_bounds(low, size)[1]
    assert _chunk_bounds(high, size)[0] <= last < _chunk_bounds(high, size)[1]
    start, length = stored_span(low, high, size)
    plaintext_before = low * CHUNK
    assert start == plaintext_before + TAG * low
    plaintext = _chunk_bounds(high, size)[1] - _chunk_bounds(low, size)[0]
    assert length == plaintext + TAG * (high - low + 1)
    assert start + length <= stored_size(size)
    assert stored_size(size) == size + TAG * chunks(size)
    final = chunks(size) - 1
    if high == final:
        assert start + length == stored_size(size)


def _seal(data: bytes, cipher: PartCipher, piece: int) -> bytes:
    stream = EncryptingStream(pieces_of(data, range(piece, len(data), piece)), cipher, len(data))
    try:
        sealed, error = collect(stream)
    except RuntimeError:  # the stream awaits a thread: run it on a loop instead
        sealed = asyncio.run(_gather(stream))
    assert error is None
    return b"".join(sealed)


async def _gather(stream: EncryptingStream) -> list[bytes]:
    return [piece async for piece in stream]


@given(ranges(3 * CHUNK + 100), st.integers(1, 2 * CHUNK))
def test_opening_the_span_gives_exactly_the_range(
    size_first_last: tuple[int, int, int], piece: int
) -> None:
    size, first, last = size_first_last
    data = os.urandom(size)
    cipher = PartCipher(KEY, SALT, 0)
    stored = _seal(data, cipher, piece)
    low, high = chunk_range(first, last)
    start, length = stored_span(low, high, size)
    span = stored[start : start + length]
    final = chunks(size) - 1
    sealed = [span[at : at + SEALED_CHUNK] for at in range(0, len(span), SEALED_CHUNK)]
    assert len(sealed) == high - low + 1
    opened = b"".join(cipher.open(low + i, c, low + i == final) for i, c in enumerate(sealed))
    offset = first - low * CHUNK
    assert opened[offset : offset + last - first + 1] == data[first : last + 1]


@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=12), st.data())
def test_segment_spans_cover_exactly_the_range(sizes: list[int], data: st.DataObject) -> None:
    total = sum(sizes)
    if total == 0:
        assert segment_spans(sizes, 0, 0) == []
        return
    start = data.draw(st.integers(0, total - 1), label="start")
    end = data.draw(st.integers(start, total - 1), label="end")
    offsets = [sum(sizes[:i]) for i in range(len(sizes))]
    spans = segment_spans(sizes, start, end)
    assert all(length > 0 and offset + length <= sizes[i] for i, offset, length in spans)
    absolute = [(offsets[i] + offset, offsets[i] + offset + length) for i, offset, length in spans]
    # Back to back, from start to end inclusive: nothing missing, nothing extra.
    assert absolute[0][0] == start
    assert absolute[-1][1] == end + 1
    assert all(prev[1] == nxt[0] for prev, nxt in zip(absolute, absolute[1:], strict=False))
