"""Issue #4, acceptance 6: encrypted PUT and GET throughput against unencrypted, in the
same run, through the same gateway: 1 MiB objects at concurrency 16 and 64 MiB objects at
concurrency 4, into a bucket with default encryption (SSE-S3) and into a clear one, runs
interleaved (clear, sealed, clear, sealed, ...) because this machine's speed drifts; the
figures are medians. Beside the rate, the gateway's CPU time per MiB moved: the rate
follows it whenever the gateway's one event loop is what limits the run, and it is far
steadier than the rate on a machine whose other tenants come and go.

    python -m benchmarks.encryption [--backend localfs|seaweedfs] [--seconds 8] [--rounds 3]
                                    [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from collections.abc import Awaitable
from dataclasses import dataclass

from benchmarks.client import MIB, LeanS3Client, LoadResult, object_url, run_load
from benchmarks.harness import BACKEND_KINDS, gateway_pid, gateway_stack, tree_cpu_s

SIZES = {MIB: 16, 64 * MIB: 4}
PUT_KEYS = 32
DEFAULT_SSE = (
    b'<ServerSideEncryptionConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    b"<Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm>"
    b"</ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>"
)


async def enable_default_sse(client: LeanS3Client, bucket: str) -> None:
    """PutBucketEncryption: SSE-S3 by default for ``bucket``."""
    url = object_url(client.endpoint, bucket, query="encryption")
    headers = {"content-length": str(len(DEFAULT_SSE))}
    await client.request("PUT", url, data=DEFAULT_SSE, headers=headers)


async def _load(
    client: LeanS3Client, bucket: str, op: str, body: bytes, concurrency: int, seconds: float
) -> LoadResult:
    async def put(n: int) -> int:
        await client.put(bucket, f"put/{n % PUT_KEYS}", body, len(body))
        return len(body)

    async def get(n: int) -> int:
        return await client.get(bucket, f"get/{n % concurrency}")

    return await run_load(bucket, put if op == "PUT" else get, concurrency=concurrency,
                          duration_s=seconds)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Run:
    mib_per_s: float
    cpu_ms_per_mib: float


async def _measured(pid: int, load: Awaitable[LoadResult]) -> Run:
    cpu_before = tree_cpu_s(pid)
    result = await load
    cpu_ms = 1000 * (tree_cpu_s(pid) - cpu_before)
    return Run(result.mib_per_s, cpu_ms / max(result.bytes / MIB, 1e-9))


def _report(op: str, size: int, concurrency: int, runs: dict[str, list[Run]]) -> None:
    rate = {b: statistics.median(r.mib_per_s for r in runs[b]) for b in runs}
    cpu = {b: statistics.median(r.cpu_ms_per_mib for r in runs[b]) for b in runs}
    print(
        f"  {op} {size // MIB:>2} MiB x{concurrency:<2}: clear {rate['clear']:7.1f} MiB/s,"
        f" SSE-S3 {rate['sealed']:7.1f} MiB/s -> encrypted at"
        f" {100 * rate['sealed'] / rate['clear']:.0f}%; gateway CPU per MiB: clear"
        f" {cpu['clear']:.3f} ms, SSE-S3 {cpu['sealed']:.3f} ms"
        f" (clear at {100 * cpu['clear'] / cpu['sealed']:.0f}% of it)"
    )
    for bucket in runs:
        listed = ", ".join(f"{r.mib_per_s:.0f} ({r.cpu_ms_per_mib:.3f})" for r in runs[bucket])
        print(f"      {bucket:>6} runs, MiB/s (CPU ms/MiB): {listed}")


async def run(client: LeanS3Client, pid: int, seconds: float, rounds: int) -> None:
    await client.create_bucket("clear")
    await client.create_bucket("sealed")
    await enable_default_sse(client, "sealed")
    for size, concurrency in SIZES.items():
        body = bytes(range(256)) * (size // 256)
        for bucket in ("clear", "sealed"):
            await asyncio.gather(
                *(client.put(bucket, f"get/{i}", body, size) for i in range(concurrency))
            )
        for op in ("PUT", "GET"):
            runs: dict[str, list[Run]] = {"clear": [], "sealed": []}
            for _ in range(rounds):
                for bucket in ("clear", "sealed"):
                    load = _load(client, bucket, op, body, concurrency, seconds)
                    runs[bucket].append(await _measured(pid, load))
            _report(op, size, concurrency, runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", action="append", choices=BACKEND_KINDS)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    for kind in args.backend or ["localfs"]:
        print(
            f"== encryption: backend {kind}, {args.rounds} interleaved runs of"
            f" {args.seconds:.0f} s, medians"
        )
        with gateway_stack(kind, args.workers) as stack:

            async def go() -> None:
                pid = gateway_pid(stack.gateway)
                async with LeanS3Client(stack.gateway.endpoint, stack.credentials) as client:
                    await run(client, pid, args.seconds, args.rounds)

            asyncio.run(go())


if __name__ == "__main__":
    main()
