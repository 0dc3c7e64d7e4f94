"""Usage counters and quotas, changed only inside the transactions that change storage.

Invariants (checked by ``recompute``): for every bucket, ``bytes`` is the size of its
complete versions that are not delete markers plus the parts of its open uploads,
``objects`` the count of those versions, and ``reserved_*`` what writes in flight declared.
Tenants sum their buckets. Rows are always locked bucket first, then tenant, so that
concurrent writers cannot deadlock.
"""

from __future__ import annotations

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


_BUMP_BOTH = """
INSERT INTO usage_counters AS u (scope, scope_id, bytes, objects, reserved_bytes,
                                 reserved_objects)
SELECT scope, scope_id, $2, $3, $4, $5
FROM (SELECT 1 AS rank, 'bucket' AS scope, $1::bigint::text AS scope_id
      UNION ALL
      SELECT 2, 'tenant', tenant FROM buckets WHERE id = $1::bigint) AS scopes
ORDER BY rank
ON CONFLICT (scope, scope_id) DO UPDATE SET bytes = u.bytes + EXCLUDED.bytes,
    objects = u.objects + EXCLUDED.objects,
    reserved_bytes = u.reserved_bytes + EXCLUDED.reserved_bytes,
    reserved_objects = u.reserved_objects + EXCLUDED.reserved_objects
RETURNING scope, scope_id, bytes, objects, reserved_bytes, reserved_objects
"""


async def _bump_both(
    con: Conn, bucket_id: int, d_bytes: int, d_objects: int, d_rb: int, d_ro: int
) -> list[asyncpg.Record]:
    """Bump the bucket's and its tenant's counters in one round trip, bucket row first
    (the lock order every writer keeps, so that concurrent writers cannot deadlock)."""
    rows: list[asyncpg.Record] = await con.fetch(
        _BUMP_BOTH, bucket_id, d_bytes, d_objects, d_rb, d_ro
    )
    return rows


async def _quotas_of(con: Conn, rows: list[asyncpg.Record]) -> dict[tuple[str, str], Quota]:
    found = await con.fetch(
        "SELECT scope, scope_id, max_bytes, max_objects, hard FROM quotas"
        " WHERE (scope, scope_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))",
        [r["scope"] for r in rows],
        [r["scope_id"] for r in rows],
    )
    return {(q["scope"], q["scope_id"]): Quota(**dict(q)) for q in found}


async def reserve(con: Conn, bucket_id: int, n_bytes: int, n_objects: int) -> None:
    """Reserve room for a write, or raise QuotaExceededError (the caller's transaction then
    rolls back, releasing the reservation with it)."""
    rows = await _bump_both(con, bucket_id, 0, 0, n_bytes, n_objects)
    quotas = await _quotas_of(con, rows)
    for row in rows:
        quota = quotas.get((row["scope"], row["scope_id"]))
        if quota is None or not quota.hard:
            continue
        _check(quota, "bytes", quota.max_bytes, row["bytes"], row["reserved_bytes"], n_bytes)
        _check(
            quota, "objects", quota.max_objects, row["objects"], row["reserved_objects"], n_objects
        )


def _check(
    quota: Quota, what: str, limit: int | None, used: int, reserved: int, requested: int
) -> None:
    if limit is None:
        return
    # At or over the limit, nothing new is written, even a zero-byte object; below it,
    # a write must fit beside everything else in flight.
    if used + reserved > limit or (used >= limit and (requested or what == "bytes")):
        raise QuotaExceededError(quota, what, limit, used + reserved - requested, requested)


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
    await _bump_both(con, bucket_id, d_bytes, d_objects, d_reserved_bytes, d_reserved_objects)


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
        rows = await self._pool.fetch(
            "SELECT scope, scope_id, bytes, objects, reserved_bytes, reserved_objects"
            " FROM usage_counters ORDER BY scope, scope_id"
        )
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


_ACTUAL_SQL = """
WITH per_bucket AS (
    SELECT b.id::text AS scope_id, b.tenant,
        coalesce((SELECT sum(v.size_bytes) FROM object_versions v WHERE v.bucket_id = b.id
                  AND v.state = 'complete' AND NOT v.is_delete_marker), 0)
        + coalesce((SELECT sum(mp.size_bytes) FROM multipart_parts mp
                    JOIN multipart_uploads u ON u.id = mp.upload_pk
                    WHERE u.bucket_id = b.id AND u.state = 'open' AND mp.counted), 0) AS bytes,
        (SELECT count(*) FROM object_versions v WHERE v.bucket_id = b.id
         AND v.state = 'complete' AND NOT v.is_delete_marker) AS objects,
        coalesce((SELECT sum(v.reserved_bytes) FROM object_versions v WHERE v.bucket_id = b.id
                  AND v.state = 'pending'), 0)
        + coalesce((SELECT sum(d.reserved_bytes) FROM backend_deletions d
                    WHERE d.reserved_bucket_id = b.id), 0) AS reserved_bytes,
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
