"""Listing answered from PostgreSQL alone.

A delimiter listing must not read every key below a common prefix: the recursive query
below is a loose index scan that jumps from one common prefix straight past its last key,
so a page costs one index probe per returned entry whatever the bucket holds.
"""

from __future__ import annotations

import asyncpg

from metadata.models import ListedObject, ListEntry, VersionRow
from metadata.objects import _VERSION_COLUMNS, version_from_record

# LastModified is formatted by PostgreSQL: a page holds a thousand of them, and to_char
# costs it less than decoding a timestamptz and formatting a datetime costs Python. to_char
# truncates to whole seconds, as HEAD's Last-Modified does.
_LISTED_COLUMNS = (
    "key, size_bytes, etag,"
    " to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\".000Z\"'),"
    " storage_class, checksum_algorithm, checksum_type"
)

# Named tuples built from rows with tuple.__new__: the generated __new__ is a Python
# function, and a page builds two thousand of them (half the cost of calling the classes).
_new = tuple.__new__

# The smallest string greater than every string starting with ``s`` (byte order, "C").
_SUCCESSOR_SQL = "left({s}, -1) || chr(ascii(right({s}, 1)) + 1)"

_SKIP_SCAN = f"""
WITH RECURSIVE walk(key, n) AS (
    (SELECT key, 1 FROM object_versions
      WHERE bucket_id = $1 AND is_latest AND NOT is_delete_marker
        AND key >= $2 AND ($3::text IS NULL OR key < $3)
      ORDER BY key LIMIT 1)
  UNION ALL
    SELECT nxt.key, walk.n + 1 FROM walk CROSS JOIN LATERAL (
      SELECT o.key FROM object_versions o
       WHERE o.bucket_id = $1 AND o.is_latest AND NOT o.is_delete_marker
         AND ($3::text IS NULL OR o.key < $3)
         AND o.key >= CASE
           WHEN strpos(substr(walk.key, $4 + 1), $5) = 0 THEN walk.key || chr(1)
           ELSE {
    _SUCCESSOR_SQL.format(
        s="left(walk.key, $4 + strpos(substr(walk.key, $4 + 1), $5) + length($5) - 1)"
    )
}
         END
       ORDER BY o.key LIMIT 1) nxt
    WHERE walk.n < $6
)
SELECT key FROM walk
"""


def successor(prefix: str) -> str | None:
    """The smallest string greater than every string that starts with ``prefix``."""
    while prefix:
        last = ord(prefix[-1])
        if last < 0x10FFFF:
            return prefix[:-1] + chr(last + 1)
        prefix = prefix[:-1]
    return None


def common_prefix(key: str, prefix: str, delimiter: str) -> str | None:
    if not delimiter:
        return None
    at = key.find(delimiter, len(prefix))
    return None if at < 0 else key[: at + len(delimiter)]


class ListingRepo:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def list_current(
        self, bucket_id: int, prefix: str, lower: str, delimiter: str, limit: int
    ) -> list[ListEntry]:
        """Up to ``limit`` keys or common prefixes at or after ``lower`` (inclusive)."""
        lower = max(lower, prefix)
        upper = successor(prefix)
        if delimiter:
            keys = await self._pool.fetch(
                _SKIP_SCAN, bucket_id, lower, upper, len(prefix), delimiter, limit
            )
            return await self._entries([r["key"] for r in keys], bucket_id, prefix, delimiter)
        records = await self._pool.fetch(
            f"SELECT {_LISTED_COLUMNS} FROM object_versions"
            " WHERE bucket_id = $1 AND is_latest AND NOT is_delete_marker"
            " AND key >= $2 AND ($3::text IS NULL OR key < $3) ORDER BY key LIMIT $4",
            bucket_id,
            lower,
            upper,
            limit,
        )
        return [_new(ListEntry, (r[0], False, _new(ListedObject, r))) for r in records]

    async def _entries(
        self, keys: list[str], bucket_id: int, prefix: str, delimiter: str
    ) -> list[ListEntry]:
        plain = [k for k in keys if common_prefix(k, prefix, delimiter) is None]
        versions: dict[str, ListedObject] = {}
        if plain:
            records = await self._pool.fetch(
                f"SELECT {_LISTED_COLUMNS} FROM object_versions"
                " WHERE bucket_id = $1 AND is_latest AND key = ANY($2::text[])",
                bucket_id,
                plain,
            )
            versions = {r[0]: _new(ListedObject, r) for r in records}
        entries = []
        for key in keys:
            cp = common_prefix(key, prefix, delimiter)
            if cp is not None:
                entries.append(ListEntry(cp, True, None))
            elif key in versions:
                entries.append(ListEntry(key, False, versions[key]))
        return entries

    async def list_versions(
        self,
        bucket_id: int,
        prefix: str,
        key_marker: str,
        version_marker_seq: int | None,
        limit: int,
    ) -> list[VersionRow]:
        """All complete versions in (key asc, newest first) order after the markers."""
        upper = successor(prefix)
        records = await self._pool.fetch(
            f"SELECT {_VERSION_COLUMNS} FROM object_versions"
            " WHERE bucket_id = $1 AND state = 'complete' AND key >= $2"
            " AND ($3::text IS NULL OR key < $3)"
            " AND (key > $4 OR (key = $4 AND $5::bigint IS NOT NULL AND seq < $5))"
            " ORDER BY key, seq DESC LIMIT $6",
            bucket_id,
            prefix,
            upper,
            key_marker,
            version_marker_seq,
            limit,
        )
        return [version_from_record(r) for r in records]

    async def version_seq(self, bucket_id: int, key: str, version_id: str) -> int | None:
        cond = "is_null_version" if version_id == "null" else "version_id = $3"
        args = () if version_id == "null" else (version_id,)
        seq: int | None = await self._pool.fetchval(
            f"SELECT seq FROM object_versions WHERE bucket_id = $1 AND key = $2 AND {cond}"
            " AND state = 'complete'",
            bucket_id,
            key,
            *args,
        )
        return seq
