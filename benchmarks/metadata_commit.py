"""The metadata of a PUT, without bytes: ``begin_write`` (reservation and pending version)
then ``commit_write`` (the commit transaction), concurrency 16, writes/s, straight against
the repositories on a fresh database.

Scenarios, interleaved on one PostgreSQL: no quota (the baseline), a hard quota on each
bucket, and a hard quota on their tenant (each reservation then sums the tenant's buckets
under the tenant's lock, docs/scaling.md §4). Writes alternate between two buckets of one
tenant; half of them replace a key, so commits also retire the version they supersede.

    python -m benchmarks.metadata_commit [--writes 2000] [--rounds 2] [--other PATH]

``--other`` runs the same workload on another checkout's ``metadata`` package and
migrations (main before a schema change, say) as a second baseline, interleaved.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import itertools
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ("none", "bucket", "tenant")
CONCURRENCY = 16
OBJECT_BYTES = 4096
UNLIMITED_BYTES = 1 << 50


async def _setup(pool: asyncpg.Pool, scenario: str) -> list[int]:
    from metadata.buckets import BucketRepo
    from metadata.usage import Quota, UsageRepo

    ids = []
    for n in range(2):
        row = await BucketRepo(pool).create(f"bench-{n}", "AK", "us-east-1", "local", tenant="t")
        assert row is not None
        ids.append(row.id)
    quotas = {
        "none": [],
        "bucket": [Quota("bucket", str(i), UNLIMITED_BYTES, None, True) for i in ids],
        "tenant": [Quota("tenant", "t", UNLIMITED_BYTES, None, True)],
    }[scenario]
    for quota in quotas:
        await UsageRepo(pool).set_quota(quota)
    return ids


async def _measure(root: Path, dsn: str, scenario: str, writes: int) -> float:
    """Writes per second of one scenario, with ``root``'s metadata package."""
    sys.path.insert(0, str(root))
    from metadata import db
    from metadata.models import CompletedVersion, NewVersion
    from metadata.objects import ObjectRepo

    await db.migrate(dsn, root / "migrations")
    pool = await db.create_pool(dsn, min_size=CONCURRENCY, max_size=CONCURRENCY)
    try:
        ids = await _setup(pool, scenario)
        objects = ObjectRepo(pool, deletion_delay_s=0)
        # Before migration 0010 a commit found its bucket from the version's id.
        by_bucket = "bucket_id" in inspect.signature(objects.commit_write).parameters
        numbers = itertools.count()

        async def one(n: int) -> None:
            bucket_id = ids[n % 2]
            new = NewVersion(bucket_id, f"k{n % (writes // 2)}", uuid.uuid4().hex, True, None,
                             {}, {}, {}, "STANDARD", ("local",), f"b{bucket_id}/o/{n}")  # fmt: skip
            pk = await objects.begin_write(new, reserve_bytes=OBJECT_BYTES)
            done = CompletedVersion(OBJECT_BYTES, "e", None, None, None)
            args = (bucket_id, pk, done) if by_bucket else (pk, done)
            await objects.commit_write(*args)

        async def writer() -> None:
            while (n := next(numbers)) < writes:
                await one(n)

        began = time.perf_counter()
        await asyncio.gather(*(writer() for _ in range(CONCURRENCY)))
        return writes / (time.perf_counter() - began)
    finally:
        await pool.close()


def _run_one(root: Path, admin_dsn: str, scenario: str, writes: int) -> float:
    """One measurement in a fresh process (so ``root``'s packages are the ones imported)
    on a fresh database."""
    from tests.conftest import run_sync
    from tests.servers import fresh_database

    dsn, drop = run_sync(lambda: fresh_database(admin_dsn))
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--worker", str(root), dsn, scenario, str(writes)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return float(json.loads(out)["writes_per_s"])
    finally:
        run_sync(drop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--other", type=Path, help="another checkout, as a second baseline")
    args = parser.parse_args()
    from tests.servers import PostgresServer

    roots = [ROOT] + ([args.other.resolve()] if args.other else [])
    results: dict[tuple[str, str], list[float]] = {}
    with PostgresServer(reuse_default=False) as postgres:
        for _ in range(args.rounds):
            for root in roots:
                for scenario in SCENARIOS:
                    rate = _run_one(root, postgres.dsn, scenario, args.writes)
                    results.setdefault((str(root), scenario), []).append(rate)
    _report(roots, results)


def _report(roots: list[Path], results: dict[tuple[str, str], list[float]]) -> None:
    base = {str(r): max(results[(str(r), "none")]) for r in roots}
    print(f"{'checkout':<28} {'quota':<8} {'writes/s (best)':>16} {'vs none':>8} {'vs first':>9}")
    for scenario in SCENARIOS:
        first = max(results[(str(roots[0]), scenario)])
        for root in roots:
            rate = max(results[(str(root), scenario)])
            print(f"{str(root)[-28:]:<28} {scenario:<8} {rate:>16.0f}"
                  f" {rate / base[str(root)]:>8.2f} {rate / first:>9.2f}")  # fmt: skip
    print(json.dumps({f"{r}:{s}": v for (r, s), v in results.items()}))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        root, dsn, scenario, writes = sys.argv[2:6]
        rate = asyncio.run(_measure(Path(root), dsn, scenario, int(writes)))
        print(json.dumps({"writes_per_s": rate}))
    else:
        sys.path.insert(0, str(ROOT))
        main()
