"""Each node's demand on each capped link, so that the nodes of a site split its caps."""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg

# A node that has not reported for this long is gone: its share goes to the others.
LIVE_WINDOW_S = 3.0
# Rows of nodes gone this long are removed.
FORGET_AFTER_S = 60.0


class LinkShareRepo:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def report(self, node: str, demand: Mapping[str, float]) -> dict[str, list[float]]:
        """Record this node's demand per link; return, per link, the demands of the other
        nodes seen within the live window (one round trip)."""
        links = list(demand)
        rows = await self._pool.fetch(
            "WITH mine AS ("
            "  INSERT INTO link_shares (link, node, demand, seen_at)"
            "  SELECT link, $1, d, now() FROM unnest($2::text[], $3::float8[]) AS u (link, d)"
            "  ON CONFLICT (link, node) DO UPDATE SET demand = excluded.demand, seen_at = now()"
            ") SELECT link, demand FROM link_shares"
            " WHERE link = ANY ($2::text[]) AND node <> $1"
            "   AND seen_at > now() - make_interval(secs => $4)",
            node,
            links,
            [demand[link] for link in links],
            LIVE_WINDOW_S,
        )
        others: dict[str, list[float]] = {link: [] for link in links}
        for row in rows:
            others[row["link"]].append(row["demand"])
        return others

    async def forget_gone(self) -> int:
        result: str = await self._pool.execute(
            "DELETE FROM link_shares WHERE seen_at < now() - make_interval(secs => $1)",
            FORGET_AFTER_S,
        )
        return int(result.split()[-1])

    async def leave(self, node: str) -> None:
        """A node shutting down hands its shares back at once."""
        await self._pool.execute("DELETE FROM link_shares WHERE node = $1", node)
