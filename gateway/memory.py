"""Giving freed heap back to the system, and keeping the cyclic garbage collector off the
hot path.

Bodies move through the gateway in chunks of up to 1 MiB. After the first such chunk is
freed, glibc's dynamic mmap threshold serves them from the main heap, which then grows to
the most chunks ever alive at once and keeps those pages when they are freed (the soak
measured 10-21 MiB free but kept, moving with load: benchmarks/README.md). Trimming every
few seconds returns what is free, so the process's RSS follows what is alive. The hot path
is untouched (a fixed mmap threshold would cost an mmap and 256 page faults per chunk).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
from collections.abc import Callable

TRIM_INTERVAL_S = 10.0

# Container allocations between young collections (CPython's default is 700). A listing
# page allocates about 5,000 and a request dozens: at 700, a full collection, which walks
# every tracked object of the process, came every dozen pages. Measured on a full listing of
# 1M keys: 7.6-9.7 s at the defaults, 5.3-7.0 s frozen and at this threshold.
YOUNG_COLLECTION_THRESHOLD = 20_000


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None on a C library without it (musl, macOS)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    trim: Callable[[int], int] | None = getattr(libc, "malloc_trim", None)
    return trim


_TRIM = _malloc_trim()


def can_trim() -> bool:
    return _TRIM is not None


def trim_heap() -> None:
    """Return the heap's free pages to the system (a few milliseconds for tens of MiB)."""
    if _TRIM is not None:
        _TRIM(0)


async def trim_heap_forever(interval_s: float = TRIM_INTERVAL_S) -> None:
    while True:
        await asyncio.sleep(interval_s)
        # In a thread: it walks the heap under glibc's lock, not the GIL.
        await asyncio.to_thread(trim_heap)


def settle_heap() -> None:
    """Once serving has started: freeze what startup built (modules, the app, its routes and
    pools live as long as the process), so that collections no longer walk it, and collect
    the young generation less often. Cycles are still collected, only later."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, middle, old)


def freeze_for_fork() -> None:
    """Before forking workers: what they inherit stays in shared pages only while no
    collection writes to the objects' headers; frozen, the workers' collectors leave them
    alone."""
    gc.freeze()
