"""Releasing a pooled connection: session state is reset only where a worker took some.

The pool skips asyncpg's reset round trip on ordinary releases (metadata/db.py); these
tests show that a session advisory lock left behind by a worker still cannot outlive its
use, and that an open transaction is still rolled back.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import asyncpg

from metadata import db
from metadata.ledger import LedgerRepo
from metadata.lifecycle import LifecycleRepo

MIGRATIONS = Path(__file__).resolve().parent.parent.parent / "migrations"
_HELD = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"


async def _one_connection_pool(new_database: Callable[[], str]) -> asyncpg.Pool:
    dsn = new_database()
    await db.migrate(dsn, MIGRATIONS)
    return await db.create_pool(dsn, min_size=1, max_size=1)


async def test_a_worker_lock_left_held_is_released_with_the_connection(
    new_database: Callable[[], str],
) -> None:
    pool = await _one_connection_pool(new_database)
    try:
        async with pool.acquire() as con:
            # A pass whose unlock never ran (cancelled, or the unlock itself failed).
            assert await LedgerRepo(pool).try_lock(con, "replacement")
            assert await LifecycleRepo.lock(con, wait=False)
            assert await con.fetchval(_HELD) == 2
        async with pool.acquire() as con:
            assert await con.fetchval(_HELD) == 0
    finally:
        await pool.close()


async def test_ordinary_release_keeps_the_session_but_ends_its_transaction(
    new_database: Callable[[], str],
) -> None:
    pool = await _one_connection_pool(new_database)
    try:
        async with pool.acquire() as con:
            backend_pid = await con.fetchval("SELECT pg_backend_pid()")
            await con.execute("SET application_name = 'left-behind'")
            # A transaction left open by a bug: the pool must not hand it on.
            await con.execute("BEGIN")
            await con.execute("CREATE TEMPORARY TABLE scratch (n int)")
        async with pool.acquire() as con:
            assert await con.fetchval("SELECT pg_backend_pid()") == backend_pid
            # No reset query ran (that is the round trip saved)...
            assert await con.fetchval("SHOW application_name") == "left-behind"
            # ...but the open transaction was rolled back.
            assert not con.is_in_transaction()
            assert await con.fetchval("SELECT to_regclass('pg_temp.scratch')") is None
    finally:
        await pool.close()
