"""Access-based tiering: when versions were last read, and which are due to move a tier.

The moves themselves are lifecycle transitions (``lifecycle_transitions``), made and
switched by the lifecycle worker like any other: copies first, verified, then one switch.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

# The storage classes access tiering moves a version between, warmest first.
LADDER = ("STANDARD", "STANDARD_IA", "GLACIER_IR")

# A version is due one step down when it was not read (nor written) for the bucket's days.
_DUE = (
    "SELECT v.bucket_id, v.id,"
    " CASE v.storage_class WHEN 'STANDARD' THEN 'STANDARD_IA' ELSE 'GLACIER_IR' END"
    " FROM buckets b JOIN object_versions v ON v.bucket_id = b.id"
    " WHERE b.access_tiering IS NOT NULL AND v.is_latest AND v.state = 'complete'"
    " AND NOT v.is_delete_marker AND NOT EXISTS (SELECT 1 FROM lifecycle_transitions t"
    "  WHERE t.bucket_id = v.bucket_id AND t.version_pk = v.id) AND ("
    " (v.storage_class = 'STANDARD' AND coalesce(v.last_read_at, v.created_at)"
    "  <= $1::timestamptz - make_interval(days => (b.access_tiering->>'warm_after_days')::int))"
    " OR (v.storage_class = 'STANDARD_IA' AND b.access_tiering->>'cold_after_days' IS NOT NULL"
    "  AND coalesce(v.last_read_at, v.created_at)"
    "  <= $1::timestamptz - make_interval(days => (b.access_tiering->>'cold_after_days')::int)))"
    " ORDER BY v.id LIMIT $2"
)


class AccessTieringRepo:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def note_reads(self, bucket_id: int, read: list[int], recalled: list[int]) -> None:
        """Note reads of versions of one bucket (to the hour); start the move back to
        STANDARD of the ``recalled`` ones unless they are moving already."""
        await self._pool.execute(
            "WITH touched AS (UPDATE object_versions SET last_read_at = now()"
            " WHERE bucket_id = $1 AND id = ANY ($2::bigint[])"
            " AND (last_read_at IS NULL OR last_read_at < now() - interval '1 hour'))"
            " INSERT INTO lifecycle_transitions (bucket_id, version_pk, storage_class)"
            f" SELECT $1, pk, '{LADDER[0]}' FROM unnest($3::bigint[]) AS pk"
            " ON CONFLICT (version_pk, bucket_id) DO NOTHING",
            bucket_id,
            read,
            recalled,
        )

    async def due(self, now: datetime, limit: int) -> list[tuple[int, int, str]]:
        """(bucket, version, the class one step down) of the versions due to move at ``now``,
        over every bucket that has access tiering."""
        rows = await self._pool.fetch(_DUE, now, limit)
        return [(r[0], r[1], r[2]) for r in rows]
