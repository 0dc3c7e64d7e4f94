"""Issue #4, acceptance 6: encrypted PUT and GET throughput against unencrypted, in the
same run, through the same gateway: 1 MiB objects at concurrency 16 and 64 MiB objects at
concurrency 4, into a bucket with default encryption (SSE-S3) and into a clear one, runs
interleaved (clear, sealed, clear, sealed) because this machine's speed drifts.

    python -m benchmarks.encryption [--backend localfs|seaweedfs] [--seconds 8]
"""

from __future__ import annotations

import argparse
import asyncio

from benchmarks.client import MIB, LeanS3Client, LoadResult, object_url, run_load
from benchmarks.harness import BACKEND_KINDS, gateway_stack

ROUNDS = 2
SIZES = {MIB: 16, 64 * MIB: 4}
PUT_KEYS = 32
DEFAULT_SSE = (
    b'<ServerSideEncryptionConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    b"<Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm>"
    b"</ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>"
)


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


async def run(endpoint: str, client: LeanS3Client, seconds: float) -> None:
    await client.create_bucket("clear")
    await client.create_bucket("sealed")
    await client.request(
        "PUT", object_url(endpoint, "sealed", query="encryption"), data=DEFAULT_SSE,
        headers={"content-length": str(len(DEFAULT_SSE))},
    )  # fmt: skip
    for size, concurrency in SIZES.items():
        body = bytes(range(256)) * (size // 256)
        for bucket in ("clear", "sealed"):
            await asyncio.gather(
                *(client.put(bucket, f"get/{i}", body, size) for i in range(concurrency))
            )
        for op in ("PUT", "GET"):
            rates: dict[str, list[float]] = {"clear": [], "sealed": []}
            for _ in range(ROUNDS):
                for bucket in ("clear", "sealed"):
                    result = await _load(client, bucket, op, body, concurrency, seconds)
                    rates[bucket].append(result.mib_per_s)
            clear = sum(rates["clear"]) / ROUNDS
            sealed = sum(rates["sealed"]) / ROUNDS
            print(
                f"  {op} {size // MIB:>2} MiB x{concurrency:<2}: clear {clear:7.1f} MiB/s,"
                f" SSE-S3 {sealed:7.1f} MiB/s -> encrypted at {100 * sealed / clear:.0f}%"
                f"   (runs: clear {', '.join(f'{r:.0f}' for r in rates['clear'])};"
                f" sealed {', '.join(f'{r:.0f}' for r in rates['sealed'])})"
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", action="append", choices=BACKEND_KINDS)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    for kind in args.backend or ["localfs"]:
        print(f"== encryption: backend {kind}, {ROUNDS} interleaved runs of {args.seconds:.0f} s")
        with gateway_stack(kind) as stack:

            async def go() -> None:
                async with LeanS3Client(stack.gateway.endpoint, stack.credentials) as client:
                    await run(stack.gateway.endpoint, client, args.seconds)

            asyncio.run(go())


if __name__ == "__main__":
    main()
