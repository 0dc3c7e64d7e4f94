"""The queue of backend objects to delete, drained by the gc worker."""

from __future__ import annotations

import asyncpg

from metadata import usage
from metadata.models import DeletionRow


class DeletionRepo:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def claim(self, limit: int, lease_s: float) -> list[DeletionRow]:
        """Take due rows and push them back by ``lease_s`` so other nodes skip them.

        A claim spans every bucket: on Citus it must run per shard (docs/scaling.md)."""
        records = await self._pool.fetch(
            "UPDATE backend_deletions SET not_before = now() + make_interval(secs => $2),"
            " attempts = attempts + 1 WHERE (id, bucket_id) IN ("
            " SELECT id, bucket_id FROM backend_deletions WHERE not_before <= now()"
            " ORDER BY not_before LIMIT $1 FOR UPDATE SKIP LOCKED)"
            " RETURNING id, bucket_id, backend, backend_key",
            limit,
            lease_s,
        )
        return [DeletionRow(**dict(r)) for r in records]

    async def retry_later(self, row: DeletionRow, delay_s: float) -> None:
        await self._pool.execute(
            "UPDATE backend_deletions SET not_before = now() + make_interval(secs => $3)"
            " WHERE bucket_id = $1 AND id = $2",
            row.bucket_id,
            row.id,
            delay_s,
        )

    async def done(self, rows: list[DeletionRow]) -> None:
        """Forget deleted keys; an intent that fired gives back its writer's reservation.
        One transaction per bucket, so that each stays on the bucket's shard."""
        ids: dict[int, list[int]] = {}
        for row in rows:
            ids.setdefault(row.bucket_id, []).append(row.id)
        for bucket_id, bucket_ids in ids.items():
            async with self._pool.acquire() as con, con.transaction():
                reserved = await con.fetchval(
                    "WITH gone AS (DELETE FROM backend_deletions WHERE bucket_id = $1"
                    " AND id = ANY($2::bigint[]) RETURNING reserved_bytes)"
                    " SELECT coalesce(sum(reserved_bytes), 0)::bigint FROM gone",
                    bucket_id,
                    bucket_ids,
                )
                await usage.adjust(con, bucket_id, 0, 0, -reserved, 0)

    async def add_part_intents(
        self, bucket_id: int, backends: list[str], key: str, grace_s: float, reserve_bytes: int
    ) -> list[int]:
        """Intents for a part about to be written to ``backends``, and its reservation
        (carried by the first intent). Raises QuotaExceededError and changes nothing."""
        async with self._pool.acquire() as con, con.transaction():
            await usage.reserve(con, bucket_id, reserve_bytes, 0)
            ids = []
            for index, backend in enumerate(backends):
                intent_id: int = await con.fetchval(
                    "INSERT INTO backend_deletions (backend, backend_key, not_before,"
                    " bucket_id, reserved_bytes)"
                    " VALUES ($1, $2, now() + make_interval(secs => $3), $4, $5) RETURNING id",
                    backend,
                    key,
                    grace_s,
                    bucket_id,
                    reserve_bytes if index == 0 else 0,
                )
                ids.append(intent_id)
            return ids

    async def expedite(self, bucket_id: int, ids: list[int]) -> None:
        """A write failed: let gc delete its leftovers (and release its reservation) now."""
        await self._pool.execute(
            "UPDATE backend_deletions SET not_before = now() WHERE bucket_id = $1"
            " AND id = ANY($2::bigint[]) AND attempts = 0",
            bucket_id,
            ids,
        )
