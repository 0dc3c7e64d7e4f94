"""Usage counters and quotas, changed only inside the transactions that change storage.

Invariants (checked by ``recompute``): for every bucket, ``bytes`` is the size of its
complete versions that are not delete markers plus the parts of its open uploads,
``objects`` the count of those versions, and ``reserved_*`` what writes in flight declared.

Only the bucket's row (``bucket_usage``, keyed by bucket_id) is written in a transaction, so
that it stays on the bucket's shard under Citus. A tenant's usage is the sum of its buckets'
rows; a write under a tenant's hard quota takes the tenant's lock after its bucket's row and
sums under it (``_tenant_usage``), so the lock order is always bucket row, then tenant lock.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg

from metadata.db import Conn


@dataclass(frozen=True, slots=True)
class Quota:
    scope: str
    scope_id: str
    max_bytes: int | None
    max_objects: int | None
    hard: bool


@dataclass(frozen=True, slots=True)
class Usage:
    scope: str
    scope_id: str
    bytes: int
    objects: int
    reserved_bytes: int
    reserved_objects: int


class QuotaExceededError(Exception):
    def __init__(self, quota: Quota, what: str, limit: int, used: int, requested: int) -> None:
        self.quota = quota
        self.what = what
        self.limit = limit
        self.used = used
        self.requested = requested
        super().__init__(
            f"{quota.scope} {quota.scope_id} {what} quota of {limit} exceeded:"
            f" {max(limit - used, 0)} of {limit} left, {requested} requested"
        )


async def reserve(con: Conn, bucket_id: int, n_bytes: int, n_objects: int) -> None:
    """Reserve room for a write against the bucket's and its tenant's hard quotas, or raise
    QuotaExceededError (the statement, or the caller's transaction, then rolls back,
    releasing the reservation with it). migrations/0015_commit_functions.sql."""
    async with quota_errors():
        await con.execute("SELECT reserve_usage($1, $2, $3)", bucket_id, n_bytes, n_objects)


_QUOTA_EXCEEDED = "skybridge: quota exceeded"


@contextlib.asynccontextmanager
async def quota_errors() -> AsyncIterator[None]:
    """Turn check_quota's error (a statement that reserved room, in SQL) into
    QuotaExceededError; every other error passes."""
    try:
        yield
    except asyncpg.RaiseError as error:
        if error.message != _QUOTA_EXCEEDED or error.detail is None:
            raise
        facts = json.loads(error.detail)
        limit = int(facts["limit"])
        what = str(facts["what"])
        quota = Quota(
            str(facts["scope"]),
            str(facts["scope_id"]),
            limit if what == "bytes" else None,
            limit if what == "objects" else None,
            True,
        )
        raise QuotaExceededError(
            quota, what, limit, int(facts["used"]), int(facts["requested"])
        ) from None


async def adjust(
    con: Conn,
    bucket_id: int,
    d_bytes: int = 0,
    d_objects: int = 0,
    d_reserved_bytes: int = 0,
    d_reserved_objects: int = 0,
) -> None:
    if not (d_bytes or d_objects or d_reserved_bytes or d_reserved_objects):
        return
    # migrations/0015_commit_functions.sql
    await con.execute(
        "SELECT bump_usage($1, $2, $3, $4, $5)",
        bucket_id,
        d_bytes,
        d_objects,
        d_reserved_bytes,
        d_reserved_objects,
    )


class UsageRepo:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def set_quota(self, quota: Quota) -> None:
        await self._pool.execute(
            "INSERT INTO quotas (scope, scope_id, max_bytes, max_objects, hard)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (scope, scope_id) DO UPDATE SET"
            " max_bytes = $3, max_objects = $4, hard = $5, updated_at = now()",
            quota.scope,
            quota.scope_id,
            quota.max_bytes,
            quota.max_objects,
            quota.hard,
        )

    async def clear_quota(self, scope: str, scope_id: str) -> None:
        await self._pool.execute(
            "DELETE FROM quotas WHERE scope = $1 AND scope_id = $2", scope, scope_id
        )

    async def quotas(self) -> list[Quota]:
        rows = await self._pool.fetch(
            "SELECT scope, scope_id, max_bytes, max_objects, hard FROM quotas"
            " ORDER BY scope, scope_id"
        )
        return [Quota(**dict(r)) for r in rows]

    async def usage(self) -> list[Usage]:
        """Every bucket's counters, and every tenant's as the sum of its buckets'."""
        rows = await self._pool.fetch(_USAGE_SQL)
        return [Usage(**dict(r)) for r in rows]

    async def recompute(self) -> list[tuple[Usage, Usage]]:
        """Counters that differ from the rows, as (counted, actual). Reservations are
        compared with the writes in flight that declared them."""
        rows = await self._pool.fetch(_ACTUAL_SQL)
        actual = {(r["scope"], r["scope_id"]): Usage(**dict(r)) for r in rows}
        counted = {(u.scope, u.scope_id): u for u in await self.usage()}
        drift = []
        for key in sorted(set(actual) | set(counted)):
            zero = Usage(key[0], key[1], 0, 0, 0, 0)
            have, want = counted.get(key, zero), actual.get(key, zero)
            if have != want:
                drift.append((have, want))
        return drift


_USAGE_SQL = """
SELECT 'bucket' AS scope, bucket_id::text AS scope_id, bytes, objects, reserved_bytes,
       reserved_objects FROM bucket_usage
UNION ALL
SELECT 'tenant', b.tenant, sum(u.bytes)::bigint, sum(u.objects)::bigint,
       sum(u.reserved_bytes)::bigint, sum(u.reserved_objects)::bigint
FROM bucket_usage u JOIN buckets b ON b.id = u.bucket_id GROUP BY b.tenant
ORDER BY 1, 2
"""

_ACTUAL_SQL = """
WITH per_bucket AS (
    SELECT b.id::text AS scope_id, b.tenant,
        coalesce((SELECT sum(v.size_bytes) FROM object_versions v WHERE v.bucket_id = b.id
                  AND v.state = 'complete' AND NOT v.is_delete_marker), 0)
        + coalesce((SELECT sum(mp.size_bytes) FROM multipart_parts mp
                    JOIN multipart_uploads u ON u.id = mp.upload_pk
                    AND u.bucket_id = mp.bucket_id
                    WHERE u.bucket_id = b.id AND u.state = 'open' AND mp.counted), 0) AS bytes,
        (SELECT count(*) FROM object_versions v WHERE v.bucket_id = b.id
         AND v.state = 'complete' AND NOT v.is_delete_marker) AS objects,
        coalesce((SELECT sum(v.reserved_bytes) FROM object_versions v WHERE v.bucket_id = b.id
                  AND v.state = 'pending'), 0)
        + coalesce((SELECT sum(d.reserved_bytes) FROM backend_deletions d
                    WHERE d.bucket_id = b.id), 0) AS reserved_bytes,
        (SELECT count(*) FROM object_versions v WHERE v.bucket_id = b.id
         AND v.state = 'pending') AS reserved_objects
    FROM buckets b
)
SELECT 'bucket' AS scope, scope_id, bytes::bigint, objects::bigint,
       reserved_bytes::bigint, reserved_objects::bigint FROM per_bucket
UNION ALL
SELECT 'tenant', tenant, sum(bytes)::bigint, sum(objects)::bigint,
       sum(reserved_bytes)::bigint, sum(reserved_objects)::bigint FROM per_bucket GROUP BY tenant
"""
