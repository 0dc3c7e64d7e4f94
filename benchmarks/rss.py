"""Peak gateway memory while a 1 GiB object streams through it, in and out.

The client generates the PUT body on the fly and discards the GET body, so only the
gateway could hold the object. The gateway's RSS (its whole process tree) is sampled every
50 ms from a thread; the baseline is the idle gateway's RSS in the same run.

    python -m benchmarks.rss [--backend localfs|moto|seaweedfs] [--size-mib 1024]
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from collections.abc import Awaitable, Callable

from benchmarks.client import MIB, LeanS3Client, generated_body
from benchmarks.harness import (
    BACKEND_KINDS,
    Stack,
    gateway_pid,
    gateway_stack,
    tree_pss_bytes,
    tree_rss_bytes,
)

SAMPLE_INTERVAL_S = 0.05
TARGET_PEAK_MIB = 200


class RssSampler:
    """Samples the tree RSS of ``pid`` in a thread, so a busy event loop cannot skew it;
    with ``pss``, the tree's PSS too (each shared page once; see ``tree_pss_bytes``)."""

    def __init__(self, pid: int, *, pss: bool = False) -> None:
        self._pid = pid
        self._pss = pss
        self._stop = threading.Event()
        self.samples: list[int] = []
        self.pss_samples: list[int] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(tree_rss_bytes(self._pid))
            if self._pss:
                self.pss_samples.append(tree_pss_bytes(self._pid))
            self._stop.wait(SAMPLE_INTERVAL_S)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mib(self) -> float:
        return max(self.samples) / MIB

    @property
    def peak_pss_mib(self) -> float:
        return max(self.pss_samples) / MIB


async def measure(
    label: str, pid: int, action: Callable[[], Awaitable[int]], size: int
) -> tuple[float, float]:
    began = time.perf_counter()
    with RssSampler(pid) as sampler:
        moved = await action()
    elapsed = time.perf_counter() - began
    assert moved == size, f"{label}: moved {moved} bytes, expected {size}"
    verdict = "OK" if sampler.peak_mib < TARGET_PEAK_MIB else "MISSED"
    print(
        f"  {label:4} {size / MIB:6.0f} MiB in {elapsed:5.1f} s ({size / MIB / elapsed:6.1f} MiB/s)"
        f"  peak RSS {sampler.peak_mib:6.1f} MiB over {len(sampler.samples)} samples"
        f"  [target < {TARGET_PEAK_MIB} MiB: {verdict}]"
    )
    return sampler.peak_mib, elapsed


async def run(stack: Stack, size: int) -> None:
    pid = gateway_pid(stack.gateway)
    async with LeanS3Client(stack.gateway.endpoint, stack.credentials) as client:
        await client.create_bucket("rss")
        await client.put("rss", "warmup", b"x" * MIB, MIB)
        await client.get("rss", "warmup")
        baseline = tree_rss_bytes(pid) / MIB
        print(f"  idle RSS after warm-up (baseline): {baseline:6.1f} MiB")

        async def put() -> int:
            await client.put("rss", "big", generated_body(size), size)
            return size

        put_peak, _ = await measure("PUT", pid, put, size)
        get_peak, _ = await measure("GET", pid, lambda: client.get("rss", "big"), size)
        print(
            f"  growth over baseline: PUT +{put_peak - baseline:.1f} MiB,"
            f" GET +{get_peak - baseline:.1f} MiB"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", action="append", choices=BACKEND_KINDS)
    parser.add_argument("--size-mib", type=int, default=1024)
    args = parser.parse_args()
    for kind in args.backend or ["localfs"]:
        print(f"== rss: {args.size_mib} MiB PUT and GET through the gateway, backend {kind}")
        with gateway_stack(kind) as stack:
            asyncio.run(run(stack, args.size_mib * MIB))


if __name__ == "__main__":
    main()
