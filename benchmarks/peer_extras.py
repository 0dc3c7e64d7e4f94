"""The peer benchmark's workloads that are not a grid of cells: a 1 GiB multipart upload,
a full ListObjectsV2 listing of 1M keys, and peak RSS under 64 concurrent large uploads."""

from __future__ import annotations

import asyncio
import statistics
import time
from urllib.parse import quote

from benchmarks.client import MIB, LeanS3Client, generated_body
from benchmarks.contenders import Contender, Field
from benchmarks.harness import tree_rss_bytes
from benchmarks.listing import load
from benchmarks.rss import RssSampler
from metadata import db
from metadata.listing import ListingRepo

MULTIPART_CONTENDERS = ["seaweedfs", "rclone", "sb1", "sb1-sw", "sb2"]
PART_BYTES = 64 * MIB
PARTS_IN_FLIGHT = 4
LISTING_BUCKET = "listing"
LISTING_TARGET_S = 10.0
RSS_UPLOADS = 64
RSS_TARGET_MIB = 300.0


def run(name: str, field: Field, quick: bool) -> dict[str, object]:
    if name == "multipart":
        return asyncio.run(multipart(field, 256 * MIB if quick else 1024 * MIB))
    if name == "listing":
        return asyncio.run(listing(field, 100 if quick else 1000))
    if name == "rss":
        return asyncio.run(rss(field, 32 * MIB if quick else 256 * MIB))
    raise ValueError(name)


async def _multipart_once(contender: Contender, size: int) -> float:
    part = bytes(range(256)) * (PART_BYTES // 256)
    async with LeanS3Client(contender.endpoint, contender.credentials) as client:
        began = time.perf_counter()
        upload = await client.create_multipart_upload(contender.bucket, "multipart")
        gate = asyncio.Semaphore(PARTS_IN_FLIGHT)

        async def send(number: int) -> str:
            async with gate:
                return await client.upload_part(contender.bucket, "multipart", upload, number, part)

        etags = await asyncio.gather(*(send(n) for n in range(1, size // PART_BYTES + 1)))
        await client.complete_multipart_upload(contender.bucket, "multipart", upload, etags)
        return time.perf_counter() - began


async def multipart(field: Field, size: int) -> dict[str, object]:
    """Upload ``size`` bytes in 64 MiB parts, 4 in flight, to each contender in turn, twice."""
    figures: dict[str, list[float]] = {}
    for _ in range(2):
        for contender in field.pick(MULTIPART_CONTENDERS):
            elapsed = await _multipart_once(contender, size)
            figures.setdefault(contender.name, []).append(size / MIB / elapsed)
    print(f"  multipart upload of {size // MIB} MiB, {PART_BYTES // MIB} MiB parts x4:")
    for name, rates in figures.items():
        runs = ", ".join(f"{r:.0f}" for r in rates)
        print(f"    {name:10} {statistics.median(rates):8.1f} MiB/s (median of {runs})")
    return {"size": size, "mib_per_s": figures}


async def _full_listing(client: LeanS3Client) -> int:
    keys, token = 0, ""
    while True:
        query = "list-type=2&max-keys=1000"
        if token:
            query += f"&continuation-token={quote(token, safe='')}"
        body = await client.list_objects_v2(LISTING_BUCKET, query)
        keys += body.count(b"<Key>")
        if b"<IsTruncated>true</IsTruncated>" not in body:
            return keys
        start = body.index(b"<NextContinuationToken>") + len(b"<NextContinuationToken>")
        token = body[start : body.index(b"</NextContinuationToken>")].decode()


async def _sql_listing(repo: ListingRepo, bucket_id: int) -> int:
    keys, lower = 0, ""
    while True:
        entries = await repo.list_current(bucket_id, "", lower, "", 1001)
        keys += min(len(entries), 1000)
        if len(entries) <= 1000:
            return keys
        lower = entries[1000].key


async def listing(field: Field, dirs: int) -> dict[str, object]:
    """ListObjectsV2 over ``dirs`` x 1000 keys, every page, through sb1; SQL alone beside it."""
    gateway = field.contenders["sb1"]
    async with LeanS3Client(gateway.endpoint, gateway.credentials) as client:
        await client.create_bucket(LISTING_BUCKET)
        pool = await db.create_pool(field.postgres_dsn)
        try:
            bucket_id: int = await pool.fetchval(
                "SELECT id FROM buckets WHERE name = $1", LISTING_BUCKET
            )
            await load(field.postgres_dsn, bucket_id, "local", dirs, 1000)
            began = time.perf_counter()
            sql_keys = await _sql_listing(ListingRepo(pool), bucket_id)
            sql_s = time.perf_counter() - began
            began = time.perf_counter()
            http_keys = await _full_listing(client)
            http_s = time.perf_counter() - began
        finally:
            await pool.close()
    verdict = "OK" if http_s <= LISTING_TARGET_S and http_keys == dirs * 1000 else "MISSED"
    print(
        f"  full listing of {http_keys:,} keys through sb1: {http_s:.1f} s"
        f" (SQL alone {sql_keys:,} keys in {sql_s:.1f} s)"
        f"  [target <= {LISTING_TARGET_S:.0f} s for 1M: {verdict}]"
    )
    return {"keys": http_keys, "gateway_s": http_s, "sql_s": sql_s}


async def rss(field: Field, size: int) -> dict[str, object]:
    """Peak RSS of each Skybridge (1 and 2 workers) under 64 concurrent ``size`` uploads."""
    out: dict[str, object] = {}
    for contender in field.pick(["sb1", "sb2"]):
        idle = tree_rss_bytes(contender.pid) / MIB
        async with LeanS3Client(contender.endpoint, contender.credentials) as client:
            began = time.perf_counter()
            with RssSampler(contender.pid, pss=True) as sampler:
                await asyncio.gather(
                    *(
                        client.put(contender.bucket, f"rss/{i}", generated_body(size), size)
                        for i in range(RSS_UPLOADS)
                    )
                )
            elapsed = time.perf_counter() - began
        rss_ok, pss_ok = (
            peak < RSS_TARGET_MIB for peak in (sampler.peak_mib, sampler.peak_pss_mib)
        )
        # Forked workers share most of their pages with the supervisor: the sum of the
        # tree's RSS counts those pages once per process, its PSS once in all.
        print(
            f"  {contender.name}: {RSS_UPLOADS} x {size // MIB} MiB PUT in {elapsed:.1f} s,"
            f" peak RSS (tree sum) {sampler.peak_mib:.0f} MiB"
            f" [{'OK' if rss_ok else 'MISSED'}], peak PSS {sampler.peak_pss_mib:.0f} MiB"
            f" [{'OK' if pss_ok else 'MISSED'}] (idle RSS {idle:.0f} MiB;"
            f" target < {RSS_TARGET_MIB:.0f} MiB)"
        )
        out[contender.name] = {"idle_mib": idle, "peak_mib": sampler.peak_mib,
                               "peak_pss_mib": sampler.peak_pss_mib, "s": elapsed}  # fmt: skip
    return out
