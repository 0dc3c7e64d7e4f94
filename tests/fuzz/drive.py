"""Run pure async iterators to completion without an event loop.

The decoders under test only await their source, and the sources here are plain async
generators over bytes in memory, so no coroutine ever suspends: driving them with
``send(None)`` is exact and costs far less than an event loop per example.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Coroutine, Iterable
from typing import Any, TypeVar

T = TypeVar("T")


def _finish(step: Coroutine[Any, Any, T]) -> T:
    try:
        step.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    step.close()
    raise RuntimeError("the coroutine suspended: it needs an event loop")


def collect(
    stream: AsyncIterable[bytes], errors: tuple[type[Exception], ...] = ()
) -> tuple[list[bytes], Exception | None]:
    """Every piece ``stream`` yields, and the error among ``errors`` that ended it, if any."""
    iterator = stream.__aiter__()
    pieces: list[bytes] = []
    while True:
        try:
            pieces.append(_finish(iterator.__anext__()))  # type: ignore[arg-type]
        except StopAsyncIteration:
            return pieces, None
        except errors as error:
            return pieces, error


async def pieces_of(data: bytes, cuts: Iterable[int]) -> AsyncIterator[bytes]:
    """``data`` delivered in pieces ending at each offset of ``cuts`` (then the rest)."""
    start = 0
    for cut in sorted(set(cuts)):
        if start < cut < len(data):
            yield data[start:cut]
            start = cut
    yield data[start:]
