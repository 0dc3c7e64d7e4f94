"""Access keys and their secrets."""

from __future__ import annotations

import asyncpg

from metadata.models import AccessKeyRow


class AccessKeyRepo:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def get(self, access_key_id: str) -> AccessKeyRow | None:
        row = await self._pool.fetchrow(
            "SELECT access_key_id, secret_key, tenant FROM access_keys WHERE access_key_id = $1",
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

    async def create(self, access_key_id: str, secret_key: str, tenant: str) -> None:
        await self._pool.execute(
            "INSERT INTO access_keys (access_key_id, secret_key, tenant) VALUES ($1, $2, $3)",
            access_key_id,
            secret_key,
            tenant,
        )

    async def delete(self, access_key_id: str) -> bool:
        done = await self._pool.fetchval(
            "DELETE FROM access_keys WHERE access_key_id = $1 RETURNING access_key_id",
            access_key_id,
        )
        return done is not None

    async def list_all(self) -> list[tuple[str, str]]:
        """(access key id, tenant) pairs; secrets are never listed."""
        rows = await self._pool.fetch(
            "SELECT access_key_id, tenant FROM access_keys ORDER BY tenant, access_key_id"
        )
        return [(r["access_key_id"], r["tenant"]) for r in rows]

    async def first_of_tenant(self, tenant: str) -> AccessKeyRow | None:
        row = await self._pool.fetchrow(
            "SELECT access_key_id, secret_key, tenant FROM access_keys WHERE tenant = $1"
            " ORDER BY created_at LIMIT 1",
            tenant,
        )
        return AccessKeyRow(**dict(row)) if row else None
