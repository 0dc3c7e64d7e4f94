"""fail_write after a commit that raised: it tells the writer whether the bytes it stored
are its own to remove. A commit whose answer was lost may have landed, and then they are
the object's (migrations/0018)."""

from __future__ import annotations

import asyncpg

from metadata.buckets import BucketRepo
from metadata.models import CompletedVersion, NewVersion
from metadata.objects import ObjectRepo

SIZE = 10


async def _pending(pool: asyncpg.Pool, objects: ObjectRepo, key: str) -> tuple[int, int]:
    bucket = await BucketRepo(pool).create(f"fail-{key}", "AK", "us-east-1", "local")
    assert bucket is not None
    new = NewVersion(bucket.id, key, f"v-{key}", False, None, {}, {}, {}, "STANDARD",
                     ("local",), f"b{bucket.id}/o/{key}")  # fmt: skip
    return bucket.id, await objects.begin_write(new, reserve_bytes=SIZE)


async def _state(pool: asyncpg.Pool, bucket_id: int, pk: int) -> tuple[str | None, list[str]]:
    state = await pool.fetchval(
        "SELECT state FROM object_versions WHERE bucket_id = $1 AND id = $2", bucket_id, pk
    )
    placements = await pool.fetch(
        "SELECT state FROM placements WHERE bucket_id = $1 AND version_pk = $2", bucket_id, pk
    )
    return state, [p["state"] for p in placements]


async def _reserved(pool: asyncpg.Pool, bucket_id: int) -> int:
    reserved = await pool.fetchval(
        "SELECT reserved_bytes FROM bucket_usage WHERE bucket_id = $1", bucket_id
    )
    return int(reserved or 0)


async def test_a_pending_version_is_ended_and_its_bytes_are_the_writers(
    pool: asyncpg.Pool,
) -> None:
    objects = ObjectRepo(pool)
    bucket_id, pk = await _pending(pool, objects, "pending")
    assert await _reserved(pool, bucket_id) == SIZE

    assert await objects.fail_write(bucket_id, pk) is True

    assert await _state(pool, bucket_id, pk) == ("failed", ["failed"])
    assert await _reserved(pool, bucket_id) == 0


async def test_a_committed_version_is_left_alone_and_its_bytes_are_the_objects(
    pool: asyncpg.Pool,
) -> None:
    objects = ObjectRepo(pool)
    bucket_id, pk = await _pending(pool, objects, "committed")
    done = CompletedVersion(SIZE, "0" * 32, None, None, None)
    assert await objects.commit_write(bucket_id, pk, done) is not None
    before = await _state(pool, bucket_id, pk)
    assert before[0] == "complete"

    assert await objects.fail_write(bucket_id, pk) is False

    assert await _state(pool, bucket_id, pk) == before
    assert (await objects.get(bucket_id, "committed", None)) is not None


async def test_a_version_gc_reaped_leaves_its_bytes_to_the_writer(pool: asyncpg.Pool) -> None:
    objects = ObjectRepo(pool)
    bucket_id, pk = await _pending(pool, objects, "reaped")
    await objects.reap_version(bucket_id, pk)
    assert await _state(pool, bucket_id, pk) == (None, [])

    assert await objects.fail_write(bucket_id, pk) is True
