"""Restores of archived versions: a temporary copy made by the replication queue, which
lapses on its own.

A restore is in progress while a copy with ``temporary_days`` is queued for the version, and
done while the version has a temporary placement (``placements.expires_at``); neither needs
a table of its own, so a restore can never say done without its copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from metadata.replication import LAPSE_SQL


@dataclass(frozen=True, slots=True)
class RestoreStatus:
    ongoing: bool
    # When the restored copy lapses; None while there is none.
    expires_at: datetime | None


class RestoreRepo:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def status(self, bucket_id: int, version_pk: int) -> RestoreStatus:
        row = await self._pool.fetchrow(
            "SELECT EXISTS (SELECT 1 FROM replication_queue WHERE bucket_id = $1"
            "  AND version_pk = $2 AND temporary_days IS NOT NULL),"
            " (SELECT max(expires_at) FROM placements WHERE bucket_id = $1 AND version_pk = $2"
            "  AND state = 'ok' AND warmup_job_id IS NULL)",
            bucket_id,
            version_pk,
        )
        assert row is not None
        return RestoreStatus(row[0], row[1])

    async def request(
        self, bucket_id: int, version_pk: int, target_backend: str, days: int
    ) -> bool:
        """Queue the restore's copy; False when one is queued already (in progress)."""
        status = await self._pool.execute(
            "INSERT INTO replication_queue (bucket_id, version_pk, target_backend,"
            " temporary_days) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (version_pk, target_backend, bucket_id) DO NOTHING",
            bucket_id,
            version_pk,
            target_backend,
            days,
        )
        return status.endswith(" 1")

    async def extend(self, bucket_id: int, version_pk: int, days: int) -> None:
        """A restore of a restored version sets its copy's lapse anew, from now."""
        await self._pool.execute(
            f"UPDATE placements SET expires_at = {LAPSE_SQL.format(days='$3::int')}"
            " WHERE bucket_id = $1 AND version_pk = $2 AND state = 'ok'"
            " AND expires_at IS NOT NULL AND warmup_job_id IS NULL",
            bucket_id,
            version_pk,
            days,
        )

    async def expire(self, now: datetime, delay_s: float, limit: int = 1000) -> int:
        """Retire temporary copies that lapsed by ``now`` (their bytes deleted after
        ``delay_s``); never one whose version has no permanent copy left. A scan of every
        bucket: on Citus it must run per shard, like the queue claims (docs/scaling.md)."""
        async with self._pool.acquire() as con, con.transaction():
            rows = await con.fetch(
                "DELETE FROM placements p WHERE (p.id, p.bucket_id) IN (SELECT t.id, t.bucket_id"
                " FROM placements t WHERE t.expires_at <= $1 AND t.state = 'ok' AND EXISTS"
                " (SELECT 1 FROM placements k WHERE k.bucket_id = t.bucket_id"
                " AND k.version_pk = t.version_pk AND k.state = 'ok' AND k.expires_at IS NULL)"
                " ORDER BY t.expires_at LIMIT $2 FOR UPDATE)"
                " RETURNING p.bucket_id, p.backend, p.backend_key, p.segment_keys",
                now,
                limit,
            )
            await con.executemany(
                "INSERT INTO backend_deletions (bucket_id, backend, backend_key, not_before)"
                " VALUES ($1, $2, $3, now() + make_interval(secs => $4))",
                [(r["bucket_id"], r["backend"], k, delay_s) for r in rows
                 for k in r["segment_keys"] or [r["backend_key"]]],
            )  # fmt: skip
            return len(rows)
