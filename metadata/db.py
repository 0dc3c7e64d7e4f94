"""Connection pool and forward-only migrations."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

# A connection taken from a pool or opened directly; repositories accept either.
Conn: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"

log = logging.getLogger(__name__)

# Any constant works; every node must use the same one so migrations run exactly once.
MIGRATION_LOCK_ID = 0x5B_0001
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


async def _init_connection(con: asyncpg.Connection) -> None:
    await con.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 20) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection, command_timeout=60
    )
    assert pool is not None
    return pool


def migration_files(directory: Path) -> list[tuple[int, Path]]:
    found = []
    for path in sorted(directory.iterdir()):
        match = _MIGRATION_NAME.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return found


async def migrate(dsn: str, directory: Path) -> list[str]:
    """Apply pending migrations under an advisory lock; return the names applied."""
    con = await asyncpg.connect(dsn)
    try:
        await con.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_ID)
        try:
            return await _apply_pending(con, directory)
        finally:
            await con.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_ID)
    finally:
        await con.close()


async def _apply_pending(con: asyncpg.Connection, directory: Path) -> list[str]:
    await con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )
    done = {r["version"] for r in await con.fetch("SELECT version FROM schema_migrations")}
    applied = []
    for version, path in migration_files(directory):
        if version in done:
            continue
        async with con.transaction():
            await con.execute(path.read_text())
            await con.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                version,
                path.name,
            )
        log.info("applied migration %s", path.name)
        applied.append(path.name)
    return applied
