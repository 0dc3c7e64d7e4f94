"""Issue #9: Skybridge beside direct backends, a peer gateway and a ceiling, in one run.

Contenders (benchmarks/contenders.py): ``ceiling`` (an aiohttp+uvloop server that sinks
PUTs and serves a fixed body), ``disk`` (benchmarks/fileserver.py over the local
directory), ``seaweedfs`` (its S3 API), ``rclone`` (``rclone serve s3`` over the same
directory), and Skybridge with 1 and 2 worker processes: ``sb1``/``sb2`` on the localfs
backend in that directory, ``-sw`` on SeaweedFS, ``-sse`` with default SSE-S3 and
``-2sync`` with two synchronous replicas (localfs and SeaweedFS).

Every cell (operation, object size, concurrency) runs each of its contenders in turn, and
the whole turn is repeated ``--runs`` times, so every figure has baselines measured minutes
apart at most; ratios are of medians. Output: a table, a JSON file and a PNG.

    python -m benchmarks.peers [--quick] [--runs 3] [WORKLOAD ...]

Workloads: matrix, targets, mixed, sse, replicas, multipart, listing, rss (see --help).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass

import aiohttp

from benchmarks import peer_extras, peers_report
from benchmarks.client import (
    MIB,
    LeanS3Client,
    LoadResult,
    S3Error,
    percentile,
    run_load,
)
from benchmarks.contenders import Contender, Field, field_of_contenders
from benchmarks.harness import tree_cpu_s
from benchmarks.rss import RssSampler

KIB = 1024
GIB = 1024 * MIB
CORE = ["ceiling", "disk", "seaweedfs", "rclone", "sb1", "sb2", "sb1-sw", "sb2-sw"]


@dataclass(frozen=True, slots=True)
class Cell:
    op: str  # PUT, GET or MIXED (80 % GET, 20 % PUT)
    size: int
    concurrency: int
    contenders: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Measurement:
    workload: str
    op: str
    size: int
    concurrency: int
    contender: str
    run: int
    ops_per_s: float
    mib_per_s: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    ttfb_p50_ms: float
    cpu_s_per_gib: float
    peak_rss_mib: float
    errors: int


def _cells(ops: list[str], sizes: list[int], levels: list[int], names: list[str]) -> list[Cell]:
    return [Cell(op, size, c, tuple(names)) for size in sizes for op in ops for c in levels]


def workload_cells(name: str, quick: bool) -> list[Cell]:
    sizes = [4 * KIB, MIB, 64 * MIB]
    both = ["PUT", "GET"]
    if name == "matrix":
        cells = _cells(both, sizes, [1, 16, 64], CORE)
        # 64 concurrent 64 MiB PUTs keep 4 GiB in flight per contender: full mode only.
        return [c for c in cells if not (quick and c.size >= 64 * MIB and c.concurrency > 16)]
    if name == "targets":
        return [
            *_cells(both, [4 * KIB], [16, 64], CORE),
            *_cells(both, [MIB], [16], CORE),
            *_cells(both, [64 * MIB], [4], CORE),
        ]
    if name == "mixed":
        return _cells(["MIXED"], [4 * KIB, MIB], [16], CORE)
    if name == "sse":
        return _cells(both, [MIB, 64 * MIB], [4], ["disk", "sb1", "sb1-sse", "sb2-sse"])
    if name == "replicas":
        return _cells(["PUT"], [MIB, 64 * MIB], [4], ["disk", "seaweedfs", "sb1", "sb1-2sync"])
    raise ValueError(name)


def _only(cells: list[Cell], args: argparse.Namespace) -> list[Cell]:
    """The cells whose object size (KiB) is in ``--size-kib``, if given."""
    if not args.size_kib:
        return cells
    return [c for c in cells if c.size // KIB in args.size_kib]


async def _prepare(client: LeanS3Client, bucket: str, size: int, keys: int) -> None:
    """Write the objects a cell reads, a few at a time, each tried up to 3 times: rclone
    answers 500 now and then to concurrent PUTs under one new directory."""
    body = bytes(range(256)) * (size // 256) if size >= 256 else b"x" * size
    gate = asyncio.Semaphore(8)

    async def put(key: str) -> None:
        async with gate:
            for attempt in range(3):
                try:
                    await client.put(bucket, key, body, size)
                    return
                except S3Error:
                    if attempt == 2:
                        raise

    await asyncio.gather(*(put(f"get/{size}/{i}") for i in range(keys)))


def _operation(
    client: LeanS3Client, bucket: str, cell: Cell, result: LoadResult
) -> Callable[[int], Awaitable[int]]:
    size, keys = cell.size, _keys(cell)
    body = bytes(range(256)) * (size // 256) if size >= 256 else b"x" * size

    async def put(n: int) -> int:
        began = time.perf_counter()
        await client.put(bucket, f"put/{size}/{n % keys}", body, size)
        result.ttfb_s.append(time.perf_counter() - began)
        return size

    async def get(n: int) -> int:
        return await client.get(bucket, f"get/{size}/{n % keys}", result.ttfb_s)

    async def operation(n: int) -> int:
        try:
            if cell.op == "PUT" or (cell.op == "MIXED" and n % 5 == 4):
                return await put(n)
            return await get(n)
        except (S3Error, aiohttp.ClientError) as exc:
            result.errors += 1
            if result.errors == 1:
                print(f"    {result.label} {cell.op} error: {exc}")
            return 0

    return operation


def _keys(cell: Cell) -> int:
    """Distinct keys a cell reads or overwrites: bounded disk use for large objects."""
    return max(1, min(cell.concurrency, 8)) if cell.size >= 64 * MIB else 64


async def measure(
    workload: str, cell: Cell, contender: Contender, run: int, seconds: float
) -> Measurement:
    async with LeanS3Client(
        contender.endpoint, contender.credentials, connections=cell.concurrency
    ) as client:
        result = LoadResult(contender.name)
        operation = _operation(client, contender.bucket, cell, result)
        cpu_before = tree_cpu_s(contender.pid)
        with RssSampler(contender.pid) as sampler:
            loaded = await run_load(
                contender.name,
                operation,
                concurrency=cell.concurrency,
                duration_s=seconds,
                result=result,
            )
        cpu = tree_cpu_s(contender.pid) - cpu_before
    gib = loaded.bytes / GIB
    lat = loaded.latencies_s
    return Measurement(
        workload,
        cell.op,
        cell.size,
        cell.concurrency,
        contender.name,
        run,
        loaded.ops_per_s,
        loaded.mib_per_s,
        percentile(lat, 0.5) * 1000,
        percentile(lat, 0.99) * 1000,
        percentile(lat, 0.999) * 1000,
        percentile(result.ttfb_s, 0.5) * 1000,
        cpu / gib if gib else float("nan"),
        sampler.peak_mib,
        loaded.errors,
    )


async def run_cells(
    workload: str, cells: list[Cell], field: Field, runs: int, seconds: float
) -> list[Measurement]:
    out: list[Measurement] = []
    for cell in cells:
        contenders = field.pick(list(cell.contenders))
        if cell.op in ("GET", "MIXED"):
            for contender in contenders:
                async with LeanS3Client(contender.endpoint, contender.credentials) as client:
                    await _prepare(client, contender.bucket, cell.size, _keys(cell))
        for run in range(runs):
            for contender in contenders:
                out.append(await measure(workload, cell, contender, run, seconds))
        peers_report.print_cell(out[-runs * len(contenders) :])
    return out


def medians(rows: list[Measurement]) -> list[Measurement]:
    """One row per (workload, cell, contender): the median of each figure over the runs."""
    groups: dict[tuple[str, str, int, int, str], list[Measurement]] = {}
    for row in rows:
        groups.setdefault((row.workload, row.op, row.size, row.concurrency, row.contender), [])
        groups[(row.workload, row.op, row.size, row.concurrency, row.contender)].append(row)
    out = []
    for (workload, op, size, concurrency, contender), group in groups.items():
        figures = {
            name: statistics.median(getattr(r, name) for r in group)
            for name in Measurement.__dataclass_fields__
            if name not in ("workload", "op", "size", "concurrency", "contender", "run")
        }
        figures["errors"] = sum(r.errors for r in group)
        out.append(Measurement(workload, op, size, concurrency, contender, -1, **figures))
    return out


def _as_dicts(rows: list[Measurement]) -> list[dict[str, object]]:
    return [asdict(r) for r in rows]


WORKLOADS = ("matrix", "targets", "mixed", "sse", "replicas", "multipart", "listing", "rss")
CELL_WORKLOADS = ("matrix", "targets", "mixed", "sse", "replicas")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("workloads", nargs="*", choices=[*WORKLOADS, []], default=[])
    parser.add_argument("--quick", action="store_true", help="short cells, 1 run, no 64x64 MiB")
    parser.add_argument("--runs", type=int, default=None, help="interleaved runs (default 3)")
    parser.add_argument("--seconds", type=float, default=None, help="per cell and contender")
    parser.add_argument("--size-kib", type=int, action="append", help="only these sizes")
    args = parser.parse_args()
    runs = args.runs or (1 if args.quick else 3)
    seconds = args.seconds or (1.5 if args.quick else 4.0)
    names = args.workloads or ["matrix", "mixed", "sse", "replicas"]
    rows: list[Measurement] = []
    extra: dict[str, object] = {}
    began = time.time()
    with field_of_contenders() as field:
        for name in names:
            print(f"== {name}: {runs} interleaved run(s) of {seconds:.1f} s per contender")
            if name in CELL_WORKLOADS:
                rows += asyncio.run(
                    run_cells(
                        name, _only(workload_cells(name, args.quick), args), field, runs, seconds
                    )  # fmt: skip
                )
            else:
                extra[name] = peer_extras.run(name, field, args.quick)
    summary = medians(rows)
    peers_report.print_ratios(summary)
    peers_report.write(began, vars(args), _as_dicts(rows), _as_dicts(summary), extra)


if __name__ == "__main__":
    main()
