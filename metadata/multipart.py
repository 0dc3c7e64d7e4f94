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

    async def put_part(
        self, bucket_id: int, upload_pk: int, part: PartRow, intent_ids: list[int]
    ) -> bool:
        try:
            return await self._put_part(bucket_id, upload_pk, part, intent_ids)
        except _Rollback:
            return False

    async def _put_part(
        self, bucket_id: int, upload_pk: int, part: PartRow, intent_ids: list[int]
    ) -> bool:
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
                "SELECT state FROM multipart_uploads WHERE bucket_id = $1 AND id = $2 FOR SHARE",
                bucket_id,
                upload_pk,
            )
            if state != "open":
                return False
            cancelled = await con.fetchrow(
                "WITH gone AS (DELETE FROM backend_deletions WHERE bucket_id = $3"
                " AND id = ANY($1::bigint[]) AND attempts = 0 AND backend = ANY($2::text[])"
                " RETURNING id, reserved_bytes)"
                " SELECT count(*) AS n, coalesce(sum(reserved_bytes), 0)::bigint AS reserved"
                " FROM gone",
                intent_ids,
                part.backends,
                bucket_id,
            )
            if cancelled is None or cancelled["n"] != len(part.backends):
                raise _Rollback()
            await _queue_parts(con, bucket_id, upload_pk, "part_number = $3", part.part_number)
            await usage.adjust(con, bucket_id, part.size_bytes, 0, -cancelled["reserved"], 0)
            await con.execute(
                "INSERT INTO multipart_parts (upload_pk, part_number, size_bytes, etag,"
                " checksum_value, backend_key, backends, stored_checksum, bucket_id)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                " ON CONFLICT (upload_pk, part_number, bucket_id) DO UPDATE SET"
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
                bucket_id,
            )
            return True

    async def add_part_backend(
        self, bucket_id: int, upload_pk: int, part_number: int, backend: str
    ) -> None:
        """A copy of the part now also lives on ``backend`` (completion assembling)."""
        await self._pool.execute(
            "UPDATE multipart_parts SET backends = array_append(backends, $3)"
            " WHERE upload_pk = $1 AND part_number = $2 AND bucket_id = $4"
            " AND NOT ($3 = ANY(backends))",
            upload_pk,
            part_number,
            backend,
            bucket_id,
        )

    async def parts(
        self, bucket_id: int, upload_pk: int, after: int = 0, limit: int = 10_000
    ) -> list[PartRow]:
        records = await self._pool.fetch(
            f"SELECT {_PART_COLUMNS} FROM multipart_parts WHERE bucket_id = $1"
            " AND upload_pk = $2 AND part_number > $3 ORDER BY part_number LIMIT $4",
            bucket_id,
            upload_pk,
            after,
            limit,
        )
        return [PartRow(**dict(r)) for r in records]

    async def finish(
        self, bucket_id: int, upload_pk: int, state: str, keep_parts: list[int]
    ) -> bool:
        """Close the upload; queue the bytes of every part not kept. False if not open."""
        async with self._pool.acquire() as con, con.transaction():
            closed = await con.fetchval(
                "UPDATE multipart_uploads SET state = $3 WHERE bucket_id = $1 AND id = $2"
                " AND state = 'open' RETURNING id",
                bucket_id,
                upload_pk,
                state,
            )
            if closed is None:
                return False
            await _queue_parts(
                con, bucket_id, upload_pk, "NOT (part_number = ANY($3::int[]))", keep_parts
            )
            await _drop_parts(con, bucket_id, upload_pk)
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
    # The upload and the version it becomes are in the same bucket.
    bucket_id = new.bucket_id
    closed = await con.fetchval(
        "UPDATE multipart_uploads SET state = 'completed'"
        " WHERE bucket_id = $1 AND id = $2 AND state = 'open' RETURNING id",
        bucket_id,
        upload_pk,
    )
    if closed is None:
        return False
    pk = await insert_pending(con, new)
    version = await commit_pending(
        con,
        bucket_id,
        pk,
        done,
        if_none_match_star=if_none_match_star,
        delay_s=0,
        count_bytes=False,
        if_match=if_match,
    )
    if version is None:
        raise _Rollback()
    await _queue_parts(con, bucket_id, upload_pk, "NOT (part_number = ANY($3::int[]))", keep_parts)
    # Kept parts live on as segments, but copies on backends outside the version's
    # placements are no longer referenced by anything.
    await con.execute(
        "INSERT INTO backend_deletions (bucket_id, backend, backend_key)"
        " SELECT mp.bucket_id, b, mp.backend_key FROM multipart_parts mp,"
        " unnest(mp.backends) AS b WHERE mp.bucket_id = $4 AND mp.upload_pk = $1"
        " AND mp.part_number = ANY($2::int[]) AND NOT (b = ANY($3::text[]))",
        upload_pk,
        keep_parts,
        # A backend the replication queue will fill is rewritten under the same keys: a
        # deletion queued now could land after the copy.
        list(done.stored_on or new.backends) + list(done.replicate_to),
        bucket_id,
    )
    await _drop_parts(con, bucket_id, upload_pk)
    return version


async def _drop_parts(con: Conn, bucket_id: int, upload_pk: int) -> None:
    await con.execute(
        "DELETE FROM multipart_parts WHERE bucket_id = $1 AND upload_pk = $2", bucket_id, upload_pk
    )


async def _queue_parts(
    con: Conn, bucket_id: int, upload_pk: int, condition: str, arg: object
) -> None:
    """Queue for deletion the bytes of the parts matching ``condition`` ($3 is ``arg``),
    and take them out of the usage."""
    dropped = await con.fetchval(
        "SELECT coalesce(sum(size_bytes), 0)::bigint FROM multipart_parts"
        f" WHERE bucket_id = $1 AND upload_pk = $2 AND counted AND {condition}",
        bucket_id,
        upload_pk,
        arg,
    )
    await usage.adjust(con, bucket_id, -dropped)
    await con.execute(
        "INSERT INTO backend_deletions (bucket_id, backend, backend_key)"
        " SELECT mp.bucket_id, b, mp.backend_key FROM multipart_parts mp,"
        " unnest(mp.backends) AS b"
        f" WHERE mp.bucket_id = $1 AND mp.upload_pk = $2 AND {condition}",
        bucket_id,
        upload_pk,
        arg,
    )
