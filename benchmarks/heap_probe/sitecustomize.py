"""What a gateway's memory is made of, over time: for memory hunts in benchmarks, never
loaded by the gateway itself.

Put this directory first on the gateway's PYTHONPATH and name an output directory, e.g.

    python -m benchmarks.soak --gateway-env PYTHONPATH=benchmarks/heap_probe:. \\
        --gateway-env SKYBRIDGE_HEAP_PROBE=/tmp/probe [--gateway-env SKYBRIDGE_HEAP_PROBE_FRAMES=8]

Every ``SKYBRIDGE_HEAP_PROBE_EVERY_S`` (60) seconds a ``skybridge serve`` process appends
one JSON line to ``<dir>/<pid>.jsonl``: RSS by kind of mapping (the main malloc heap, other
threads' malloc arenas, other anonymous memory such as Python's object arenas, files),
glibc's own account of its heap (bytes in use and bytes free but kept), Python's allocated
blocks and gc-tracked objects. With ``..._FRAMES`` set, tracemalloc runs (from 40 s on) and
each line adds the traced bytes, with a snapshot beside it for ``Snapshot.compare_to``.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import sys
import threading
import time
import tracemalloc
from pathlib import Path

_FIELDS = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
           "fordblks", "keepcost")  # fmt: skip
# glibc puts the heaps of threads other than the main one at 64 MiB boundaries.
_THREAD_HEAP_ALIGN = 64 << 20
# Tracing a gateway's start makes it too slow to pass its readiness check (30 s).
_TRACE_AFTER_S = 40.0


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in _FIELDS]


def _malloc_mib() -> dict[str, float]:
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _Mallinfo2
    info = libc.mallinfo2()
    named = {"heap": "arena", "in_use": "uordblks", "free_kept": "fordblks", "mmapped": "hblkhd"}
    return {key: round(getattr(info, field) / 2**20, 1) for key, field in named.items()}


def _kind(mapping: list[str]) -> str:
    name = mapping[5] if len(mapping) > 5 else ""
    if name.startswith("["):
        return name
    if name:
        return "files"
    start = int(mapping[0].split("-")[0], 16)
    return "thread_heaps" if start % _THREAD_HEAP_ALIGN == 0 else "anonymous"


def _rss_mib_by_kind() -> dict[str, float]:
    totals: dict[str, int] = {}
    kind = ""
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if not fields[0].endswith(":"):
            kind = _kind(fields)
        elif fields[0] == "Rss:":
            totals[kind] = totals.get(kind, 0) + int(fields[1])
    return {k: round(v / 1024, 1) for k, v in totals.items() if v >= 1024}


def _probe(directory: Path, every_s: float, frames: int) -> None:
    if frames:
        time.sleep(_TRACE_AFTER_S)
        tracemalloc.start(frames)
    began = time.monotonic()
    for count in range(1, sys.maxsize):
        time.sleep(every_s)
        line: dict[str, object] = {
            "at_s": round(time.monotonic() - began),
            "rss_mib": _rss_mib_by_kind(),
            "malloc_mib": _malloc_mib(),
            "python_blocks": sys.getallocatedblocks(),
            "gc_objects": len(gc.get_objects()),
        }
        if frames:
            line["traced_mib"] = [round(b / 2**20, 1) for b in tracemalloc.get_traced_memory()]
            tracemalloc.take_snapshot().dump(str(directory / f"{os.getpid()}-{count:03d}.snap"))
        with (directory / f"{os.getpid()}.jsonl").open("a") as out:
            out.write(json.dumps(line) + "\n")


def _start() -> None:
    directory = os.environ.get("SKYBRIDGE_HEAP_PROBE")
    # Only the gateway: tools it runs inherit the environment too.
    if directory and sys.argv[1:2] == ["serve"]:
        every_s = float(os.environ.get("SKYBRIDGE_HEAP_PROBE_EVERY_S", "60"))
        frames = int(os.environ.get("SKYBRIDGE_HEAP_PROBE_FRAMES", "0"))
        args = (Path(directory), every_s, frames)
        threading.Thread(target=_probe, args=args, daemon=True, name="heap-probe").start()


# sys.argv is not set yet while site runs: look once the interpreter has started.
_timer = threading.Timer(1.0, _start)
_timer.daemon = True
_timer.start()
