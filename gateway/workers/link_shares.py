"""Splits each capped link's bandwidth and concurrency among the nodes that use it.

A link is one network path from a site, so every node at that site draws on the same
caps. Every second each node reports its demand on its capped links and sets its share
from the others' (gateway/links/shares.py). Without the database a node keeps its last
shares: the caps then still hold, as long as the other nodes' demand does not change."""

from __future__ import annotations

from collections.abc import Mapping

from gateway.links.link import Link
from gateway.links.routing import LinkedBackend
from gateway.links.shares import held_share
from metadata.link_shares import LinkShareRepo

# Rows of departed nodes are cleared every this many reports.
FORGET_EVERY = 60


class LinkShares:
    def __init__(self, repo: LinkShareRepo, linked: Mapping[str, LinkedBackend], node: str) -> None:
        self._repo = repo
        self._linked = linked
        self.node = node
        self._reports = 0
        # The demand this node last reported per link: what the others split it by since.
        self._reported: dict[str, float] = {}

    def _capped(self) -> dict[str, Link]:
        return {
            link.link_name: link
            for backend in self._linked.values()
            for link in backend.links
            if link.capped
        }

    async def report(self) -> None:
        links = self._capped()
        if not links:
            return
        demand = {name: link.demand.take() for name, link in links.items()}
        others = await self._repo.report(self.node, demand)
        for name, link in links.items():
            reported = self._reported.get(name, 0.0)
            link.set_share(held_share(demand[name], reported, others.get(name, [])))
            self._reported[name] = demand[name]
        self._reports += 1
        if self._reports % FORGET_EVERY == 0:
            await self._repo.forget_gone()

    async def leave(self) -> None:
        """Hand this node's shares back at shutdown, so the others take them at once."""
        await self._repo.leave(self.node)
