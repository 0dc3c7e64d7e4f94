"""Sites, backends, links and placement policies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg


@dataclass(frozen=True, slots=True)
class BackendRow:
    name: str
    site: str
    driver: str
    tier: str
    state: str
    capacity_bytes: int | None


@dataclass(frozen=True, slots=True)
class LinkRow:
    name: str
    site: str
    backend: str
    position: int
    bandwidth_bytes_per_s: int | None
    max_concurrency: int | None
    rtt_ms: float
    cost_per_gib: float
    endpoint: str | None
    egress_budget_bytes_per_day: int | None = None


@dataclass(frozen=True, slots=True)
class PolicyRow:
    name: str
    version: int
    document: dict[str, Any]


class TopologyRepo:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def seed(self, backends: list[BackendRow], links: list[LinkRow]) -> None:
        """Insert what the database does not know yet; never overwrite managed state."""
        sites = sorted({b.site for b in backends} | {link.site for link in links})
        async with self._pool.acquire() as con, con.transaction():
            await con.executemany(
                "INSERT INTO sites (name) VALUES ($1) ON CONFLICT DO NOTHING",
                [(s,) for s in sites],
            )
            await con.executemany(
                "INSERT INTO backends (name, site, driver, tier, state, capacity_bytes)"
                " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO NOTHING",
                [(b.name, b.site, b.driver, b.tier, b.state, b.capacity_bytes) for b in backends],
            )
            await con.executemany(
                "INSERT INTO links (name, site, backend, position, bandwidth_bytes_per_s,"
                " max_concurrency, rtt_ms, cost_per_gib, endpoint, egress_budget_bytes_per_day)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (name) DO NOTHING",
                [
                    (link.name, link.site, link.backend, link.position,
                     link.bandwidth_bytes_per_s, link.max_concurrency, link.rtt_ms,
                     link.cost_per_gib, link.endpoint, link.egress_budget_bytes_per_day)
                    for link in links
                ],
            )  # fmt: skip

    async def backends(self) -> list[BackendRow]:
        rows = await self._pool.fetch(
            "SELECT name, site, driver, tier, state, capacity_bytes FROM backends ORDER BY name"
        )
        return [BackendRow(**dict(r)) for r in rows]

    async def links(self) -> list[LinkRow]:
        rows = await self._pool.fetch(
            "SELECT name, site, backend, position, bandwidth_bytes_per_s, max_concurrency,"
            " rtt_ms, cost_per_gib, endpoint, egress_budget_bytes_per_day FROM links"
            " ORDER BY site, backend, position, name"
        )
        return [LinkRow(**dict(r)) for r in rows]

    async def used_bytes(self) -> dict[str, int]:
        rows = await self._pool.fetch(
            "SELECT backend, coalesce(sum(size_bytes), 0)::bigint AS used FROM placements"
            " WHERE state IN ('pending', 'ok') GROUP BY backend"
        )
        return {r["backend"]: r["used"] for r in rows}

    async def put_policy(self, name: str, document: dict[str, Any]) -> int:
        """Store a new version of policy ``name``; return its version number."""
        async with self._pool.acquire() as con, con.transaction():
            await con.execute("SELECT pg_advisory_xact_lock(hashtext('policy:' || $1))", name)
            version: int = await con.fetchval(
                "SELECT coalesce(max(version), 0) + 1 FROM placement_policies WHERE name = $1",
                name,
            )
            await con.execute(
                "INSERT INTO placement_policies (name, version, document) VALUES ($1, $2, $3)",
                name,
                version,
                {**document, "name": name, "version": version},
            )
            return version

    async def seed_policy(self, name: str, document: dict[str, Any]) -> None:
        """Store ``document`` as version 1 unless the policy already exists."""
        await self._pool.execute(
            "INSERT INTO placement_policies (name, version, document) VALUES ($1, 1, $2)"
            " ON CONFLICT DO NOTHING",
            name,
            {**document, "name": name, "version": 1},
        )

    async def current_policies(self) -> list[PolicyRow]:
        rows = await self._pool.fetch(
            "SELECT DISTINCT ON (name) name, version, document FROM placement_policies"
            " ORDER BY name, version DESC"
        )
        return [PolicyRow(**dict(r)) for r in rows]

    async def sites(self) -> list[str]:
        rows = await self._pool.fetch("SELECT name FROM sites ORDER BY name")
        return [r["name"] for r in rows]

    async def create_site(self, name: str) -> bool:
        done = await self._pool.fetchval(
            "INSERT INTO sites (name) VALUES ($1) ON CONFLICT DO NOTHING RETURNING name", name
        )
        return done is not None

    async def delete_site(self, name: str) -> bool:
        """Delete an unused site; raises ForeignKeyViolationError while backends or links
        still name it."""
        done = await self._pool.fetchval("DELETE FROM sites WHERE name = $1 RETURNING name", name)
        return done is not None

    async def update_backend(
        self, name: str, state: str | None, tier: str | None, capacity: tuple[int | None] | None
    ) -> BackendRow | None:
        """Change what is given (``capacity`` is a 1-tuple so that None can clear it)."""
        row = await self._pool.fetchrow(
            "UPDATE backends SET state = coalesce($2, state), tier = coalesce($3, tier),"
            " capacity_bytes = CASE WHEN $4 THEN $5 ELSE capacity_bytes END,"
            " updated_at = now() WHERE name = $1"
            " RETURNING name, site, driver, tier, state, capacity_bytes",
            name,
            state,
            tier,
            capacity is not None,
            capacity[0] if capacity else None,
        )
        return BackendRow(**dict(row)) if row else None

    async def policy_versions(self, name: str) -> list[PolicyRow]:
        rows = await self._pool.fetch(
            "SELECT name, version, document FROM placement_policies WHERE name = $1"
            " ORDER BY version",
            name,
        )
        return [PolicyRow(**dict(r)) for r in rows]

    async def delete_policy(self, name: str) -> bool:
        done = await self._pool.fetchval(
            "DELETE FROM placement_policies WHERE name = $1 RETURNING name", name
        )
        return done is not None
