"""The placements ledger read as a whole: what each version has, for re-placement and scrub."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from metadata import replication
from metadata.buckets import EFFECTIVE_POLICY
from metadata.db import Conn, hold_session_state


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One complete version with the backends that hold it."""

    bucket_id: int
    version_pk: int
    bucket: str
    placement_policy: str | None
    key: str
    size_bytes: int
    storage_class: str
    tags: dict[str, str]
    backends: list[str]
    queued: list[str]


@dataclass(frozen=True, slots=True)
class VersionPlacements:
    """One version of one key and every placement row it has, whatever the state."""

    version_pk: int
    version_id: str
    state: str
    is_latest: bool
    is_delete_marker: bool
    size_bytes: int
    etag: str
    placements: list[dict[str, object]]
    queued: list[str]


class LedgerRepo:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def page(self, after_pk: int, limit: int) -> list[LedgerEntry]:
        rows = await self._pool.fetch(
            f"SELECT v.bucket_id, v.id, b.name, {EFFECTIVE_POLICY}, v.key, v.size_bytes,"
            " v.storage_class, v.tags,"
            # Temporary copies (restores) lapse on their own: re-placement leaves them be.
            " coalesce((SELECT array_agg(p.backend ORDER BY p.backend) FROM placements p"
            "  WHERE p.bucket_id = v.bucket_id AND p.version_pk = v.id AND p.state = 'ok'"
            "  AND p.expires_at IS NULL),"
            " ARRAY[]::text[]),"
            " coalesce((SELECT array_agg(q.target_backend) FROM replication_queue q"
            "  WHERE q.bucket_id = v.bucket_id AND q.version_pk = v.id), ARRAY[]::text[])"
            " FROM object_versions v JOIN buckets b ON b.id = v.bucket_id"
            " WHERE v.id > $1 AND v.state = 'complete' AND NOT v.is_delete_marker"
            # A version in transition is moved by the lifecycle worker (gateway/workers/
            # transitions.py): its new copies are not extras to retire.
            " AND NOT EXISTS (SELECT 1 FROM lifecycle_transitions t"
            "  WHERE t.bucket_id = v.bucket_id AND t.version_pk = v.id)"
            " ORDER BY v.id LIMIT $2",
            after_pk,
            limit,
        )
        return [LedgerEntry(*r) for r in rows]

    async def placements_of(
        self, bucket: str, key: str, version_id: str | None
    ) -> list[VersionPlacements]:
        """Every version of ``key`` (or the one asked for), newest first, with its replicas."""
        rows = await self._pool.fetch(
            "SELECT v.id, v.version_id, v.state, v.is_latest, v.is_delete_marker, v.size_bytes,"
            " v.etag, coalesce((SELECT jsonb_agg(jsonb_build_object('backend', p.backend,"
            "  'state', p.state, 'size_bytes', p.size_bytes, 'created_at', p.created_at,"
            "  'verified_at', p.verified_at, 'expires_at', p.expires_at,"
            "  'warmup_job', p.warmup_job_id) ORDER BY p.backend)"
            "  FROM placements p WHERE p.bucket_id = v.bucket_id AND p.version_pk = v.id),"
            " '[]'::jsonb) AS placements,"
            " coalesce((SELECT array_agg(q.target_backend ORDER BY q.target_backend)"
            "  FROM replication_queue q WHERE q.bucket_id = v.bucket_id"
            "  AND q.version_pk = v.id), ARRAY[]::text[]) AS queued"
            " FROM object_versions v JOIN buckets b ON b.id = v.bucket_id"
            " WHERE b.name = $1 AND v.key = $2 AND ($3::text IS NULL OR v.version_id = $3)"
            " ORDER BY v.id DESC LIMIT 1000",
            bucket,
            key,
            version_id,
        )
        return [VersionPlacements(*r) for r in rows]

    async def cursor(self, worker: str) -> int:
        value: int | None = await self._pool.fetchval(
            "SELECT cursor_pk FROM worker_progress WHERE worker = $1", worker
        )
        return value or 0

    async def save_cursor(self, worker: str, cursor_pk: int) -> None:
        await self._pool.execute(
            "INSERT INTO worker_progress (worker, cursor_pk) VALUES ($1, $2)"
            " ON CONFLICT (worker) DO UPDATE SET cursor_pk = $2, updated_at = now()",
            worker,
            cursor_pk,
        )

    async def enqueue(self, bucket_id: int, version_pk: int, targets: list[str]) -> None:
        async with self._pool.acquire() as con:
            await replication.enqueue(con, bucket_id, version_pk, targets)

    async def retire_placement(
        self, bucket_id: int, version_pk: int, backend: str, keep_at_least: int
    ) -> bool:
        """Drop the replica on ``backend`` if at least ``keep_at_least`` other ok replicas
        remain; its bytes are queued for deletion in the same transaction."""
        async with self._pool.acquire() as con, con.transaction():
            await con.execute(
                "SELECT 1 FROM object_versions WHERE bucket_id = $1 AND id = $2 FOR UPDATE",
                bucket_id,
                version_pk,
            )
            others = await con.fetchval(
                "SELECT count(*) FROM placements WHERE bucket_id = $1 AND version_pk = $2"
                " AND state = 'ok' AND backend <> $3 AND expires_at IS NULL",
                bucket_id,
                version_pk,
                backend,
            )
            if others < keep_at_least:
                return False
            await con.execute(
                "INSERT INTO backend_deletions (bucket_id, backend, backend_key)"
                " SELECT bucket_id, backend, unnest(coalesce(segment_keys, ARRAY[backend_key]))"
                " FROM placements WHERE bucket_id = $1 AND version_pk = $2 AND backend = $3",
                bucket_id,
                version_pk,
                backend,
            )
            await con.execute(
                "DELETE FROM placements WHERE bucket_id = $1 AND version_pk = $2 AND backend = $3",
                bucket_id,
                version_pk,
                backend,
            )
            return True

    async def only_on(self, backend: str, limit: int) -> list[tuple[str, str, str, int]]:
        """(bucket, key, version id, size) of complete versions whose every ok replica is on
        ``backend``: what would be lost with it."""
        rows = await self._pool.fetch(
            "SELECT b.name, v.key, v.version_id, v.size_bytes FROM object_versions v"
            " JOIN buckets b ON b.id = v.bucket_id"
            " WHERE v.state = 'complete' AND NOT v.is_delete_marker"
            " AND EXISTS (SELECT 1 FROM placements p WHERE p.bucket_id = v.bucket_id"
            "  AND p.version_pk = v.id AND p.state = 'ok' AND p.backend = $1)"
            " AND NOT EXISTS (SELECT 1 FROM placements p WHERE p.bucket_id = v.bucket_id"
            "  AND p.version_pk = v.id AND p.state = 'ok' AND p.backend <> $1)"
            " ORDER BY v.id LIMIT $2",
            backend,
            limit,
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    async def bytes_per_backend(self) -> list[tuple[str, str | None, int, int]]:
        """(backend, tier, replicas, bytes) over ok placements of complete versions."""
        rows = await self._pool.fetch(
            "SELECT p.backend, bk.tier, count(*) AS replicas,"
            " coalesce(sum(p.size_bytes), 0)::bigint AS bytes FROM placements p"
            " JOIN object_versions v ON v.bucket_id = p.bucket_id AND v.id = p.version_pk"
            " AND v.state = 'complete'"
            " LEFT JOIN backends bk ON bk.name = p.backend"
            " WHERE p.state = 'ok' GROUP BY p.backend, bk.tier ORDER BY p.backend"
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    async def bytes_per_tier(self) -> list[tuple[str, int, int]]:
        """(tier, replicas, bytes) over ok placements of complete versions; a backend no
        longer in the topology counts as tier ``unknown``."""
        rows = await self._pool.fetch(
            "SELECT coalesce(bk.tier, 'unknown'), count(*), coalesce(sum(p.size_bytes), 0)::bigint"
            " FROM placements p JOIN object_versions v ON v.bucket_id = p.bucket_id"
            " AND v.id = p.version_pk AND v.state = 'complete'"
            " LEFT JOIN backends bk ON bk.name = p.backend"
            " WHERE p.state = 'ok' GROUP BY 1 ORDER BY 1"
        )
        return [(r[0], r[1], r[2]) for r in rows]

    async def try_lock(self, con: Conn, worker: str) -> bool:
        hold_session_state(con)
        locked: bool = await con.fetchval(
            "SELECT pg_try_advisory_lock(hashtext('worker:' || $1))", worker
        )
        return locked


@dataclass(frozen=True, slots=True)
class PlacementCheck:
    """One ok placement with what its bytes must be."""

    placement_id: int
    bucket_id: int
    version_pk: int
    backend: str
    backend_key: str
    segment_keys: list[str] | None
    size_bytes: int
    part_sizes: list[int] | None
    part_checksums: list[str] | None
    checksum_algorithm: str | None
    checksum_value: str | None
    encryption: dict[str, Any] | None = None


class ScrubRepo:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def placements(self, after_id: int, limit: int) -> list[PlacementCheck]:
        rows = await self._pool.fetch(
            "SELECT p.id, p.bucket_id, p.version_pk, p.backend, p.backend_key, p.segment_keys,"
            " v.size_bytes, v.part_sizes, v.part_checksums, v.checksum_algorithm,"
            " v.checksum_value, v.encryption FROM placements p"
            " JOIN object_versions v ON v.bucket_id = p.bucket_id AND v.id = p.version_pk"
            " WHERE p.id > $1 AND p.state = 'ok' AND v.state = 'complete' ORDER BY p.id LIMIT $2",
            after_id,
            limit,
        )
        return [
            PlacementCheck(
                r[0], r[1], r[2], r[3], r[4], list(r[5]) if r[5] else None, r[6],
                list(r[7]) if r[7] else None, list(r[8]) if r[8] else None, r[9], r[10], r[11],
            )
            for r in rows
        ]  # fmt: skip

    async def mark_verified(self, checks: list[PlacementCheck]) -> None:
        """A batch spanning buckets: on Citus one statement per shard touched."""
        if checks:
            await self._pool.execute(
                "UPDATE placements SET verified_at = now() WHERE (id, bucket_id) IN"
                " (SELECT * FROM unnest($1::bigint[], $2::bigint[]))",
                [c.placement_id for c in checks],
                [c.bucket_id for c in checks],
            )

    async def repair(self, check: PlacementCheck) -> bool:
        """Drop a damaged replica and queue a fresh copy of it, if another replica exists.

        The bytes are not queued for deletion: the copy overwrites them under the same key.
        """
        async with self._pool.acquire() as con, con.transaction():
            await con.execute(
                "SELECT 1 FROM object_versions WHERE bucket_id = $1 AND id = $2 FOR UPDATE",
                check.bucket_id,
                check.version_pk,
            )
            others = await con.fetchval(
                "SELECT count(*) FROM placements WHERE bucket_id = $1 AND version_pk = $2"
                " AND state = 'ok' AND id <> $3",
                check.bucket_id,
                check.version_pk,
                check.placement_id,
            )
            if not others:
                return False
            job = await con.fetchval(
                "DELETE FROM placements WHERE bucket_id = $1 AND id = $2 RETURNING warmup_job_id",
                check.bucket_id,
                check.placement_id,
            )
            # A warm-up's copy is made again for its job (temporary), any other as a permanent one.
            await replication.enqueue(
                con, check.bucket_id, check.version_pk, [check.backend], warmup_job_id=job
            )
            return True

    async def unreferenced(self, backend: str, keys: list[str]) -> list[str]:
        """Keys no placement, part, queued copy or queued deletion accounts for: orphans."""
        rows = await self._pool.fetch(
            "SELECT k FROM unnest($2::text[]) AS k WHERE NOT EXISTS ("
            " SELECT 1 FROM placements p WHERE p.backend = $1"
            " AND (p.backend_key = k OR k = ANY(p.segment_keys)))"
            " AND NOT EXISTS (SELECT 1 FROM multipart_parts mp WHERE mp.backend_key = k"
            " AND $1 = ANY(mp.backends))"
            " AND NOT EXISTS (SELECT 1 FROM backend_deletions d WHERE d.backend = $1"
            " AND d.backend_key = k)"
            # A replica dropped for repair keeps its key until the queued copy rewrites it.
            " AND NOT EXISTS (SELECT 1 FROM replication_queue q JOIN placements p"
            " ON p.bucket_id = q.bucket_id AND p.version_pk = q.version_pk"
            " WHERE q.target_backend = $1"
            " AND (p.backend_key = k OR k = ANY(p.segment_keys)))",
            backend,
            keys,
        )
        return [r["k"] for r in rows]
