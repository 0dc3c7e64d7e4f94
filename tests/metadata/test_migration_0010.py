"""Migration 0010 on a database that already holds data: every new bucket_id is filled
from the rows it belongs to, and the bucket counters survive as bucket_usage."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import asyncpg

from metadata import db
from metadata.usage import Usage, UsageRepo
from tests.metadata.conftest import MIGRATIONS

# Two buckets of one tenant, so that a row filled from the wrong bucket shows.
_BEFORE = """
INSERT INTO buckets (id, name, owner_access_key, tenant, location, backend)
VALUES (7, 'seven', 'AK', 'acme', 'us-east-1', 'local'),
       (9, 'nine', 'AK', 'acme', 'us-east-1', 'local');
INSERT INTO object_versions (id, bucket_id, key, version_id, is_null_version, state, is_latest,
                             size_bytes)
VALUES (1, 7, 'a', 'v1', true, 'complete', true, 10),
       (2, 9, 'b', 'v2', true, 'complete', true, 20);
INSERT INTO placements (version_pk, backend, backend_key, state)
VALUES (1, 'local', 'b7/o/v1', 'ok'), (2, 'local', 'b9/o/v2', 'ok'), (2, 'far', 'b9/o/v2', 'ok');
INSERT INTO replication_queue (version_pk, target_backend) VALUES (2, 'cold');
INSERT INTO lifecycle_transitions (version_pk, storage_class) VALUES (1, 'GLACIER');
INSERT INTO multipart_uploads (id, upload_id, bucket_id, key, backend, state, owner_access_key)
VALUES (3, 'u3', 9, 'big', 'local', 'open', 'AK');
INSERT INTO multipart_parts (upload_pk, part_number, size_bytes, etag, backend_key)
VALUES (3, 1, 5, 'e', 'b9/mpu/u3/1');
INSERT INTO backend_deletions (backend, backend_key, reserved_bucket_id, reserved_bytes)
VALUES ('local', 'b9/mpu/u3/2', 9, 4),  -- a part intent, holding its reservation
       ('local', 'b7/o/gone', NULL, 0),
       ('local', 'not-ours', NULL, 0);
INSERT INTO usage_counters (scope, scope_id, bytes, objects, reserved_bytes)
VALUES ('bucket', '7', 10, 1, 0), ('bucket', '9', 25, 1, 4), ('tenant', 'acme', 35, 2, 4);
"""


async def _migrated(dsn: str, tmp_path: Path) -> None:
    before = tmp_path / "before"
    before.mkdir()
    for version, path in db.migration_files(MIGRATIONS):
        if version < 10:
            shutil.copy(path, before / path.name)
    await db.migrate(dsn, before)
    con = await asyncpg.connect(dsn)
    try:
        await con.execute(_BEFORE)
    finally:
        await con.close()
    await db.migrate(dsn, MIGRATIONS)


async def test_existing_rows_take_their_bucket(
    new_database: Callable[[], str], tmp_path: Path
) -> None:
    dsn = new_database()
    await _migrated(dsn, tmp_path)
    pool = await db.create_pool(dsn, min_size=1, max_size=2)
    try:
        placements = await pool.fetch(
            "SELECT version_pk, bucket_id FROM placements ORDER BY version_pk, backend"
        )
        assert [tuple(r) for r in placements] == [(1, 7), (2, 9), (2, 9)]
        assert await pool.fetchval("SELECT bucket_id FROM replication_queue") == 9
        assert await pool.fetchval("SELECT bucket_id FROM lifecycle_transitions") == 7
        assert await pool.fetchval("SELECT bucket_id FROM multipart_parts") == 9
        deletions = await pool.fetch(
            "SELECT backend_key, bucket_id, reserved_bytes FROM backend_deletions"
            " ORDER BY backend_key"
        )
        assert [tuple(r) for r in deletions] == [
            ("b7/o/gone", 7, 0), ("b9/mpu/u3/2", 9, 4), ("not-ours", 0, 0),
        ]  # fmt: skip
        # Tenant rows are gone: a tenant's usage is its buckets' sum.
        assert await UsageRepo(pool).usage() == [
            Usage("bucket", "7", 10, 1, 0, 0),
            Usage("bucket", "9", 25, 1, 4, 0),
            Usage("tenant", "acme", 35, 2, 4, 0),
        ]
        assert await UsageRepo(pool).recompute() == []
    finally:
        await pool.close()
