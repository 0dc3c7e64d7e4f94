"""The replication queue: replicas still to write, claimed safely by many nodes."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from metadata import warmup
from metadata.db import Conn

# When a temporary copy made now lapses: the first midnight UTC at or after now plus the
# days, as S3 dates a restore's expiry (NULL days: a permanent copy).
LAPSE_SQL = (
    "date_trunc('day', now() + make_interval(days => {days}) - interval '1 microsecond', 'UTC')"
    " + interval '1 day'"
)


@dataclass(frozen=True, slots=True)
class ReplicationTask:
    id: int
    bucket_id: int
    version_pk: int
    target_backend: str
    attempts: int
    # A restore's copy: the placement it makes lapses after this many days.
    temporary_days: int | None = None
    # A warm-up's copy: the placement it makes is the job's and lapses with it.
    warmup_job_id: int | None = None


async def enqueue(
    con: Conn,
    bucket_id: int,
    version_pk: int,
    targets: list[str],
    warmup_job_id: int | None = None,
) -> None:
    """Queue copies of the version to ``targets``; with ``warmup_job_id``, for that job."""
    if targets:
        await con.executemany(
            "INSERT INTO replication_queue (bucket_id, version_pk, target_backend, warmup_job_id)"
            " VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (version_pk, target_backend, bucket_id) DO NOTHING",
            [(bucket_id, version_pk, t, warmup_job_id) for t in targets],
        )


async def forget_deletions(con: Conn, bucket_id: int, backend: str, keys: list[str]) -> None:
    await con.execute(
        "DELETE FROM backend_deletions WHERE bucket_id = $1 AND backend = $2"
        " AND backend_key = ANY($3::text[])",
        bucket_id,
        backend,
        keys,
    )


async def _discard(con: Conn, task: ReplicationTask, keys: list[str]) -> None:
    """Queue a copy's bytes for deletion, unless a placement on its backend uses them."""
    await con.execute(
        "INSERT INTO backend_deletions (bucket_id, backend, backend_key)"
        " SELECT $4, $1, unnest($2::text[]) WHERE NOT EXISTS (SELECT 1 FROM placements"
        " WHERE bucket_id = $4 AND version_pk = $3 AND backend = $1"
        " AND state IN ('pending', 'ok'))",
        task.target_backend,
        keys,
        task.version_pk,
        task.bucket_id,
    )


class ReplicationRepo:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def claim(self, limit: int, lease_s: float) -> list[ReplicationTask]:
        """Due tasks, leased so that other nodes skip them until the lease expires.

        A claim spans every bucket: on Citus it must run per shard (docs/scaling.md)."""
        rows = await self._pool.fetch(
            "UPDATE replication_queue SET not_before = now() + make_interval(secs => $2),"
            " attempts = attempts + 1 WHERE (id, bucket_id) IN ("
            " SELECT id, bucket_id FROM replication_queue WHERE not_before <= now()"
            " ORDER BY not_before, id LIMIT $1 FOR UPDATE SKIP LOCKED)"
            " RETURNING id, bucket_id, version_pk, target_backend, attempts, temporary_days,"
            " warmup_job_id",
            limit,
            lease_s,
        )
        return [ReplicationTask(**dict(r)) for r in rows]

    async def renew(self, task: ReplicationTask, lease_s: float) -> None:
        """Extend the lease of a task still in progress."""
        await self._pool.execute(
            "UPDATE replication_queue SET not_before = now() + make_interval(secs => $3)"
            " WHERE bucket_id = $1 AND id = $2",
            task.bucket_id,
            task.id,
            lease_s,
        )

    async def retry_later(self, task: ReplicationTask, delay_s: float, error: str) -> None:
        await self._pool.execute(
            "UPDATE replication_queue SET not_before = now() + make_interval(secs => $3),"
            " last_error = $4 WHERE bucket_id = $1 AND id = $2",
            task.bucket_id,
            task.id,
            delay_s,
            error[:1000],
        )

    async def drop(self, task: ReplicationTask) -> None:
        await self._pool.execute(
            "DELETE FROM replication_queue WHERE bucket_id = $1 AND id = $2",
            task.bucket_id,
            task.id,
        )

    async def complete(
        self,
        task: ReplicationTask,
        backend_key: str,
        segment_keys: list[str] | None,
        size_bytes: int,
    ) -> bool:
        """Record the new replica and finish the task, if the version still exists.

        Returns False when the version was deleted meanwhile, or the warm-up the copy was
        for has ended: the caller's bytes are then queued for deletion here, in the same
        transaction.
        """
        async with self._pool.acquire() as con, con.transaction():
            state = await con.fetchval(
                "SELECT state FROM object_versions WHERE bucket_id = $1 AND id = $2 FOR SHARE",
                task.bucket_id,
                task.version_pk,
            )
            await con.execute(
                "DELETE FROM replication_queue WHERE bucket_id = $1 AND id = $2",
                task.bucket_id,
                task.id,
            )
            keys = segment_keys or [backend_key]
            until = None
            if task.warmup_job_id is not None:
                until = await warmup.active_expiry(con, task.bucket_id, task.warmup_job_id)
            if state != "complete" or (task.warmup_job_id is not None and until is None):
                await _discard(con, task, keys)
                return False
            # A deletion queued for these keys earlier (a failed synchronous write, a part
            # copy dropped at completion) would destroy the replica just written.
            await forget_deletions(con, task.bucket_id, task.target_backend, keys)
            await con.execute(
                "INSERT INTO placements (bucket_id, version_pk, backend, backend_key,"
                " segment_keys, state, size_bytes, verified_at, expires_at, warmup_job_id)"
                " VALUES ($9, $1, $2, $3, $4, 'ok', $5, now(),"
                f" coalesce($7, {LAPSE_SQL.format(days='$6::int')}), $8)"
                " ON CONFLICT (version_pk, backend, bucket_id) WHERE state IN ('pending', 'ok')"
                " DO NOTHING",
                task.version_pk, task.target_backend, backend_key, segment_keys, size_bytes,
                task.temporary_days, until, task.warmup_job_id, task.bucket_id,
            )  # fmt: skip
            return True

    async def claim_keys(self, bucket_id: int, backend: str, keys: list[str]) -> None:
        """Cancel queued deletions of ``keys`` on ``backend`` before a copy writes them."""
        async with self._pool.acquire() as con:
            await forget_deletions(con, bucket_id, backend, keys)

    async def pending_count(self) -> int:
        count: int = await self._pool.fetchval("SELECT count(*) FROM replication_queue")
        return count


@dataclass(frozen=True, slots=True)
class QueueStats:
    """The replication queue per target backend."""

    target_backend: str
    depth: int
    bytes: int
    failing: int
    oldest_age_s: float


@dataclass(frozen=True, slots=True)
class QueueFailure:
    id: int
    bucket: str
    key: str
    version_id: str
    target_backend: str
    attempts: int
    last_error: str | None
    next_attempt_in_s: float


class ReplicationQueueRepo:
    """What operators see of the queue, and what they may do to it."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def stats(self) -> list[QueueStats]:
        rows = await self._pool.fetch(
            "SELECT q.target_backend, count(*) AS depth,"
            " coalesce(sum(v.size_bytes), 0)::bigint AS bytes,"
            " count(*) FILTER (WHERE q.attempts > 0) AS failing,"
            " extract(epoch FROM now() - min(q.created_at))::float8 AS oldest_age_s"
            " FROM replication_queue q JOIN object_versions v"
            " ON v.bucket_id = q.bucket_id AND v.id = q.version_pk"
            " GROUP BY q.target_backend ORDER BY q.target_backend"
        )
        return [QueueStats(**dict(r)) for r in rows]

    async def failures(self, limit: int) -> list[QueueFailure]:
        rows = await self._pool.fetch(
            "SELECT q.id, b.name AS bucket, v.key, v.version_id, q.target_backend, q.attempts,"
            " q.last_error,"
            " greatest(extract(epoch FROM q.not_before - now()), 0)::float8 AS next_attempt_in_s"
            " FROM replication_queue q JOIN object_versions v"
            " ON v.bucket_id = q.bucket_id AND v.id = q.version_pk"
            " JOIN buckets b ON b.id = v.bucket_id WHERE q.attempts > 0"
            " ORDER BY q.attempts DESC, q.id LIMIT $1",
            limit,
        )
        return [QueueFailure(**dict(r)) for r in rows]

    async def retry_now(self, backend: str | None) -> int:
        """Make waiting tasks due at once; the count of tasks made due."""
        status = await self._pool.execute(
            "UPDATE replication_queue SET not_before = now()"
            " WHERE not_before > now() AND ($1::text IS NULL OR target_backend = $1)",
            backend,
        )
        return int(status.split()[-1])

    async def purge(self, backend: str) -> int:
        """Drop every task towards ``backend``; re-placement queues what is still needed."""
        status = await self._pool.execute(
            "DELETE FROM replication_queue WHERE target_backend = $1", backend
        )
        return int(status.split()[-1])
