"""A tenant's hard quota is the sum of its buckets' counters, and stays exact when writers to
different buckets of the tenant race for its last bytes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest

from metadata import db
from metadata.buckets import BucketRepo
from metadata.models import NewVersion
from metadata.objects import ObjectRepo
from metadata.usage import Quota, QuotaExceededError, UsageRepo
from tests.metadata.conftest import MIGRATIONS

LIMIT_BYTES = 1000
WRITE_BYTES = 100
WRITERS = 40


@pytest.fixture
async def wide_pool(new_database: Callable[[], str]) -> AsyncIterator[asyncpg.Pool]:
    dsn = new_database()
    await db.migrate(dsn, MIGRATIONS)
    pool = await db.create_pool(dsn, min_size=WRITERS // 2, max_size=WRITERS // 2)
    yield pool
    await pool.close()


async def _begin(objects: ObjectRepo, bucket_id: int, n: int) -> bool:
    new = NewVersion(bucket_id, f"k{n}", f"v{n}", False, None, {}, {}, {}, "STANDARD",
                     ("local",), f"b{bucket_id}/o/{n}")  # fmt: skip
    try:
        await objects.begin_write(new, reserve_bytes=WRITE_BYTES)
    except QuotaExceededError:
        return False
    return True


async def test_racing_writers_to_two_buckets_fill_the_tenant_quota_exactly(
    wide_pool: asyncpg.Pool,
) -> None:
    buckets = BucketRepo(wide_pool)
    ids = []
    for name in ("quota-a", "quota-b"):
        row = await buckets.create(name, "AK", "us-east-1", "local", tenant="acme")
        assert row is not None
        ids.append(row.id)
    usage = UsageRepo(wide_pool)
    await usage.set_quota(Quota("tenant", "acme", LIMIT_BYTES, None, True))
    objects = ObjectRepo(wide_pool)
    fitted = await asyncio.gather(*(_begin(objects, ids[n % 2], n) for n in range(WRITERS)))
    assert sum(fitted) == LIMIT_BYTES // WRITE_BYTES
    tenant = [u for u in await usage.usage() if u.scope == "tenant"]
    assert [(u.scope_id, u.reserved_bytes) for u in tenant] == [("acme", LIMIT_BYTES)]
    assert await usage.recompute() == []
