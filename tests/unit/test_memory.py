"""The gateway gives freed heap back to the system (gateway/memory.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from gateway import memory

# In a process of its own: 64 MiB of 1 MiB buffers freed below a live one stay resident
# (glibc keeps them in the heap) until trimmed.
_PROBE = textwrap.dedent(
    """
    import os
    from gateway import memory

    def rss_mib():
        pages = int(open("/proc/self/statm").read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20

    first = bytearray(1 << 20)
    del first  # glibc's dynamic threshold: later 1 MiB buffers come from the heap
    blocks = [bytearray(1 << 20) for _ in range(64)]
    above = bytearray(1 << 20)  # keeps the freed ones off the heap's top
    del blocks
    before = rss_mib()
    memory.trim_heap()
    print(before, rss_mib())
    """
)


@pytest.mark.skipif(not memory.can_trim(), reason="not glibc")
def test_trimming_returns_freed_buffers_to_the_system() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True
    ).stdout
    before, after = map(float, out.split())
    assert before - after > 48, (before, after)


# In a process of its own too: freezing is process-wide and cannot be undone selectively.
_SETTLE = textwrap.dedent(
    """
    import gc
    from gateway import memory

    class Node:
        pass

    kept = [Node() for _ in range(1000)]
    for node in kept:
        node.self = node  # a cycle each, live: what startup leaves
    memory.settle_heap()
    frozen = gc.get_freeze_count()
    garbage = Node()
    garbage.self = garbage
    del garbage
    gone = gc.collect()
    print(frozen, gc.get_threshold()[0], gone, len(kept))
    """
)


def test_settling_freezes_what_startup_built_and_still_collects_cycles() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _SETTLE], capture_output=True, text=True, check=True
    ).stdout
    frozen, threshold, collected, kept = map(int, out.split())
    assert frozen >= 1000  # the live startup objects are out of every collection
    assert threshold == memory.YOUNG_COLLECTION_THRESHOLD
    assert collected >= 1  # a cycle made after settling is still found
    assert kept == 1000
