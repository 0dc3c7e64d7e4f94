"""Object versions and their placements.

Invariants:
- at most one row per (bucket, key) has ``is_latest``; only ``complete`` rows are latest;
- a version's bytes are referenced by its placements until the version is ``deleted``, at
  which point the placements move to ``backend_deletions`` in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from metadata import usage
from metadata.db import Conn
from metadata.models import CompletedVersion, NewVersion, PlacementRow, VersionRow

_VERSION_COLUMNS = (
    "id AS pk, seq, bucket_id, key, version_id, is_null_version, state, is_latest,"
    " is_delete_marker, size_bytes, etag, content_type, headers, user_metadata, tags,"
    " storage_class,"
    " checksum_algorithm, checksum_type, checksum_value, part_sizes, part_checksums, created_at,"
    " acl, encryption"
)


_PLACEMENTS_AGG = (
    "(SELECT array_agg(ARRAY[p.backend, p.backend_key, p.size_bytes::text,"
    " array_to_string(p.segment_keys, chr(31))] ORDER BY p.id) FROM placements p"
    " WHERE p.bucket_id = v.bucket_id AND p.version_pk = v.id AND p.state = 'ok') AS placements"
)


def _placement(values: list[str | None]) -> PlacementRow:
    # Segment keys are joined with the unit separator (chr 31), which backend keys
    # ([A-Za-z0-9._/-]) can never contain.
    backend, backend_key, size, segments = values
    return PlacementRow(
        backend=str(backend),
        backend_key=str(backend_key),
        segment_keys=segments.split("\x1f") if segments else None,
        state="ok",
        size_bytes=int(str(size)),
    )


def version_from_record(
    record: asyncpg.Record | dict[str, object] | None, placements: list[PlacementRow] | None = None
) -> VersionRow:
    assert record is not None, "a RETURNING clause always yields a row"
    values = dict(record)
    values["part_sizes"] = list(values["part_sizes"]) if values["part_sizes"] else None
    values["part_checksums"] = list(values["part_checksums"]) if values["part_checksums"] else None
    return VersionRow(**values, placements=placements or [])


class WriteConditionFailed(Exception):
    """If-Match on a write did not hold; ``missing`` when there is no current object."""

    def __init__(self, missing: bool) -> None:
        self.missing = missing
        super().__init__("no current object" if missing else "ETag does not match")


class VersionNotPending(Exception):
    """The pending version was reaped by gc (or failed) before its writer committed."""


async def _lock_key(con: Conn, bucket_id: int, key: str) -> None:
    # Serialises writers of one key without a row to lock when the key is new.
    await con.execute("SELECT pg_advisory_xact_lock($1::int, hashtext($2))", bucket_id, key)


async def _retire_version(con: Conn, bucket_id: int, pk: int, delay_s: float) -> None:
    """Mark a version deleted and queue its bytes for deletion after ``delay_s``
    (migrations/0015: one round trip)."""
    await con.execute("SELECT retire_version($1, $2, $3)", bucket_id, pk, delay_s)


async def _promote_newest(con: Conn, bucket_id: int, key: str) -> None:
    await con.execute(
        "UPDATE object_versions SET is_latest = true WHERE bucket_id = $1 AND id = ("
        " SELECT id FROM object_versions WHERE bucket_id = $1 AND key = $2"
        " AND state = 'complete' ORDER BY seq DESC LIMIT 1)",
        bucket_id,
        key,
    )


async def insert_pending(con: Conn | asyncpg.Pool, new: NewVersion, reserve_bytes: int = 0) -> int:
    """Insert the pending version and its pending placements, reserving ``reserve_bytes``
    and one object against the quotas (QuotaExceededError otherwise, and nothing is
    written, or the caller's transaction must roll back). migrations/0015."""
    async with usage.quota_errors():
        pk: int = await con.fetchval(
            "SELECT begin_version($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            new.bucket_id,
            new.key,
            new.version_id,
            new.is_null_version,
            new.content_type,
            new.headers,
            new.user_metadata,
            new.tags,
            new.storage_class,
            reserve_bytes,
            new.acl,
            new.encryption,
            list(new.backends),
            new.backend_key,
        )
    return pk


async def _retire_null_version(
    con: Conn, bucket_id: int, key: str, keep: int, delay_s: float
) -> None:
    old = await con.fetchval(
        "SELECT id FROM object_versions WHERE bucket_id = $1 AND key = $2"
        " AND is_null_version AND state = 'complete' AND id <> $3",
        bucket_id,
        key,
        keep,
    )
    if old is not None:
        await _retire_version(con, bucket_id, old, delay_s)


# migrations/0015_commit_functions.sql: the whole commit in one round trip.
_COMMIT = (
    "SELECT * FROM commit_version($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,"
    " $14, $15, $16, $17, $18)"
)


async def commit_pending(
    con: Conn | asyncpg.Pool,
    bucket_id: int,
    pk: int,
    done: CompletedVersion,
    *,
    if_none_match_star: bool,
    delay_s: float,
    count_bytes: bool = True,
    if_match: str | None = None,
) -> VersionRow | None:
    """Make a pending version the latest, inside the caller's transaction or (given the
    pool) in a statement of its own.

    Pending placements become ok where the write succeeded; the others are dropped (their
    partial bytes queued for deletion) and left to the replication queue. Returns ``None``
    (changing nothing) when ``if_none_match_star`` is set and a current object exists.
    Raises :class:`VersionNotPending` if gc reaped the version first, and
    :class:`WriteConditionFailed` when ``if_match`` does not hold.
    """
    wanted = None if if_match is None else [t.strip().strip('"') for t in if_match.split(",")]
    row = await con.fetchrow(
        _COMMIT,
        bucket_id,
        pk,
        done.size_bytes,
        done.etag,
        done.checksum_algorithm,
        done.checksum_type,
        done.checksum_value,
        done.part_sizes,
        done.part_checksums,
        done.encryption,
        done.stored_bytes,
        done.segment_keys,
        None if done.stored_on is None else list(done.stored_on),
        list(done.replicate_to),
        if_none_match_star,
        wanted,
        delay_s,
        count_bytes,
    )
    assert row is not None, "commit_version always returns a row"
    status: str = row["status"]
    if status == "not_pending":
        raise VersionNotPending(pk)
    if status == "exists":
        return None
    if status != "committed":
        raise WriteConditionFailed(missing=status == "missing")
    values = dict(row)
    del values["status"]
    return version_from_record(values)


class ObjectRepo:
    def __init__(self, pool: asyncpg.Pool, *, deletion_delay_s: float = 300.0) -> None:
        self._pool = pool
        # Readers still streaming a replaced version keep their bytes this long.
        self._delay_s = deletion_delay_s

    async def set_acl(self, bucket_id: int, version_pk: int, acl: str) -> None:
        await self._pool.execute(
            "UPDATE object_versions SET acl = $3 WHERE bucket_id = $1 AND id = $2",
            bucket_id,
            version_pk,
            acl,
        )

    async def begin_write(self, new: NewVersion, reserve_bytes: int = 0) -> int:
        """Record a pending version and its pending placements before any byte moves,
        reserving its declared size against the quotas."""
        # One statement outside a transaction block: it commits inside the server.
        return await insert_pending(self._pool, new, reserve_bytes)

    async def commit_write(
        self,
        bucket_id: int,
        pk: int,
        done: CompletedVersion,
        *,
        if_none_match_star: bool = False,
        if_match: str | None = None,
    ) -> VersionRow | None:
        """Make a pending version the latest, in one statement outside a transaction
        block: it commits inside the server, so the bucket's counter row, which every
        writer of the bucket locks, is not held across a round trip."""
        return await commit_pending(
            self._pool,
            bucket_id,
            pk,
            done,
            if_none_match_star=if_none_match_star,
            delay_s=self._delay_s,
            if_match=if_match,
        )

    async def fail_write(self, bucket_id: int, pk: int) -> bool:
        """End a pending version as failed, releasing what it reserved. True when its bytes
        are the writer's to remove (it ended the version, or gc reaped it); False when the
        version committed, its answer lost: then the bytes are the object's
        (migrations/0018)."""
        return bool(await self._pool.fetchval("SELECT fail_version($1, $2)", bucket_id, pk))

    async def get(self, bucket_id: int, key: str, version_id: str | None) -> VersionRow | None:
        """The latest version, or a given one ("null" names the null version)."""
        args: tuple[str, ...] = ()
        if version_id is None:
            where = "is_latest"
        elif version_id == "null":
            where = "is_null_version AND state = 'complete'"
        else:
            where, args = "version_id = $3 AND state = 'complete'", (version_id,)
        # One round trip: the version and its replicas (a GET's hot path).
        record = await self._pool.fetchrow(
            f"SELECT {_VERSION_COLUMNS}, {_PLACEMENTS_AGG} FROM object_versions v"
            f" WHERE bucket_id = $1 AND key = $2 AND {where}",
            bucket_id,
            key,
            *args,
        )
        if record is None:
            return None
        values = dict(record)
        placements = [_placement(p) for p in values.pop("placements") or ()]
        return version_from_record(values, placements)

    async def get_by_pk(self, bucket_id: int, pk: int) -> VersionRow | None:
        record = await self._pool.fetchrow(
            f"SELECT {_VERSION_COLUMNS} FROM object_versions WHERE bucket_id = $1 AND id = $2",
            bucket_id,
            pk,
        )
        if record is None:
            return None
        return version_from_record(record, await self._placements(bucket_id, pk))

    async def _placements(self, bucket_id: int, pk: int) -> list[PlacementRow]:
        rows = await self._pool.fetch(
            "SELECT backend, backend_key, segment_keys, state, size_bytes FROM placements"
            " WHERE bucket_id = $1 AND version_pk = $2 AND state = 'ok' ORDER BY id",
            bucket_id,
            pk,
        )
        return [
            PlacementRow(
                backend=r["backend"],
                backend_key=r["backend_key"],
                segment_keys=list(r["segment_keys"]) if r["segment_keys"] else None,
                state=r["state"],
                size_bytes=r["size_bytes"],
            )
            for r in rows
        ]

    async def set_tags(self, bucket_id: int, pk: int, tags: dict[str, str]) -> None:
        await self._pool.execute(
            "UPDATE object_versions SET tags = $3, updated_at = now()"
            " WHERE bucket_id = $1 AND id = $2",
            bucket_id,
            pk,
            tags,
        )

    async def delete_version(
        self, bucket_id: int, key: str, version_id: str, *, unless_latest: bool = False
    ) -> VersionRow | None:
        """Permanently delete one version; the next newest becomes latest. With
        ``unless_latest``, a version that is the latest is left alone (None)."""
        async with self._pool.acquire() as con, con.transaction():
            await _lock_key(con, bucket_id, key)
            cond = "is_null_version" if version_id == "null" else "version_id = $3"
            if unless_latest:
                cond += " AND NOT is_latest"
            args: Sequence[object] = () if version_id == "null" else (version_id,)
            record = await con.fetchrow(
                f"SELECT {_VERSION_COLUMNS} FROM object_versions WHERE bucket_id = $1"
                f" AND key = $2 AND state = 'complete' AND {cond}",
                bucket_id,
                key,
                *args,
            )
            if record is None:
                return None
            await _retire_version(con, bucket_id, record["pk"], self._delay_s)
            if record["is_latest"]:
                await _promote_newest(con, bucket_id, key)
            return version_from_record(record)

    async def delete_current(
        self, bucket_id: int, key: str, versioning: str, marker_version_id: str
    ) -> VersionRow | None:
        """DeleteObject without a versionId, as S3 does for each versioning state.

        Unversioned: the object is removed. Enabled: a delete marker becomes latest.
        Suspended: the null version is removed and a null delete marker becomes latest.
        Returns the delete marker created, if any.
        """
        async with self._pool.acquire() as con, con.transaction():
            await _lock_key(con, bucket_id, key)
            return await self._delete_current(con, bucket_id, key, versioning, marker_version_id)

    async def expire_current(
        self, bucket_id: int, key: str, versioning: str, version_id: str, marker_version_id: str
    ) -> bool:
        """DeleteObject without a versionId, but only while ``version_id`` is still the
        current version of ``key`` (lifecycle expiration); False when it no longer is."""
        async with self._pool.acquire() as con, con.transaction():
            await _lock_key(con, bucket_id, key)
            latest = await con.fetchval(
                "SELECT version_id FROM object_versions"
                " WHERE bucket_id = $1 AND key = $2 AND is_latest",
                bucket_id,
                key,
            )
            if latest != version_id:
                return False
            await self._delete_current(con, bucket_id, key, versioning, marker_version_id)
            return True

    async def _delete_current(
        self, con: Conn, bucket_id: int, key: str, versioning: str, marker_version_id: str
    ) -> VersionRow | None:
        if versioning == "Unversioned":
            await _retire_null_version(con, bucket_id, key, 0, self._delay_s)
            return None
        await con.execute(
            "UPDATE object_versions SET is_latest = false"
            " WHERE bucket_id = $1 AND key = $2 AND is_latest",
            bucket_id,
            key,
        )
        is_null = versioning == "Suspended"
        if is_null:
            await _retire_null_version(con, bucket_id, key, 0, self._delay_s)
        record = await con.fetchrow(
            "INSERT INTO object_versions (bucket_id, key, version_id, is_null_version,"
            " state, is_latest, is_delete_marker)"
            " VALUES ($1, $2, $3, $4, 'complete', true, true)"
            f" RETURNING {_VERSION_COLUMNS}",
            bucket_id,
            key,
            marker_version_id,
            is_null,
        )
        return version_from_record(record)

    async def placements_of_pending(self, older_than_s: float, limit: int) -> list[tuple[int, int]]:
        """(bucket id, version pk) of pending versions abandoned by a writer that died (for
        gc): a scan of every bucket."""
        rows = await self._pool.fetch(
            "SELECT bucket_id, id FROM object_versions WHERE state = 'pending'"
            " AND created_at < now() - make_interval(secs => $1) ORDER BY id LIMIT $2",
            older_than_s,
            limit,
        )
        return [(r["bucket_id"], r["id"]) for r in rows]

    async def reap_version(self, bucket_id: int, pk: int) -> None:
        """Queue the bytes of a dead version for deletion and drop its rows."""
        # migrations/0017: one statement, its own transaction.
        await self._pool.execute("SELECT reap_version($1, $2)", bucket_id, pk)

    async def dead_versions(self, older_than_s: float, limit: int) -> list[tuple[int, int]]:
        """(bucket id, version pk) of failed and deleted versions (for gc): a scan of every
        bucket."""
        rows = await self._pool.fetch(
            "SELECT bucket_id, id FROM object_versions WHERE state IN ('failed', 'deleted')"
            " AND updated_at < now() - make_interval(secs => $1) ORDER BY id LIMIT $2",
            older_than_s,
            limit,
        )
        return [(r["bucket_id"], r["id"]) for r in rows]
