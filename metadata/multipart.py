"""Multipart uploads and their parts."""

from __future__ import annotations

import asyncpg

from metadata import usage
from metadata.db import Conn
from metadata.models import CompletedVersion, NewVersion, PartRow, UploadRow, VersionRow
from metadata.objects import commit_pending, insert_pending

_UPLOAD_COLUMNS = (
    "id AS pk, upload_id, bucket_id, key, backend, state, content_type, headers,"
    " user_metadata, tags, storage_class, checksum_algorithm, checksum_type,"
    " owner_access_key, initiated_at, acl, encryption"
)
_PART_COLUMNS = (
    "part_number, size_bytes, etag, checksum_value, backend_key, created_at,"
    " coalesce(backends, ARRAY[]::text[]) AS backends, stored_checksum"
)


class MultipartRepo:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(self, upload: UploadRow) -> None:
        await self._pool.execute(
            "INSERT INTO multipart_uploads (upload_id, bucket_id, key, backend, state,"
            " content_type, headers, user_metadata, tags, storage_class, checksum_algorithm,"
            " checksum_type, owner_access_key, acl, encryption)"
            " VALUES ($1, $2, $3, $4, 'open', $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            upload.upload_id,
            upload.bucket_id,
            upload.key,
            upload.backend,
            upload.content_type,
            upload.headers,
            upload.user_metadata,
            upload.tags,
            upload.storage_class,
            upload.checksum_algorithm,
            upload.checksum_type,
            upload.owner_access_key,
            upload.acl,
            upload.encryption,
        )

    async def get_open(self, bucket_id: int, key: str, upload_id: str) -> UploadRow | None:
        record = await self._pool.fetchrow(
            f"SELECT {_UPLOAD_COLUMNS} FROM multipart_uploads"
            " WHERE upload_id = $1 AND bucket_id = $2 AND key = $3 AND state = 'open'",
            upload_id,
            bucket_id,
            key,
        )
        return UploadRow(**dict(record)) if record else None

    async def put_part(self, upload_pk: int, part: PartRow, intent_ids: list[int]) -> bool:
        try:
            return await self._put_part(upload_pk, part, intent_ids)
        except _Rollback:
            return False

    async def _put_part(self, upload_pk: int, part: PartRow, intent_ids: list[int]) -> bool:
        """Record a stored part, replacing an earlier upload of the same number.

        ``intent_ids`` are the deletions queued before the bytes were written, one per
        target; those of the backends that stored the part are cancelled here. Returns
        False when the upload is no longer open or gc already claimed an intent (the caller
        queues the bytes for deletion).
        """
        async with self._pool.acquire() as con, con.transaction():
            # Checked first: returning False must leave the intents (and the reservation
            # they carry) for gc, never half-removed.
            state = await con.fetchval(
                "SELECT state FROM multipart_uploads WHERE id = $1 FOR SHARE", upload_pk
            )
            if state != "open":
                return False
            cancelled = await con.fetchrow(
                "WITH gone AS (DELETE FROM backend_deletions WHERE id = ANY($1::bigint[])"
                " AND attempts = 0 AND backend = ANY($2::text[])"
                " RETURNING id, reserved_bucket_id, reserved_bytes)"
                " SELECT count(*) AS n, max(reserved_bucket_id) AS bucket_id,"
                " coalesce(sum(reserved_bytes), 0)::bigint AS reserved FROM gone",
                intent_ids,
                part.backends,
            )
            if cancelled is None or cancelled["n"] != len(part.backends):
                raise _Rollback()
            await _queue_parts(con, upload_pk, "part_number = $2", part.part_number)
            bucket_id = await con.fetchval(
                "SELECT bucket_id FROM multipart_uploads WHERE id = $1", upload_pk
            )
            await usage.adjust(con, bucket_id, part.size_bytes, 0, -cancelled["reserved"], 0)
            await con.execute(
                "INSERT INTO multipart_parts (upload_pk, part_number, size_bytes, etag,"
                " checksum_value, backend_key, backends, stored_checksum)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                " ON CONFLICT (upload_pk, part_number) DO UPDATE SET"
                " size_bytes = EXCLUDED.size_bytes, etag = EXCLUDED.etag,"
                " checksum_value = EXCLUDED.checksum_value, backend_key = EXCLUDED.backend_key,"
                " backends = EXCLUDED.backends, stored_checksum = EXCLUDED.stored_checksum,"
                " created_at = now()",
                upload_pk,
                part.part_number,
                part.size_bytes,
                part.etag,
                part.checksum_value,
                part.backend_key,
                part.backends,
                part.stored_checksum,
            )
            return True

    async def add_part_backend(self, upload_pk: int, part_number: int, backend: str) -> None:
        """A copy of the part now also lives on ``backend`` (completion assembling)."""
        await self._pool.execute(
            "UPDATE multipart_parts SET backends = array_append(backends, $3)"
            " WHERE upload_pk = $1 AND part_number = $2 AND NOT ($3 = ANY(backends))",
            upload_pk,
            part_number,
            backend,
        )

    async def parts(self, upload_pk: int, after: int = 0, limit: int = 10_000) -> list[PartRow]:
        records = await self._pool.fetch(
            f"SELECT {_PART_COLUMNS} FROM multipart_parts WHERE upload_pk = $1"
            " AND part_number > $2 ORDER BY part_number LIMIT $3",
            upload_pk,
            after,
            limit,
        )
        return [PartRow(**dict(r)) for r in records]

    async def finish(self, upload_pk: int, state: str, keep_parts: list[int]) -> bool:
        """Close the upload; queue the bytes of every part not kept. False if not open."""
        async with self._pool.acquire() as con, con.transaction():
            closed = await con.fetchval(
                "UPDATE multipart_uploads SET state = $2 WHERE id = $1 AND state = 'open'"
                " RETURNING id",
                upload_pk,
                state,
            )
            if closed is None:
                return False
            await _queue_parts(con, upload_pk, "NOT (part_number = ANY($2::int[]))", keep_parts)
            await con.execute("DELETE FROM multipart_parts WHERE upload_pk = $1", upload_pk)
            return True

    async def complete(
        self,
        upload_pk: int,
        keep_parts: list[int],
        new: NewVersion,
        done: CompletedVersion,
        *,
        if_none_match_star: bool,
        if_match: str | None = None,
    ) -> VersionRow | None | bool:
        """Close the upload and commit its object in one transaction.

        The parts' bytes become the version's segments, so closing the upload and
        committing the version must never be separated: an abort in between would delete
        bytes a version references. Returns False if the upload is no longer open, None if
        ``if_none_match_star`` failed (nothing changes), else the committed version.
        """
        try:
            async with self._pool.acquire() as con, con.transaction():
                return await _complete_in(
                    con, upload_pk, keep_parts, new, done, if_none_match_star, if_match
                )
        except _Rollback:
            return None

    async def list_open(
        self, bucket_id: int, prefix: str, key_marker: str, upload_id_marker: str, limit: int
    ) -> list[UploadRow]:
        records = await self._pool.fetch(
            f"SELECT {_UPLOAD_COLUMNS} FROM multipart_uploads"
            " WHERE bucket_id = $1 AND state = 'open' AND starts_with(key, $2)"
            " AND (key > $3 OR (key = $3 AND upload_id > $4))"
            " ORDER BY key, upload_id LIMIT $5",
            bucket_id,
            prefix,
            key_marker,
            upload_id_marker,
            limit,
        )
        return [UploadRow(**dict(r)) for r in records]


class _Rollback(Exception):
    pass


async def _complete_in(
    con: Conn,
    upload_pk: int,
    keep_parts: list[int],
    new: NewVersion,
    done: CompletedVersion,
    if_none_match_star: bool,
    if_match: str | None,
) -> VersionRow | bool:
    closed = await con.fetchval(
        "UPDATE multipart_uploads SET state = 'completed'"
        " WHERE id = $1 AND state = 'open' RETURNING id",
        upload_pk,
    )
    if closed is None:
        return False
    pk = await insert_pending(con, new)
    version = await commit_pending(
        con,
        pk,
        done,
        if_none_match_star=if_none_match_star,
        delay_s=0,
        count_bytes=False,
        if_match=if_match,
    )
    if version is None:
        raise _Rollback()
    await _queue_parts(con, upload_pk, "NOT (part_number = ANY($2::int[]))", keep_parts)
    # Kept parts live on as segments, but copies on backends outside the version's
    # placements are no longer referenced by anything.
    await con.execute(
        "INSERT INTO backend_deletions (backend, backend_key)"
        " SELECT b, mp.backend_key FROM multipart_parts mp, unnest(mp.backends) AS b"
        " WHERE mp.upload_pk = $1 AND mp.part_number = ANY($2::int[])"
        " AND NOT (b = ANY($3::text[]))",
        upload_pk,
        keep_parts,
        # A backend the replication queue will fill is rewritten under the same keys: a
        # deletion queued now could land after the copy.
        list(done.stored_on or new.backends) + list(done.replicate_to),
    )
    await con.execute("DELETE FROM multipart_parts WHERE upload_pk = $1", upload_pk)
    return version


async def _queue_parts(con: Conn, upload_pk: int, condition: str, arg: object) -> None:
    """Queue for deletion the bytes of the parts matching ``condition`` ($2 is ``arg``),
    and take them out of the usage."""
    dropped = await con.fetchrow(
        "SELECT u.bucket_id, coalesce(sum(mp.size_bytes), 0)::bigint AS bytes"
        " FROM multipart_uploads u LEFT JOIN multipart_parts mp ON mp.upload_pk = u.id"
        f" AND mp.counted AND {condition.replace('part_number', 'mp.part_number')}"
        " WHERE u.id = $1 GROUP BY u.bucket_id",
        upload_pk,
        arg,
    )
    if dropped is not None:
        await usage.adjust(con, dropped["bucket_id"], -dropped["bytes"])
    await con.execute(
        "INSERT INTO backend_deletions (backend, backend_key)"
        " SELECT b, mp.backend_key FROM multipart_parts mp,"
        " unnest(mp.backends) AS b"
        f" WHERE mp.upload_pk = $1 AND {condition}",
        upload_pk,
        arg,
    )
