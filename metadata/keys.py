"""Where each key-encryption key is still used: envelopes of versions and uploads, and the
sealed secrets of access keys; and the re-wrapping of them under another key."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import asyncpg

# Tables whose ``encryption`` column holds an envelope with a wrapped data key.
ENVELOPE_TABLES = {
    "object_versions": "state IN ('pending', 'complete')",
    "multipart_uploads": "state = 'open'",
}
_SECRET_KEY = r"substring(secret_key from '^sbs1:([^:]+):')"


@dataclass(frozen=True, slots=True)
class StaleEnvelope:
    table: str
    bucket_id: int
    id: int
    encryption: dict[str, Any]


class KeyUsageRepo:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def usage(self) -> dict[str, Counter[str]]:
        """Per key name: how many envelopes (per table) and access key secrets use it."""
        used: dict[str, Counter[str]] = {}
        for table, live in ENVELOPE_TABLES.items():
            rows = await self._pool.fetch(
                f"SELECT encryption->>'kek' AS kek, count(*) AS n FROM {table}"
                f" WHERE encryption IS NOT NULL AND {live} GROUP BY 1"
            )
            for r in rows:
                used.setdefault(r["kek"], Counter())[table] += r["n"]
        rows = await self._pool.fetch(
            f"SELECT coalesce({_SECRET_KEY}, '') AS kek, count(*) AS n FROM access_keys GROUP BY 1"
        )
        for r in rows:
            used.setdefault(r["kek"] or "(clear)", Counter())["access_keys"] += r["n"]
        return used

    async def stale_envelopes(self, active: str, limit: int) -> list[StaleEnvelope]:
        """SSE-S3 envelopes wrapped under another key than ``active`` (SSE-KMS ones stay
        under the key the client named; SSE-C ones under the client's key)."""
        found: list[StaleEnvelope] = []
        for table, live in ENVELOPE_TABLES.items():
            rows = await self._pool.fetch(
                f"SELECT bucket_id, id, encryption FROM {table}"
                f" WHERE encryption IS NOT NULL AND {live}"
                " AND encryption->>'mode' = 'AES256' AND encryption->>'kek' <> $1"
                " ORDER BY id LIMIT $2",
                active,
                limit,
            )
            found += [StaleEnvelope(table, r["bucket_id"], r["id"], r["encryption"]) for r in rows]
        return found

    async def replace_envelope(self, stale: StaleEnvelope, encryption: dict[str, Any]) -> bool:
        """Swap in the re-wrapped envelope unless someone changed it meanwhile."""
        done = await self._pool.fetchval(
            f"UPDATE {stale.table} SET encryption = $2 WHERE id = $1 AND bucket_id = $4"
            " AND encryption->>'wrapped_key' = $3 RETURNING id",
            stale.id,
            encryption,
            stale.encryption["wrapped_key"],
            stale.bucket_id,
        )
        return done is not None

    async def stale_secrets(self, active: str, limit: int) -> list[tuple[str, str]]:
        rows = await self._pool.fetch(
            f"SELECT access_key_id, secret_key FROM access_keys"
            f" WHERE coalesce({_SECRET_KEY}, '') <> $1 ORDER BY access_key_id LIMIT $2",
            active,
            limit,
        )
        return [(r["access_key_id"], r["secret_key"]) for r in rows]

    async def replace_secret(self, access_key_id: str, old: str, new: str) -> bool:
        done = await self._pool.fetchval(
            "UPDATE access_keys SET secret_key = $3 WHERE access_key_id = $1"
            " AND secret_key = $2 RETURNING access_key_id",
            access_key_id,
            old,
            new,
        )
        return done is not None

    async def retired(self) -> set[str]:
        return {r["name"] for r in await self._pool.fetch("SELECT name FROM retired_keys")}

    async def retire(self, name: str) -> None:
        await self._pool.execute(
            "INSERT INTO retired_keys (name) VALUES ($1) ON CONFLICT DO NOTHING", name
        )
