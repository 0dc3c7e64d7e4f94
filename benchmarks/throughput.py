"""1 MiB PUT and GET throughput through the gateway, beside direct access to its backend.

Both targets are driven by the same lean aiohttp client at the same concurrency, and the
runs are interleaved (gateway, direct, gateway, direct) because this machine's speed drifts.
Direct access is the S3 server itself for an S3 backend, and for localfs a trivial aiohttp
file server (benchmarks/fileserver.py) that writes and reads files the way the driver does.

    python -m benchmarks.throughput [--backend localfs|seaweedfs|moto ...] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from benchmarks.client import MIB, Credentials, LeanS3Client, LoadResult, percentile, run_load
from benchmarks.harness import BACKEND_KINDS, Stack, gateway_stack, module_server

OBJECT_BYTES = MIB
CONCURRENCY = 16
# Writes overwrite this many keys in turn: bounded disk use, and realistic gc work.
PUT_KEYS = 256
GET_KEYS = 64
ROUNDS = 2


@dataclass(frozen=True, slots=True)
class Target:
    label: str
    client: LeanS3Client
    bucket: str


@contextmanager
def file_server(stack: Stack) -> Iterator[str]:
    with module_server("benchmarks.fileserver", "--root", str(stack.workdir / "direct")) as (
        endpoint,
        _,
    ):
        yield endpoint


async def prepare(target: Target, body: bytes) -> None:
    await asyncio.gather(
        *(target.client.put(target.bucket, f"get/{i}", body, len(body)) for i in range(GET_KEYS))
    )


async def load(target: Target, op: str, body: bytes, seconds: float) -> LoadResult:
    client, bucket = target.client, target.bucket

    async def put(n: int) -> int:
        await client.put(bucket, f"put/{n % PUT_KEYS}", body, len(body))
        return len(body)

    async def get(n: int) -> int:
        return await client.get(bucket, f"get/{n % GET_KEYS}")

    operation = put if op == "PUT" else get
    return await run_load(target.label, operation, concurrency=CONCURRENCY, duration_s=seconds)


def report(op: str, results: list[LoadResult]) -> None:
    print(f"  {op} {OBJECT_BYTES // MIB} MiB x{CONCURRENCY}:")
    for r in results:
        p50 = percentile(r.latencies_s, 0.5) * 1000
        p95 = percentile(r.latencies_s, 0.95) * 1000
        print(
            f"    {r.label:8} {r.mib_per_s:8.1f} MiB/s {r.ops_per_s:8.1f} ops/s"
            f"   p50 {p50:6.1f} ms  p95 {p95:6.1f} ms"
        )
    totals: dict[str, list[float]] = {}
    for r in results:
        totals.setdefault(r.label, []).append(r.mib_per_s)
    gateway, direct = (sum(totals[k]) / len(totals[k]) for k in ("gateway", "direct"))
    print(
        f"    mean: gateway {gateway:.1f} MiB/s, direct {direct:.1f} MiB/s"
        f" -> gateway at {100 * gateway / direct:.0f}% of direct"
    )


async def run(stack: Stack, direct_endpoint: str, seconds: float) -> None:
    body = bytes(range(256)) * (OBJECT_BYTES // 256)
    async with (
        LeanS3Client(stack.gateway.endpoint, stack.credentials) as via_gateway,
        LeanS3Client(direct_endpoint, _direct_credentials(stack)) as direct,
    ):
        await via_gateway.create_bucket("bench")
        direct_bucket = stack.backend.get("bucket", "bench")
        if stack.backend["driver"] == "localfs":
            await direct.create_bucket(direct_bucket)
        targets = [Target("gateway", via_gateway, "bench"), Target("direct", direct, direct_bucket)]
        for target in targets:
            await prepare(target, body)
        for op in ("PUT", "GET"):
            results = []
            for _ in range(ROUNDS):
                for target in targets:
                    results.append(await load(target, op, body, seconds))
            report(op, results)


def _direct_credentials(stack: Stack) -> Credentials:
    if stack.backend["driver"] == "localfs":
        return stack.credentials  # the file server ignores signatures
    return stack.backend_credentials


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", action="append", choices=BACKEND_KINDS)
    parser.add_argument("--seconds", type=float, default=5.0, help="per run; 2 runs per target")
    args = parser.parse_args()
    for kind in args.backend or ["localfs", "seaweedfs"]:
        print(f"== throughput: backend {kind}, {ROUNDS} interleaved runs of {args.seconds:.0f} s")
        with gateway_stack(kind) as stack:
            if stack.backend["driver"] == "localfs":
                with file_server(stack) as endpoint:
                    asyncio.run(run(stack, endpoint, args.seconds))
            else:
                asyncio.run(run(stack, stack.backend["endpoint"], args.seconds))


if __name__ == "__main__":
    main()
