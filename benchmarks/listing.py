"""ListObjectsV2 latency on a bucket of 1,000,000 keys, beside the SQL alone.

Keys are ``dir{000..999}/file{000..999}``, loaded straight into PostgreSQL with COPY (the
gateway would take an hour to ingest them one PUT at a time). Then, through the gateway's
HTTP API: pages of 1,000 keys at several start positions, and a delimiter listing that
returns 1,000 common prefixes. The baseline is the repository call the gateway makes, timed
in this process against the same database.

    python -m benchmarks.listing [--dirs 1000] [--files 1000] [--requests 20]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from urllib.parse import quote

import asyncpg

from benchmarks.client import LeanS3Client, percentile
from benchmarks.harness import Stack, gateway_stack
from metadata import db
from metadata.listing import ListingRepo

BUCKET = "listing"
PAGE = 1000
TARGET_PAGE_MS = 50.0
TARGET_DELIMITER_MS = 100.0
COPY_BATCH = 100_000


def keys(dirs: int, files: int) -> Iterator[str]:
    for d in range(dirs):
        for f in range(files):
            yield f"dir{d:03d}/file{f:03d}"


async def load(dsn: str, bucket_id: int, backend: str, dirs: int, files: int) -> None:
    began = time.perf_counter()
    connection = await asyncpg.connect(dsn)
    try:
        first: int = await connection.fetchval(
            "SELECT coalesce(max(id), 0) + 1 FROM object_versions"
        )
        batch: list[tuple[int, str]] = []
        for n, key in enumerate(keys(dirs, files), start=first):
            batch.append((n, key))
            if len(batch) == COPY_BATCH:
                await _copy(connection, bucket_id, backend, batch)
                batch = []
        if batch:
            await _copy(connection, bucket_id, backend, batch)
        await connection.execute(
            "SELECT setval('object_versions_id_seq', (SELECT max(id) FROM object_versions))"
        )
        # A bucket that grew over months has been vacuumed; a freshly copied one has not:
        # without this, autovacuum and the first reads setting hint bits run during the
        # measurement, and successive full listings of the same keys differ by a third.
        for table in ("object_versions", "placements"):
            await connection.execute(f"VACUUM ANALYZE {table}")
    finally:
        await connection.close()
    print(f"  loaded {dirs * files:,} keys with COPY in {time.perf_counter() - began:.1f} s")


async def _copy(
    connection: asyncpg.Connection, bucket_id: int, backend: str, batch: list[tuple[int, str]]
) -> None:
    await connection.copy_records_to_table(
        "object_versions",
        columns=[
            "id",
            "bucket_id",
            "key",
            "version_id",
            "is_null_version",
            "state",
            "is_latest",
            "size_bytes",
            "etag",
        ],
        records=[
            (n, bucket_id, key, f"{n:032x}", True, "complete", True, 1024, "0" * 32)
            for n, key in batch
        ],
    )
    await connection.copy_records_to_table(
        "placements",
        columns=["bucket_id", "version_pk", "backend", "backend_key", "state", "size_bytes"],
        records=[(bucket_id, n, backend, f"b{bucket_id}/o/{n:032x}", "ok", 1024) for n, _ in batch],
    )


async def timed(samples: int, call: Callable[[int], Awaitable[int]], expect: int) -> list[float]:
    """Run ``call(i)`` ``samples`` times; each returns how many entries it got."""
    latencies = []
    for i in range(samples):
        began = time.perf_counter()
        got = await call(i)
        latencies.append(time.perf_counter() - began)
        assert got == expect, f"expected {expect} entries, got {got}"
    return latencies


def line(label: str, latencies: list[float], target_ms: float | None = None) -> None:
    p50, p95 = (percentile(latencies, q) * 1000 for q in (0.5, 0.95))
    verdict = ""
    if target_ms is not None:
        verdict = f"  [target < {target_ms:.0f} ms: {'OK' if p95 < target_ms else 'MISSED'}]"
    print(f"    {label:34} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms{verdict}")


async def run(stack: Stack, dirs: int, files: int, samples: int) -> None:
    async with LeanS3Client(stack.gateway.endpoint, stack.credentials) as client:
        await client.create_bucket(BUCKET)
        pool = await db.create_pool(stack.gateway.database_url)
        try:
            bucket_id: int = await pool.fetchval("SELECT id FROM buckets WHERE name = $1", BUCKET)
            await load(stack.gateway.database_url, bucket_id, stack.backend["name"], dirs, files)
            starts = _start_positions(dirs, files)
            repo = ListingRepo(pool)

            async def sql_page(i: int) -> int:
                lower = starts[i % len(starts)]
                entries = await repo.list_current(bucket_id, "", lower + "\x01", "", PAGE + 1)
                return min(len(entries), PAGE)

            async def http_page(i: int) -> int:
                after = quote(starts[i % len(starts)], safe="")
                query = f"list-type=2&max-keys={PAGE}&start-after={after}"
                return (await client.list_objects_v2(BUCKET, query)).count(b"<Key>")

            async def sql_delimited(i: int) -> int:
                return min(len(await repo.list_current(bucket_id, "", "", "/", PAGE + 1)), PAGE)

            async def http_delimited(i: int) -> int:
                query = f"list-type=2&max-keys={PAGE}&delimiter=%2F"
                return (await client.list_objects_v2(BUCKET, query)).count(b"<Prefix>dir")

            expect_prefixes = min(dirs, PAGE)
            # Warm caches (PostgreSQL buffers, the gateway's bucket lookup) before timing.
            await timed(3, http_page, PAGE)
            await timed(3, http_delimited, expect_prefixes)
            print(f"  ListObjectsV2 over {dirs * files:,} keys, {samples} requests each:")
            line("page of 1000 keys: SQL only", await timed(samples, sql_page, PAGE))
            line(
                "page of 1000 keys: via gateway",
                await timed(samples, http_page, PAGE),
                TARGET_PAGE_MS,
            )
            line(
                "1000 common prefixes: SQL only",
                await timed(samples, sql_delimited, expect_prefixes),
            )
            line(
                "1000 common prefixes: via gateway",
                await timed(samples, http_delimited, expect_prefixes),
                TARGET_DELIMITER_MS,
            )
        finally:
            await pool.close()


def _start_positions(dirs: int, files: int) -> list[str]:
    """Keys to start after, spread over the bucket, each with a full page after it."""
    total = dirs * files
    positions = [0, total // 4, total // 2, 3 * total // 4, total - PAGE - 1]
    return [f"dir{p // files:03d}/file{p % files:03d}" for p in positions]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dirs", type=int, default=1000)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    print(f"== listing: {args.dirs} x {args.files} keys in one bucket")
    with gateway_stack("localfs") as stack:
        asyncio.run(run(stack, args.dirs, args.files, args.requests))


if __name__ == "__main__":
    main()
