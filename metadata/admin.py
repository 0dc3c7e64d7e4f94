"""Admin bearer tokens and worker pause flags."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True, slots=True)
class AdminTokenRow:
    id: int
    name: str
    scope: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None


_COLUMNS = "id, name, scope, created_at, last_used_at"


class AdminTokenRepo:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def by_digest(self, digest: bytes) -> AdminTokenRow | None:
        row = await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM admin_tokens WHERE token_sha256 = $1", digest
        )
        if row is None:
            return None
        token = AdminTokenRow(**dict(row))
        # Last use to the minute: a token polled every second costs one write a minute.
        await self._pool.execute(
            "UPDATE admin_tokens SET last_used_at = now() WHERE id = $1"
            " AND (last_used_at IS NULL OR last_used_at < now() - interval '60 seconds')",
            token.id,
        )
        return token

    async def create(self, name: str, digest: bytes, scope: str) -> AdminTokenRow | None:
        """The new token's row, or None when the name is taken."""
        row = await self._pool.fetchrow(
            f"INSERT INTO admin_tokens (name, token_sha256, scope) VALUES ($1, $2, $3)"
            f" ON CONFLICT DO NOTHING RETURNING {_COLUMNS}",
            name,
            digest,
            scope,
        )
        return AdminTokenRow(**dict(row)) if row else None

    async def list_all(self) -> list[AdminTokenRow]:
        rows = await self._pool.fetch(f"SELECT {_COLUMNS} FROM admin_tokens ORDER BY name")
        return [AdminTokenRow(**dict(r)) for r in rows]

    async def delete(self, name: str) -> bool:
        done = await self._pool.fetchval(
            "DELETE FROM admin_tokens WHERE name = $1 RETURNING id", name
        )
        return done is not None


class WorkerControlRepo:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def paused(self) -> set[str]:
        rows = await self._pool.fetch("SELECT name FROM worker_controls WHERE paused")
        return {r["name"] for r in rows}

    async def set_paused(self, name: str, paused: bool) -> None:
        await self._pool.execute(
            "INSERT INTO worker_controls (name, paused) VALUES ($1, $2) ON CONFLICT (name)"
            " DO UPDATE SET paused = EXCLUDED.paused, updated_at = now()",
            name,
            paused,
        )
