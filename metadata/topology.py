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
    # Driver settings of a backend created at runtime (credentials by reference only);
    # None when the nodes' configuration declares it.
    connection: dict[str, Any] | None = None


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
    first_byte_timeout_s: float = 10.0
    breaker_failures: int = 3
    breaker_cooldown_s: float = 5.0


@dataclass(frozen=True, slots=True)
class PolicyRow:
    name: str
    version: int
    document: dict[str, Any]


_BACKEND_COLUMNS = "name, site, driver, tier, state, capacity_bytes, connection"
_LINK_COLUMNS = (
    "name, site, backend, position, bandwidth_bytes_per_s, max_concurrency, rtt_ms,"
    " cost_per_gib, endpoint, egress_budget_bytes_per_day, first_byte_timeout_s,"
    " breaker_failures, breaker_cooldown_s"
)
# A link's settings that the admin API may change (the name, site and backend stay).
LINK_SETTINGS = (
    "position", "bandwidth_bytes_per_s", "max_concurrency", "rtt_ms", "cost_per_gib",
    "endpoint", "egress_budget_bytes_per_day", "first_byte_timeout_s", "breaker_failures",
    "breaker_cooldown_s",
)  # fmt: skip


def _link_values(link: LinkRow) -> tuple[Any, ...]:
    return tuple(getattr(link, column.strip()) for column in _LINK_COLUMNS.split(","))


_BACKEND_IN_USE = (
    "SELECT EXISTS (SELECT 1 FROM placements WHERE backend = $1)"
    " OR EXISTS (SELECT 1 FROM multipart_parts WHERE $1 = ANY (backends))"
    " OR EXISTS (SELECT 1 FROM replication_queue WHERE target_backend = $1)"
    " OR EXISTS (SELECT 1 FROM backend_deletions WHERE backend = $1)"
    " OR EXISTS (SELECT 1 FROM multipart_uploads WHERE backend = $1 AND state = 'open')"
    " OR EXISTS (SELECT 1 FROM buckets WHERE backend = $1)"
    " OR EXISTS (SELECT 1 FROM warmup_jobs WHERE target_backend = $1 AND state = 'active')"
)


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
                f"INSERT INTO backends ({_BACKEND_COLUMNS})"
                " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name) DO NOTHING",
                [(b.name, b.site, b.driver, b.tier, b.state, b.capacity_bytes, b.connection)
                 for b in backends],
            )  # fmt: skip
            await con.executemany(
                f"INSERT INTO links ({_LINK_COLUMNS}) VALUES"
                " ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
                " ON CONFLICT (name) DO NOTHING",
                [_link_values(link) for link in links],
            )

    async def create_backend(self, backend: BackendRow) -> bool:
        """Add a backend (its site too, if new); False if the name is taken."""
        async with self._pool.acquire() as con, con.transaction():
            await con.execute(
                "INSERT INTO sites (name) VALUES ($1) ON CONFLICT DO NOTHING", backend.site
            )
            done = await con.fetchval(
                f"INSERT INTO backends ({_BACKEND_COLUMNS})"
                " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name) DO NOTHING"
                " RETURNING name",
                backend.name, backend.site, backend.driver, backend.tier, backend.state,
                backend.capacity_bytes, backend.connection,
            )  # fmt: skip
            return done is not None

    async def delete_backend(self, name: str, settled_s: float) -> str:
        """Delete a backend and its links, if it is draining or disabled, has been for
        ``settled_s`` (every node has stopped writing to it), and nothing names it: a
        placement, a stored part, a queued copy, a pending deletion, an open upload, a
        bucket's default or an active warm-up job. Returns "deleted", "missing", "writable",
        "settling" or "in-use"."""
        async with self._pool.acquire() as con, con.transaction():
            row = await con.fetchrow(
                "SELECT state, updated_at < now() - make_interval(secs => $2) AS settled"
                " FROM backends WHERE name = $1 FOR UPDATE",
                name,
                settled_s,
            )
            if row is None:
                return "missing"
            if row["state"] not in ("draining", "disabled"):
                return "writable"
            if not row["settled"]:
                return "settling"
            if await con.fetchval(_BACKEND_IN_USE, name):
                return "in-use"
            await con.execute("DELETE FROM links WHERE backend = $1", name)
            await con.execute("DELETE FROM backends WHERE name = $1", name)
            return "deleted"

    async def create_link(self, link: LinkRow) -> bool:
        done = await self._pool.fetchval(
            f"INSERT INTO links ({_LINK_COLUMNS}) VALUES"
            " ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
            " ON CONFLICT (name) DO NOTHING RETURNING name",
            *_link_values(link),
        )
        return done is not None

    async def update_link(self, name: str, change: dict[str, Any]) -> bool:
        """Set the given settings (names from LINK_SETTINGS only) of link ``name``."""
        columns = [column for column in LINK_SETTINGS if column in change]
        assignments = "".join(f"{c} = ${i}, " for i, c in enumerate(columns, start=2))
        done = await self._pool.fetchval(
            f"UPDATE links SET {assignments}updated_at = now() WHERE name = $1 RETURNING name",
            name,
            *(change[c] for c in columns),
        )
        return done is not None

    async def delete_link(self, name: str) -> bool:
        done = await self._pool.fetchval("DELETE FROM links WHERE name = $1 RETURNING name", name)
        return done is not None

    async def backends(self) -> list[BackendRow]:
        rows = await self._pool.fetch(f"SELECT {_BACKEND_COLUMNS} FROM backends ORDER BY name")
        return [BackendRow(**dict(r)) for r in rows]

    async def links(self) -> list[LinkRow]:
        rows = await self._pool.fetch(
            f"SELECT {_LINK_COLUMNS} FROM links ORDER BY site, backend, position, name"
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
            f" RETURNING {_BACKEND_COLUMNS}",
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
