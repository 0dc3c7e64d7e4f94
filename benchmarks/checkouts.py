"""Two checkouts of Skybridge side by side: the same workload against a gateway running
this checkout's code and one running another's (a commit before a change, say), on one
database and one localfs backend, runs interleaved (this, other, other, this, ...) because
this machine's speed drifts by tens of percent within minutes. Prints each run's ops/s and
the gateway's CPU time per operation, and the ratio of each pair of runs: a change is worth
keeping when the pairs agree, not when one median moves.

    git worktree add /tmp/before HEAD~1
    python -m benchmarks.checkouts --other /tmp/before --op GET --size-kib 4 --concurrency 16

Each gateway runs from its checkout's directory: ``python -m`` puts the working directory
first on ``sys.path``, so a gateway started from this checkout imports this checkout's
``gateway`` package whatever ``PYTHONPATH`` says (measured: "comparisons" that set only
``PYTHONPATH`` ran the same code twice, with medians of 0.94-0.99x and single pairs of
0.68-1.14x between identical gateways).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
from dataclasses import dataclass
from pathlib import Path

from benchmarks.client import KIB, MIB, Credentials, LeanS3Client, run_load
from benchmarks.encryption import enable_default_sse
from benchmarks.harness import gateway_config, gateway_pid, scratch, tree_cpu_s
from tests.gateway_process import REPO, GatewayProcess

PUT_KEYS = 32


@dataclass(frozen=True, slots=True)
class Workload:
    op: str
    size: int
    concurrency: int
    seconds: float
    sse: bool


@dataclass(frozen=True, slots=True)
class Run:
    ops_per_s: float
    mib_per_s: float
    cpu_ms_per_op: float


class Contender:
    """One gateway, its client and its bucket."""

    def __init__(self, name: str, gateway: GatewayProcess, workload: Workload) -> None:
        self.name = name
        self.gateway = gateway
        self.workload = workload
        self.bucket = f"bench-{name}"
        self.client = LeanS3Client(
            gateway.endpoint, Credentials(gateway.access_key, gateway.secret_key)
        )
        self.body = bytes(range(256)) * (workload.size // 256) + bytes(workload.size % 256)

    async def prepare(self) -> None:
        await self.client.create_bucket(self.bucket)
        if self.workload.sse:
            await enable_default_sse(self.client, self.bucket)
        for n in range(self.workload.concurrency):
            await self.client.put(self.bucket, f"get/{n}", self.body, len(self.body))

    async def run(self) -> Run:
        workload, client, bucket, size = self.workload, self.client, self.bucket, len(self.body)

        async def put(n: int) -> int:
            await client.put(bucket, f"put/{n % PUT_KEYS}", self.body, size)
            return size

        async def get(n: int) -> int:
            return await client.get(bucket, f"get/{n % workload.concurrency}")

        pid = gateway_pid(self.gateway)
        cpu_before = tree_cpu_s(pid)
        result = await run_load(
            self.name, put if workload.op == "PUT" else get,
            concurrency=workload.concurrency, duration_s=workload.seconds,
        )  # fmt: skip
        cpu_ms = 1000 * (tree_cpu_s(pid) - cpu_before)
        return Run(result.ops_per_s, result.mib_per_s, cpu_ms / max(result.ops, 1))


async def _compare(contenders: list[Contender], rounds: int) -> dict[str, list[Run]]:
    runs: dict[str, list[Run]] = {c.name: [] for c in contenders}
    async with contextlib.AsyncExitStack() as stack:
        for contender in contenders:
            await stack.enter_async_context(contender.client)
            await contender.prepare()
        for round_ in range(rounds):
            # ABBA order: neither checkout always runs on the warmer machine.
            for contender in contenders if round_ % 2 == 0 else contenders[::-1]:
                runs[contender.name].append(await contender.run())
    return runs


def _report(workload: Workload, runs: dict[str, list[Run]]) -> None:
    size = f"{workload.size // KIB} KiB" if workload.size < MIB else f"{workload.size // MIB} MiB"
    sse = ", SSE-S3" if workload.sse else ""
    print(f"== {workload.op} {size} x{workload.concurrency}{sse}, {workload.seconds:.0f} s runs")
    for name, series in runs.items():
        rates = " ".join(f"{r.ops_per_s:.0f}" for r in series)
        ops = statistics.median(r.ops_per_s for r in series)
        mib = statistics.median(r.mib_per_s for r in series)
        cpu = statistics.median(r.cpu_ms_per_op for r in series)
        print(
            f"  {name:>5}: ops/s {rates} | median {ops:.0f} ops/s, {mib:.1f} MiB/s,"
            f" gateway CPU {cpu:.3f} ms/op"
        )
    this, other = runs["this"], runs["other"]
    pairs = [a.ops_per_s / b.ops_per_s for a, b in zip(this, other, strict=True)]
    listed = " ".join(f"{p:.2f}" for p in pairs)
    print(f"  this/other per pair: {listed} | median {statistics.median(pairs):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--other", type=Path, required=True, help="the other checkout")
    parser.add_argument("--op", choices=("GET", "PUT"), default="GET")
    parser.add_argument("--size-kib", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--sse", action="store_true", help="into a bucket with SSE-S3 default")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    workload = Workload(args.op, args.size_kib * KIB, args.concurrency, args.seconds, args.sse)
    with contextlib.ExitStack() as stack:
        workdir, dsn = scratch(stack)
        backend = {"name": "localfs", "driver": "localfs", "path": str(workdir / "localfs")}
        config = gateway_config(backend, args.workers)
        contenders = []
        for name, root in (("this", REPO), ("other", args.other.resolve())):
            gateway = GatewayProcess(workdir / name, dsn, config, code_root=root)
            gateway.start()
            stack.callback(gateway.stop)
            contenders.append(Contender(name, gateway, workload))
        _report(workload, asyncio.run(_compare(contenders, args.rounds)))


if __name__ == "__main__":
    main()
