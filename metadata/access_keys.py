"""Access keys and their secrets."""

from __future__ import annotations

import asyncpg

from metadata.models import AccessKeyRow

_COLUMNS = "access_key_id, secret_key, tenant, user_name, status"


class AccessKeyRepo:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def get(self, access_key_id: str) -> AccessKeyRow | None:
        row = await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM access_keys WHERE access_key_id = $1",
            access_key_id,
        )
        return AccessKeyRow(**dict(row)) if row else None

    async def ensure(self, access_key_id: str, secret_key: str, tenant: str = "root") -> None:
        """Create the key, or reset its secret: the root key follows the configuration."""
        await self._pool.execute(
            "INSERT INTO access_keys (access_key_id, secret_key, tenant) VALUES ($1, $2, $3)"
            " ON CONFLICT (access_key_id) DO UPDATE SET secret_key = EXCLUDED.secret_key",
            access_key_id,
            secret_key,
            tenant,
        )

    async def create(
        self, access_key_id: str, secret_key: str, tenant: str, user_name: str | None = None
    ) -> None:
        """Raises UniqueViolationError for a taken id, ForeignKeyViolationError for an
        unknown user."""
        await self._pool.execute(
            "INSERT INTO access_keys (access_key_id, secret_key, tenant, user_name)"
            " VALUES ($1, $2, $3, $4)",
            access_key_id,
            secret_key,
            tenant,
            user_name,
        )

    async def set_status(self, access_key_id: str, status: str) -> AccessKeyRow | None:
        row = await self._pool.fetchrow(
            f"UPDATE access_keys SET status = $2 WHERE access_key_id = $1 RETURNING {_COLUMNS}",
            access_key_id,
            status,
        )
        return AccessKeyRow(**dict(row)) if row else None

    async def rotate(self, access_key_id: str, secret_key: str) -> AccessKeyRow | None:
        row = await self._pool.fetchrow(
            f"UPDATE access_keys SET secret_key = $2 WHERE access_key_id = $1 RETURNING {_COLUMNS}",
            access_key_id,
            secret_key,
        )
        return AccessKeyRow(**dict(row)) if row else None

    async def list_rows(self) -> list[AccessKeyRow]:
        """Every key with its secret blanked: listings never carry secrets."""
        rows = await self._pool.fetch(
            "SELECT access_key_id, '' AS secret_key, tenant, user_name, status FROM access_keys"
            " ORDER BY tenant, access_key_id"
        )
        return [AccessKeyRow(**dict(r)) for r in rows]

    async def delete(self, access_key_id: str) -> bool:
        done = await self._pool.fetchval(
            "DELETE FROM access_keys WHERE access_key_id = $1 RETURNING access_key_id",
            access_key_id,
        )
        return done is not None

    async def first_of_tenant(self, tenant: str) -> AccessKeyRow | None:
        row = await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM access_keys WHERE tenant = $1 ORDER BY created_at LIMIT 1",
            tenant,
        )
        return AccessKeyRow(**dict(row)) if row else None


class UserRepo:
    """Users of tenants; each holds access keys."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(self, tenant: str, name: str) -> bool:
        done = await self._pool.fetchval(
            "INSERT INTO users (tenant, name) VALUES ($1, $2) ON CONFLICT DO NOTHING"
            " RETURNING name",
            tenant,
            name,
        )
        return done is not None

    async def list_all(self) -> list[tuple[str, str]]:
        rows = await self._pool.fetch("SELECT tenant, name FROM users ORDER BY tenant, name")
        return [(r["tenant"], r["name"]) for r in rows]

    async def delete(self, tenant: str, name: str) -> bool:
        """Raises ForeignKeyViolationError while the user holds keys."""
        done = await self._pool.fetchval(
            "DELETE FROM users WHERE tenant = $1 AND name = $2 RETURNING name", tenant, name
        )
        return done is not None
