"""The queue of backend objects to delete, drained by the gc worker."""

from __future__ import annotations

import asyncpg

from metadata import usage
from metadata.models import DeletionRow


class DeletionRepo:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def enqueue(self, items: list[tuple[str, str]]) -> None:
        if items:
            await self._pool.executemany(
                "INSERT INTO backend_deletions (backend, backend_key) VALUES ($1, $2)", items
            )

    async def claim(self, limit: int, lease_s: float) -> list[DeletionRow]:
        """Take due rows and push them back by ``lease_s`` so other nodes skip them."""
        records = await self._pool.fetch(
            "UPDATE backend_deletions SET not_before = now() + make_interval(secs => $2),"
            " attempts = attempts + 1 WHERE id IN ("
            " SELECT id FROM backend_deletions WHERE not_before <= now()"
            " ORDER BY not_before LIMIT $1 FOR UPDATE SKIP LOCKED)"
            " RETURNING id, backend, backend_key",
            limit,
            lease_s,
        )
        return [DeletionRow(**dict(r)) for r in records]

    async def retry_later(self, deletion_id: int, delay_s: float) -> None:
        await self._pool.execute(
            "UPDATE backend_deletions SET not_before = now() + make_interval(secs => $2)"
            " WHERE id = $1",
            deletion_id,
            delay_s,
        )

    async def done(self, ids: list[int]) -> None:
        """Forget deleted keys; an intent that fired gives back its writer's reservation."""
        async with self._pool.acquire() as con, con.transaction():
            rows = await con.fetch(
                "DELETE FROM backend_deletions WHERE id = ANY($1::bigint[])"
                " RETURNING reserved_bucket_id, reserved_bytes",
                ids,
            )
            for row in rows:
                if row["reserved_bucket_id"] is not None and row["reserved_bytes"]:
                    await usage.adjust(
                        con, row["reserved_bucket_id"], 0, 0, -row["reserved_bytes"], 0
                    )

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
                    " reserved_bucket_id, reserved_bytes)"
                    " VALUES ($1, $2, now() + make_interval(secs => $3), $4, $5) RETURNING id",
                    backend,
                    key,
                    grace_s,
                    bucket_id,
                    reserve_bytes if index == 0 else 0,
                )
                ids.append(intent_id)
            return ids

    async def expedite(self, ids: list[int]) -> None:
        """A write failed: let gc delete its leftovers (and release its reservation) now."""
        await self._pool.execute(
            "UPDATE backend_deletions SET not_before = now() WHERE id = ANY($1::bigint[])"
            " AND attempts = 0",
            ids,
        )
