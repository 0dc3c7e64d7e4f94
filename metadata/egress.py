"""Bytes moved over each link per UTC day, and the budgets background traffic must keep."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import asyncpg

_TODAY = "(now() AT TIME ZONE 'UTC')::date"


@dataclass(frozen=True, slots=True)
class LinkEgress:
    link: str
    budget_bytes_per_day: int | None
    background_bytes: int
    client_bytes: int


class EgressRepo:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def reserve(self, charges: Mapping[str, int]) -> str | None:
        """Charge background bytes to today's egress of each link, all or nothing; the
        first link whose budget they would exceed, or None when all were charged."""
        try:
            await self._charge(charges)
        except _Exhausted as exhausted:
            return exhausted.link
        return None

    async def _charge(self, charges: Mapping[str, int]) -> None:
        async with self._pool.acquire() as con, con.transaction():
            for link, size in sorted(charges.items()):
                await con.execute(
                    f"INSERT INTO link_egress (link, day) VALUES ($1, {_TODAY})"
                    " ON CONFLICT DO NOTHING",
                    link,
                )
                charged = await con.fetchval(
                    "UPDATE link_egress e SET background_bytes = e.background_bytes + $2"
                    f" WHERE e.link = $1 AND e.day = {_TODAY} AND e.background_bytes + $2 <="
                    " coalesce((SELECT l.egress_budget_bytes_per_day FROM links l"
                    "  WHERE l.name = $1), 9223372036854775807 - $2)"
                    " RETURNING e.link",
                    link,
                    size,
                )
                if charged is None:
                    # Raising rolls back the charges already made in this transaction.
                    raise _Exhausted(link)

    async def release(self, charges: Mapping[str, int]) -> None:
        """Give back what a copy that failed had charged."""
        await self._pool.executemany(
            "UPDATE link_egress SET background_bytes = greatest(background_bytes - $2, 0)"
            f" WHERE link = $1 AND day = {_TODAY}",
            list(charges.items()),
        )

    async def add_client(self, counts: Mapping[str, int]) -> None:
        await self._pool.executemany(
            f"INSERT INTO link_egress (link, day, client_bytes) VALUES ($1, {_TODAY}, $2)"
            " ON CONFLICT (link, day) DO UPDATE"
            " SET client_bytes = link_egress.client_bytes + EXCLUDED.client_bytes",
            list(counts.items()),
        )

    async def today(self) -> dict[str, LinkEgress]:
        rows = await self._pool.fetch(
            "SELECT l.name AS link, l.egress_budget_bytes_per_day AS budget_bytes_per_day,"
            " coalesce(e.background_bytes, 0) AS background_bytes,"
            " coalesce(e.client_bytes, 0) AS client_bytes"
            f" FROM links l LEFT JOIN link_egress e ON e.link = l.name AND e.day = {_TODAY}"
        )
        return {r["link"]: LinkEgress(**dict(r)) for r in rows}


class _Exhausted(Exception):
    def __init__(self, link: str) -> None:
        super().__init__(link)
        self.link = link
