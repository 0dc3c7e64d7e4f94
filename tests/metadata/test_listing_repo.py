"""Listing against a reference model: every page of every prefix/delimiter combination."""

from __future__ import annotations

import random

import asyncpg
import pytest

from gateway.services.listing import ListingService, ListObjectsInput
from metadata.buckets import BucketRepo
from metadata.listing import ListingRepo, common_prefix
from metadata.models import BucketRow, CompletedVersion, NewVersion
from metadata.objects import ObjectRepo

ALPHABET = ["a", "b", "/", "é", "~", "Z", "-", "😀"]


def _random_keys(rng: random.Random, count: int) -> list[str]:
    keys: set[str] = set()
    while len(keys) < count:
        keys.add("".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 6))))
    return sorted(keys)


def reference(keys: list[str], prefix: str, delimiter: str) -> list[str]:
    """What S3 lists: keys, or their common prefix once, in UTF-8 byte order."""
    entries: list[str] = []
    for key in sorted(k for k in keys if k.startswith(prefix)):
        cp = common_prefix(key, prefix, delimiter)
        entry = cp if cp is not None else key
        if not entries or entries[-1] != entry:
            entries.append(entry)
    return entries


async def _write(objects: ObjectRepo, bucket: BucketRow, key: str, n: int) -> None:
    pk = await objects.begin_write(
        NewVersion(bucket.id, key, f"v{bucket.id}x{n}", True, None, {}, {}, {}, "STANDARD",
                   ("local",), f"b{bucket.id}/o/{n}")
    )  # fmt: skip
    await objects.commit_write(bucket.id, pk, CompletedVersion(1, "e", None, None, None))


@pytest.fixture(scope="module")
async def populated(pool: asyncpg.Pool) -> tuple[BucketRow, list[str]]:
    bucket = await BucketRepo(pool).create("listing-model", "AK", "us-east-1", "local")
    assert bucket is not None
    objects = ObjectRepo(pool, deletion_delay_s=0)
    keys = _random_keys(random.Random(7), 300)
    for n, key in enumerate(keys):
        await _write(objects, bucket, key, n)
    # Deleted keys must vanish from listings without leaving holes in pagination.
    for key in keys[::7]:
        await objects.delete_current(bucket.id, key, "Unversioned", "unused")
    return bucket, [k for i, k in enumerate(keys) if i % 7 != 0]


async def _all_pages(service: ListingService, bucket: BucketRow, prefix: str, delimiter: str,
                     page: int) -> list[str]:  # fmt: skip
    seen: list[str] = []
    token = None
    for _ in range(10_000):
        result = await service.list_objects(
            bucket, ListObjectsInput(prefix=prefix, delimiter=delimiter, max_keys=page,
                                     continuation_token=token)
        )  # fmt: skip
        assert len(result.entries) <= page
        seen.extend(e.key for e in result.entries)
        if not result.is_truncated:
            return seen
        token = result.next_token
    raise AssertionError("pagination did not end")


@pytest.mark.parametrize("delimiter", ["", "/", "a", "é"])
@pytest.mark.parametrize("prefix", ["", "a", "a/", "é", "zz"])
@pytest.mark.parametrize("page", [1, 3, 1000])
async def test_pages_match_the_reference(
    populated: tuple[BucketRow, list[str]], pool: asyncpg.Pool, prefix: str, delimiter: str,
    page: int,
) -> None:  # fmt: skip
    bucket, keys = populated
    service = ListingService(ListingRepo(pool))
    assert await _all_pages(service, bucket, prefix, delimiter, page) == reference(
        keys, prefix, delimiter
    )


async def test_start_after_skips_exactly(
    populated: tuple[BucketRow, list[str]], pool: asyncpg.Pool
) -> None:
    bucket, keys = populated
    service = ListingService(ListingRepo(pool))
    for after in [keys[0], keys[50], "b/", "a"]:
        result = await service.list_objects(bucket, ListObjectsInput(after=after, max_keys=1000))
        assert [e.key for e in result.entries] == [k for k in keys if k > after]


@pytest.mark.parametrize("session_zone", ["UTC", "Pacific/Chatham"])
async def test_last_modified_is_utc_truncated_to_the_second(
    pool: asyncpg.Pool, session_zone: str
) -> None:
    """A listing's LastModified must equal HEAD's Last-Modified: UTC, whole seconds cut off
    (not rounded), whatever the session's time zone."""
    bucket = await BucketRepo(pool).create(f"listing-time-{session_zone.lower()[:3]}", "AK",
                                           "us-east-1", "local")  # fmt: skip
    assert bucket is not None
    await _write(ObjectRepo(pool, deletion_delay_s=0), bucket, "k", 0)
    await _write(ObjectRepo(pool, deletion_delay_s=0), bucket, "d/k", 1)
    await pool.execute(
        "UPDATE object_versions SET created_at = '2026-02-28 23:59:59.999+00' WHERE bucket_id = $1",
        bucket.id,
    )
    async with pool.acquire() as conn:
        await conn.execute(f"SET TIME ZONE '{session_zone}'")
        try:
            repo = ListingRepo(conn)  # type: ignore[arg-type]
            plain = await repo.list_current(bucket.id, "", "", "", 10)
            delimited = await repo.list_current(bucket.id, "", "", "/", 10)
        finally:
            await conn.execute("RESET TIME ZONE")
    assert [e.version.last_modified for e in plain if e.version] == ["2026-02-28T23:59:59.000Z"] * 2
    assert [e.version.last_modified for e in delimited if e.version] == ["2026-02-28T23:59:59.000Z"]
