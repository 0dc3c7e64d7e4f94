"""What the lifecycle worker reads and writes: versions and open uploads of buckets that have
a lifecycle configuration, and the transitions under way.

Invariant: a transition's switch never leaves a version with fewer placements than its new
storage class asks for: the old placements are retired in the same transaction that checks
the new ones are all there, and that changes the storage class.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from metadata import replication
from metadata.buckets import EFFECTIVE_POLICY
from metadata.db import Conn, hold_session_state

WORKER_LOCK = "worker:lifecycle"
_TRANSITION_COLUMNS = (
    f"t.bucket_id, t.version_pk, t.storage_class, b.name, {EFFECTIVE_POLICY}, t.started_at,"
    " t.waiting_for"
)
# The version's key decides its policy (a prefix may have one of its own).
_TRANSITION_JOINS = (
    " JOIN object_versions v ON v.bucket_id = t.bucket_id AND v.id = t.version_pk"
    " JOIN buckets b ON b.id = t.bucket_id"
)


@dataclass(frozen=True, slots=True)
class LifecycleVersion:
    """A complete version (or delete marker) as the lifecycle rules see it."""

    pk: int
    version_id: str
    key: str
    size_bytes: int
    tags: dict[str, str]
    storage_class: str
    created_at: datetime
    is_delete_marker: bool
    # A transition of this version is under way.
    transitioning: bool


@dataclass(frozen=True, slots=True)
class OpenUpload:
    upload_id: str
    key: str
    initiated_at: datetime


@dataclass(frozen=True, slots=True)
class TransitionRow:
    bucket_id: int
    version_pk: int
    storage_class: str
    bucket: str
    placement_policy: str | None
    started_at: datetime
    waiting_for: str | None


@dataclass(frozen=True, slots=True)
class UnderWay:
    """Transitions under way to one storage class: versions and their bytes."""

    storage_class: str
    objects: int
    bytes: int


class LifecycleRepo:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @staticmethod
    async def lock(con: Conn, wait: bool) -> bool:
        """Take the lifecycle pass's session lock on ``con``: one node runs a pass at a time."""
        hold_session_state(con)
        if wait:
            await con.execute("SELECT pg_advisory_lock(hashtext($1))", WORKER_LOCK)
            return True
        locked: bool = await con.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", WORKER_LOCK)
        return locked

    @staticmethod
    async def unlock(con: Conn) -> None:
        await con.execute("SELECT pg_advisory_unlock(hashtext($1))", WORKER_LOCK)

    async def versions_page(
        self, bucket_id: int, after_key: str, keys: int
    ) -> list[LifecycleVersion]:
        """Every complete version of the next ``keys`` keys after ``after_key``, by key and
        newest first."""
        rows = await self._pool.fetch(
            "WITH page AS (SELECT DISTINCT key FROM object_versions WHERE bucket_id = $1"
            " AND state = 'complete' AND key > $2 ORDER BY key LIMIT $3)"
            " SELECT v.id, v.version_id, v.key, v.size_bytes, v.tags, v.storage_class,"
            " v.created_at, v.is_delete_marker,"
            " EXISTS (SELECT 1 FROM lifecycle_transitions t WHERE t.version_pk = v.id"
            " AND t.bucket_id = v.bucket_id)"
            " FROM object_versions v JOIN page ON page.key = v.key"
            " WHERE v.bucket_id = $1 AND v.state = 'complete' ORDER BY v.key, v.seq DESC",
            bucket_id,
            after_key,
            keys,
        )
        return [LifecycleVersion(*r) for r in rows]

    async def open_uploads(
        self, bucket_id: int, initiated_before: datetime, limit: int
    ) -> list[OpenUpload]:
        rows = await self._pool.fetch(
            "SELECT upload_id, key, initiated_at FROM multipart_uploads WHERE bucket_id = $1"
            " AND state = 'open' AND initiated_at < $2 ORDER BY initiated_at LIMIT $3",
            bucket_id,
            initiated_before,
            limit,
        )
        return [OpenUpload(*r) for r in rows]

    # -- transitions -----------------------------------------------------------------------

    async def begin_transition(
        self, bucket_id: int, version_pk: int, storage_class: str
    ) -> TransitionRow | None:
        """Record that the version is moving to ``storage_class``; None if it is gone or
        already moving."""
        row = await self._pool.fetchrow(
            "WITH added AS (INSERT INTO lifecycle_transitions (bucket_id, version_pk,"
            " storage_class) SELECT bucket_id, id, $3 FROM object_versions"
            " WHERE bucket_id = $1 AND id = $2 AND state = 'complete'"
            " ON CONFLICT (version_pk, bucket_id) DO NOTHING RETURNING *)"
            f" SELECT {_TRANSITION_COLUMNS} FROM added t{_TRANSITION_JOINS}",
            bucket_id,
            version_pk,
            storage_class,
        )
        return TransitionRow(*row) if row else None

    async def transitions(self, limit: int) -> list[TransitionRow]:
        """Transitions under way, the longest unchecked first (a scan of every bucket)."""
        rows = await self._pool.fetch(
            f"SELECT {_TRANSITION_COLUMNS} FROM lifecycle_transitions t{_TRANSITION_JOINS}"
            " ORDER BY t.checked_at, t.version_pk LIMIT $1",
            limit,
        )
        return [TransitionRow(*r) for r in rows]

    async def under_way(self) -> list[UnderWay]:
        """Transitions under way per destination storage class."""
        rows = await self._pool.fetch(
            "SELECT t.storage_class, count(*) AS objects,"
            " coalesce(sum(v.size_bytes), 0)::bigint AS bytes FROM lifecycle_transitions t"
            " JOIN object_versions v ON v.bucket_id = t.bucket_id AND v.id = t.version_pk"
            " GROUP BY t.storage_class ORDER BY t.storage_class"
        )
        return [UnderWay(**dict(r)) for r in rows]

    async def wait_for(
        self, bucket_id: int, version_pk: int, copy_to: list[str], reason: str
    ) -> None:
        """Queue the copies the transition still needs (verified by the replication worker)
        and note what it waits for."""
        async with self._pool.acquire() as con, con.transaction():
            await replication.enqueue(con, bucket_id, version_pk, copy_to)
            await con.execute(
                "UPDATE lifecycle_transitions SET checked_at = now(), waiting_for = $3"
                " WHERE bucket_id = $1 AND version_pk = $2",
                bucket_id,
                version_pk,
                reason[:1000],
            )

    async def drop_transition(self, bucket_id: int, version_pk: int) -> None:
        await self._pool.execute(
            "DELETE FROM lifecycle_transitions WHERE bucket_id = $1 AND version_pk = $2",
            bucket_id,
            version_pk,
        )

    async def switch(
        self, bucket_id: int, version_pk: int, storage_class: str, keep: list[str], delay_s: float
    ) -> bool:
        """Finish a transition in one transaction: if every backend of ``keep`` holds an ok
        placement, the version takes ``storage_class`` and its other placements are retired
        (their bytes deleted after ``delay_s``, so reads under way can finish). False, and
        nothing changes, when a placement of ``keep`` is missing."""
        async with self._pool.acquire() as con, con.transaction():
            state = await con.fetchval(
                "SELECT state FROM object_versions WHERE bucket_id = $1 AND id = $2 FOR UPDATE",
                bucket_id,
                version_pk,
            )
            held = await con.fetchval(
                "SELECT count(DISTINCT backend) FROM placements WHERE bucket_id = $1"
                " AND version_pk = $2 AND state = 'ok' AND backend = ANY($3::text[])"
                " AND expires_at IS NULL",
                bucket_id,
                version_pk,
                keep,
            )
            if state != "complete" or held != len(set(keep)):
                return False
            await _retire_others(con, bucket_id, version_pk, keep, delay_s)
            await con.execute(
                "UPDATE object_versions SET storage_class = $3, updated_at = now()"
                " WHERE bucket_id = $1 AND id = $2",
                bucket_id,
                version_pk,
                storage_class,
            )
            await con.execute(
                "DELETE FROM lifecycle_transitions WHERE bucket_id = $1 AND version_pk = $2",
                bucket_id,
                version_pk,
            )
            return True


async def _retire_others(
    con: Conn, bucket_id: int, version_pk: int, keep: list[str], delay_s: float
) -> None:
    await con.execute(
        "INSERT INTO backend_deletions (bucket_id, backend, backend_key, not_before)"
        " SELECT bucket_id, backend, unnest(coalesce(segment_keys, ARRAY[backend_key])),"
        " now() + make_interval(secs => $4) FROM placements WHERE bucket_id = $1"
        " AND version_pk = $2 AND NOT (backend = ANY($3::text[])) AND expires_at IS NULL",
        bucket_id,
        version_pk,
        keep,
        delay_s,
    )
    await con.execute(
        "DELETE FROM placements WHERE bucket_id = $1 AND version_pk = $2"
        " AND NOT (backend = ANY($3::text[])) AND expires_at IS NULL",
        bucket_id,
        version_pk,
        keep,
    )
