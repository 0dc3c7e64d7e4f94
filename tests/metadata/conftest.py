"""A migrated, empty database per test module, and its pool."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import pytest

from metadata import db

MIGRATIONS = Path(__file__).resolve().parent.parent.parent / "migrations"


@pytest.fixture(scope="module")
async def pool(new_database: Callable[[], str]) -> AsyncIterator[asyncpg.Pool]:
    dsn = new_database()
    await db.migrate(dsn, MIGRATIONS)
    pool = await db.create_pool(dsn, min_size=1, max_size=4)
    yield pool
    await pool.close()
