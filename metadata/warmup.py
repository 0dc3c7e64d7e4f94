"""Dataset warm-up jobs: temporary copies of the versions under a prefix on one backend.

A job's copies go through the replication queue (rows naming the job), and each copy it
makes is a temporary placement naming the job and lapsing with it. Progress is read off
the queue: what the job was given, less what is still queued for it. Cancelling or
expiring a job retires exactly its placements, never one without its id, and never the
last copy of a version.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from metadata.db import Conn


@dataclass(frozen=True, slots=True)
class NewWarmup:
    bucket_id: int
    prefix: str
    site: str
    target_backend: str
    duration_s: int
    # Versions of these storage classes are left out (archived ones need a restore).
    skip_classes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class WarmupJob:
    id: int
    bucket_id: int
    bucket: str
    prefix: str
    site: str
    target_backend: str
    state: str
    created_at: datetime
    expires_at: datetime
    ended_at: datetime | None
    total_objects: int
    total_bytes: int
    # Of the total, those on the target backend (for an ended job: when it ended).
    done_objects: int
    done_bytes: int
    # Copies of the job that failed at least once and wait for their next attempt.
    failing_objects: int
    # The job's temporary placements that exist now.
    copies: int


# An active job is done with a version once no copy of it to the target waits in the queue:
# neither the job's own nor one the policy had queued already (the job queued none then).
_WAITING = (
    "FROM replication_queue r JOIN object_versions v"
    " ON v.bucket_id = r.bucket_id AND v.id = r.version_pk"
    " WHERE r.bucket_id = j.bucket_id AND (r.warmup_job_id = j.id OR (j.state = 'active'"
    " AND r.warmup_job_id IS NULL AND r.temporary_days IS NULL"
    " AND r.target_backend = j.target_backend AND starts_with(v.key, j.prefix)"
    " AND v.is_latest AND v.created_at <= j.created_at))"
)
_JOBS = (
    "SELECT j.id, j.bucket_id, b.name AS bucket, j.prefix, j.site, j.target_backend, j.state,"
    " j.created_at, j.expires_at, j.ended_at, j.total_objects, j.total_bytes,"
    " coalesce(j.done_objects, j.total_objects - q.objects) AS done_objects,"
    " coalesce(j.done_bytes, j.total_bytes - q.bytes) AS done_bytes,"
    " q.failing AS failing_objects,"
    " (SELECT count(*) FROM placements p WHERE p.bucket_id = j.bucket_id"
    "  AND p.warmup_job_id = j.id) AS copies"
    " FROM warmup_jobs j JOIN buckets b ON b.id = j.bucket_id"
    " CROSS JOIN LATERAL (SELECT count(*) AS objects,"
    "  coalesce(sum(v.size_bytes), 0)::bigint AS bytes,"
    f"  count(*) FILTER (WHERE r.last_error IS NOT NULL) AS failing {_WAITING}) q"
)

# The versions a new job is given: current, complete, not a delete marker, under the prefix.
_CHOSEN = (
    "SELECT v.id, v.size_bytes FROM object_versions v WHERE v.bucket_id = $1"
    " AND starts_with(v.key, $2) AND v.is_latest AND v.state = 'complete'"
    " AND NOT v.is_delete_marker AND NOT (v.storage_class = ANY($3::text[]))"
)


async def active_expiry(con: Conn, bucket_id: int, job_id: int) -> datetime | None:
    """When an active job's copies lapse; None once it is expired or cancelled. Locks the
    job's row against a cancel until the caller's transaction ends."""
    expires_at: datetime | None = await con.fetchval(
        "SELECT expires_at FROM warmup_jobs WHERE bucket_id = $1 AND id = $2"
        " AND state = 'active' FOR SHARE",
        bucket_id,
        job_id,
    )
    return expires_at


class WarmupRepo:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(self, new: NewWarmup) -> int:
        """Record a job and queue a copy of each of its versions the target lacks."""
        async with self._pool.acquire() as con, con.transaction():
            job_id: int = await con.fetchval(
                "INSERT INTO warmup_jobs (bucket_id, prefix, site, target_backend, expires_at)"
                " VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5)) RETURNING id",
                new.bucket_id, new.prefix, new.site, new.target_backend, new.duration_s,
            )  # fmt: skip
            await con.execute(
                f"WITH chosen AS ({_CHOSEN}), queued AS ("
                " INSERT INTO replication_queue (bucket_id, version_pk, target_backend,"
                " warmup_job_id) SELECT $1, c.id, $4, $5 FROM chosen c WHERE NOT EXISTS ("
                "  SELECT 1 FROM placements p WHERE p.bucket_id = $1 AND p.version_pk = c.id"
                "  AND p.backend = $4 AND p.state IN ('pending', 'ok'))"
                " ON CONFLICT (version_pk, target_backend, bucket_id) DO NOTHING)"
                " UPDATE warmup_jobs SET total_objects = (SELECT count(*) FROM chosen),"
                " total_bytes = (SELECT coalesce(sum(size_bytes), 0) FROM chosen)"
                " WHERE bucket_id = $1 AND id = $5",
                new.bucket_id, new.prefix, list(new.skip_classes), new.target_backend, job_id,
            )  # fmt: skip
            return job_id

    async def jobs(self, limit: int) -> list[WarmupJob]:
        """Newest first (every bucket's: an operator view)."""
        rows = await self._pool.fetch(f"{_JOBS} ORDER BY j.id DESC LIMIT $1", limit)
        return [WarmupJob(**dict(r)) for r in rows]

    async def active(self) -> list[WarmupJob]:
        """Every bucket's active jobs (metrics)."""
        rows = await self._pool.fetch(f"{_JOBS} WHERE j.state = 'active' ORDER BY j.id")
        return [WarmupJob(**dict(r)) for r in rows]

    async def job(self, job_id: int) -> WarmupJob | None:
        """The job of that id, whatever its bucket: the admin API names a job by id alone."""
        row = await self._pool.fetchrow(f"{_JOBS} WHERE j.id = $1", job_id)
        return None if row is None else WarmupJob(**dict(row))

    async def cancel(self, bucket_id: int, job_id: int, delay_s: float) -> bool:
        """End an active job now and retire its copies; False when it is not active."""
        return bool(await self._end("cancelled", bucket_id, [job_id], delay_s))

    async def expire(self, now: datetime, delay_s: float) -> int:
        """End the active jobs whose time ran out by ``now`` and retire their copies: found
        over every bucket, then ended in one transaction per bucket."""
        rows = await self._pool.fetch(
            "SELECT bucket_id, array_agg(id ORDER BY id) FROM warmup_jobs"
            " WHERE state = 'active' AND expires_at <= $1 GROUP BY bucket_id ORDER BY bucket_id",
            now,
        )
        ended = 0
        for bucket_id, job_ids in rows:
            ended += await self._end("expired", bucket_id, list(job_ids), delay_s)
        return ended

    async def _end(self, state: str, bucket_id: int, job_ids: list[int], delay_s: float) -> int:
        """End those of the bucket's jobs that are still active; the count ended."""
        async with self._pool.acquire() as con, con.transaction():
            ended = await con.fetch(
                "UPDATE warmup_jobs SET state = $1, ended_at = now()"
                " WHERE bucket_id = $2 AND id = ANY($3::bigint[]) AND state = 'active'"
                " RETURNING id",
                state,
                bucket_id,
                job_ids,
            )
            ids = [r["id"] for r in ended]
            # Progress as it stands now, kept: the queue rows it is read from go next.
            await con.execute(
                "UPDATE warmup_jobs j SET done_objects = j.total_objects - q.objects,"
                " done_bytes = j.total_bytes - q.bytes FROM warmup_jobs w CROSS JOIN LATERAL"
                " (SELECT count(*) AS objects, coalesce(sum(v.size_bytes), 0)::bigint AS bytes"
                " FROM replication_queue r JOIN object_versions v"
                "  ON v.bucket_id = r.bucket_id AND v.id = r.version_pk"
                " WHERE r.bucket_id = w.bucket_id AND r.warmup_job_id = w.id) q"
                " WHERE j.bucket_id = $1 AND w.bucket_id = j.bucket_id AND w.id = j.id"
                " AND j.id = ANY($2::bigint[])",
                bucket_id,
                ids,
            )
            await _retire(con, bucket_id, ids, delay_s)
            return len(ended)


async def _retire(con: Conn, bucket_id: int, job_ids: list[int], delay_s: float) -> None:
    """Drop the jobs' queued copies and their placements (bytes deleted after ``delay_s``),
    except where the version has no permanent copy left to read."""
    if not job_ids:
        return
    await con.execute(
        "DELETE FROM replication_queue WHERE bucket_id = $1 AND warmup_job_id = ANY($2::bigint[])",
        bucket_id,
        job_ids,
    )
    rows = await con.fetch(
        "DELETE FROM placements p WHERE p.bucket_id = $1 AND p.warmup_job_id = ANY($2::bigint[])"
        " AND EXISTS (SELECT 1 FROM placements k WHERE k.bucket_id = p.bucket_id"
        " AND k.version_pk = p.version_pk AND k.state = 'ok' AND k.expires_at IS NULL)"
        " RETURNING p.backend, p.backend_key, p.segment_keys",
        bucket_id,
        job_ids,
    )
    await con.executemany(
        "INSERT INTO backend_deletions (bucket_id, backend, backend_key, not_before)"
        " VALUES ($1, $2, $3, now() + make_interval(secs => $4))",
        [(bucket_id, r["backend"], k, delay_s)
         for r in rows for k in r["segment_keys"] or [r["backend_key"]]],
    )  # fmt: skip
