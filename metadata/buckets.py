"""Buckets and their sub-resources (versioning, tags, CORS)."""

from __future__ import annotations

from typing import Any

import asyncpg

from metadata.models import BucketRow

_COLUMNS = (
    "id, name, owner_access_key, location, backend, versioning, created_at, tags, cors,"
    " placement_policy, tenant, acl, policy, encryption, lifecycle, prefix_policies,"
    " access_tiering"
)
# The policy in force for version ``v`` of bucket ``b`` (BucketRow.policy_for_key in SQL).
EFFECTIVE_POLICY = (
    "coalesce((SELECT e.value FROM jsonb_each_text(b.prefix_policies) e"
    " WHERE left(v.key, length(e.key)) = e.key ORDER BY length(e.key) DESC LIMIT 1),"
    " b.placement_policy)"
)


def _row(record: asyncpg.Record) -> BucketRow:
    return BucketRow(**dict(record))


class BucketRepo:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def get(self, name: str) -> BucketRow | None:
        record = await self._pool.fetchrow(f"SELECT {_COLUMNS} FROM buckets WHERE name = $1", name)
        return _row(record) if record else None

    async def list_for_tenant(self, tenant: str) -> list[BucketRow]:
        records = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM buckets WHERE tenant = $1 ORDER BY name", tenant
        )
        return [_row(r) for r in records]

    async def list_all(self) -> list[BucketRow]:
        records = await self._pool.fetch(f"SELECT {_COLUMNS} FROM buckets ORDER BY name")
        return [_row(r) for r in records]

    async def with_policy(self, policy: str) -> list[str]:
        rows = await self._pool.fetch(
            "SELECT name FROM buckets WHERE placement_policy = $1"
            " OR EXISTS (SELECT 1 FROM jsonb_each_text(prefix_policies) e WHERE e.value = $1)"
            " ORDER BY name",
            policy,
        )
        return [r["name"] for r in rows]

    async def create(
        self,
        name: str,
        owner_access_key: str,
        location: str,
        backend: str,
        placement_policy: str | None = None,
        tenant: str = "root",
        acl: str = "private",
    ) -> BucketRow | None:
        """Insert the bucket; ``None`` when the name is already taken."""
        record = await self._pool.fetchrow(
            "INSERT INTO buckets (name, owner_access_key, location, backend, placement_policy,"
            f" tenant, acl) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name) DO NOTHING"
            f" RETURNING {_COLUMNS}",
            name,
            owner_access_key,
            location,
            backend,
            placement_policy,
            tenant,
            acl,
        )
        return _row(record) if record else None

    async def delete_if_empty(self, bucket_id: int) -> bool:
        """Delete the bucket unless a version or an open upload remains; True if deleted."""
        async with self._pool.acquire() as con, con.transaction():
            await con.execute("SELECT 1 FROM buckets WHERE id = $1 FOR UPDATE", bucket_id)
            busy = await con.fetchval(
                "SELECT EXISTS (SELECT 1 FROM object_versions WHERE bucket_id = $1"
                " AND state IN ('complete', 'pending'))"
                " OR EXISTS (SELECT 1 FROM multipart_uploads WHERE bucket_id = $1"
                " AND state = 'open')",
                bucket_id,
            )
            if busy:
                return False
            # Dead rows (failed/deleted versions) no longer matter once gc has their bytes.
            # Through the versions and uploads: their ids lead the indexes of these tables.
            await con.execute(
                "DELETE FROM placements WHERE bucket_id = $1 AND version_pk IN"
                " (SELECT id FROM object_versions WHERE bucket_id = $1)",
                bucket_id,
            )
            await con.execute("DELETE FROM object_versions WHERE bucket_id = $1", bucket_id)
            await con.execute(
                "DELETE FROM multipart_parts WHERE bucket_id = $1 AND upload_pk IN"
                " (SELECT id FROM multipart_uploads WHERE bucket_id = $1)",
                bucket_id,
            )
            await con.execute("DELETE FROM multipart_uploads WHERE bucket_id = $1", bucket_id)
            await con.execute("DELETE FROM bucket_usage WHERE bucket_id = $1", bucket_id)
            # Its warm-up jobs: their copies went with the versions.
            await con.execute("DELETE FROM warmup_jobs WHERE bucket_id = $1", bucket_id)
            await con.execute(
                "DELETE FROM quotas WHERE scope = 'bucket' AND scope_id = $1", str(bucket_id)
            )
            await con.execute("DELETE FROM buckets WHERE id = $1", bucket_id)
            return True

    async def set_policy(self, bucket_id: int, policy: str | None) -> None:
        await self._pool.execute(
            "UPDATE buckets SET placement_policy = $2 WHERE id = $1", bucket_id, policy
        )

    async def set_prefix_policy(self, bucket_id: int, prefix: str, policy: str | None) -> None:
        """Attach ``policy`` to keys under ``prefix``; None detaches the prefix."""
        await self._pool.execute(
            "UPDATE buckets SET prefix_policies = CASE WHEN $3::text IS NULL"
            " THEN prefix_policies - $2::text"
            " ELSE prefix_policies || jsonb_build_object($2::text, $3::text) END WHERE id = $1",
            bucket_id,
            prefix,
            policy,
        )

    async def set_versioning(self, bucket_id: int, status: str) -> None:
        await self._pool.execute(
            "UPDATE buckets SET versioning = $2 WHERE id = $1", bucket_id, status
        )

    async def set_tags(self, bucket_id: int, tags: dict[str, str] | None) -> None:
        await self._pool.execute("UPDATE buckets SET tags = $2 WHERE id = $1", bucket_id, tags)

    async def set_access_tiering(self, bucket_id: int, setting: dict[str, Any] | None) -> None:
        await self._pool.execute(
            "UPDATE buckets SET access_tiering = $2 WHERE id = $1", bucket_id, setting
        )

    async def set_cors(self, bucket_id: int, rules: list[dict[str, Any]] | None) -> None:
        await self._pool.execute("UPDATE buckets SET cors = $2 WHERE id = $1", bucket_id, rules)

    async def set_acl(self, bucket_id: int, acl: str) -> None:
        await self._pool.execute("UPDATE buckets SET acl = $2 WHERE id = $1", bucket_id, acl)

    async def set_access_policy(self, bucket_id: int, document: dict[str, Any] | None) -> None:
        await self._pool.execute(
            "UPDATE buckets SET policy = $2 WHERE id = $1", bucket_id, document
        )

    async def set_encryption(self, bucket_id: int, rule: dict[str, Any] | None) -> None:
        await self._pool.execute(
            "UPDATE buckets SET encryption = $2 WHERE id = $1", bucket_id, rule
        )

    async def set_lifecycle(self, bucket_id: int, document: dict[str, Any] | None) -> None:
        await self._pool.execute(
            "UPDATE buckets SET lifecycle = $2 WHERE id = $1", bucket_id, document
        )

    async def with_lifecycle(self) -> list[BucketRow]:
        """Buckets that have a lifecycle configuration, in id order."""
        records = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM buckets WHERE lifecycle IS NOT NULL ORDER BY id"
        )
        return [_row(r) for r in records]
