"""Connection pool and forward-only migrations."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

import asyncpg
from asyncpg.pool import PoolConnectionProxy

# A connection taken from a pool or opened directly; repositories accept either.
Conn: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"

log = logging.getLogger(__name__)
T = TypeVar("T")

# Any constant works; every node must use the same one so migrations run exactly once.
MIGRATION_LOCK_ID = 0x5B_0001
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# A node must answer 503 soon when PostgreSQL cannot be reached, not after asyncpg's 60 s.
CONNECT_TIMEOUT_S = 5.0
# Failures of the path to PostgreSQL, not of a statement: the server is down, restarting,
# shutting down, or the connection broke. The request may succeed once it is back.
_UNREACHABLE: tuple[type[BaseException], ...] = (
    # Connection refused or reset, DNS, timeouts; asyncpg's "Multiple exceptions" when
    # every address of the host failed is a plain OSError.
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    # "connection is closed", "pool is closing": a connection that died under a query.
    asyncpg.InterfaceError,
)


class MetadataConnection(asyncpg.Connection):
    """A pooled connection whose release costs no round trip unless it needs one.

    asyncpg resets every released connection with ``pg_advisory_unlock_all(); CLOSE ALL;
    UNLISTEN *; RESET ALL`` — a round trip per acquire, a fifth of a small GET's time.
    Our request paths leave no session state (transactions end before release, locks are
    transaction-scoped, nothing SETs, LISTENs or keeps a cursor), so only a connection
    marked by :func:`hold_session_state` (a worker's session advisory lock) pays for the
    full reset; an open transaction is rolled back by the pool either way.
    """

    __slots__ = ("_session_state",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._session_state = False

    def mark_session_state(self) -> None:
        self._session_state = True

    def get_reset_query(self) -> str:
        if not self._session_state:
            return ""
        self._session_state = False
        query: str = super().get_reset_query()
        return query


def hold_session_state(con: Conn) -> None:
    """Before ``con`` takes session state (a session advisory lock): have its release
    reset it fully, so that a lock left behind by a cancelled unlock cannot outlive the
    connection's use."""
    # A pool's proxy forwards attribute reads to its MetadataConnection.
    mark: Callable[[], None] = con.mark_session_state  # type: ignore[union-attr]
    mark()


async def _init_connection(con: asyncpg.Connection) -> None:
    await con.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 20) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        connection_class=MetadataConnection,
        command_timeout=60,
        timeout=CONNECT_TIMEOUT_S,
    )
    assert pool is not None
    return pool


def is_unreachable(error: BaseException) -> bool:
    """True when ``error`` means PostgreSQL could not be reached or the connection was
    lost, rather than that a statement failed. Drivers wrap their own OSErrors in
    BackendError, so a bare OSError reaching the edge comes from the database path."""
    return isinstance(error, _UNREACHABLE)


async def retry_unreachable(
    work: Callable[[], Awaitable[T]], *, attempts: int = 6, base_delay_s: float = 0.5
) -> T:
    """Run idempotent ``work``, again after 0.5, 1, 2, 4 and 8 s while PostgreSQL is
    unreachable (a restart or failover takes seconds); then give up with the last error."""
    for attempt in range(attempts - 1):
        try:
            return await work()
        except Exception as error:
            if not is_unreachable(error):
                raise
            await asyncio.sleep(base_delay_s * 2**attempt)
    return await work()


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


async def pending_migrations(pool: asyncpg.Pool, directory: Path) -> list[str]:
    """The migration files in ``directory`` not yet applied to the database."""
    async with pool.acquire() as con:
        done: set[int] = set()
        if await con.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
            done = {r["version"] for r in await con.fetch("SELECT version FROM schema_migrations")}
    return [path.name for version, path in migration_files(directory) if version not in done]


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
