"""Active link health: every link is probed on a schedule, so a dead path is noticed
before client traffic hits it, and a restored one is used again without waiting for
client traffic to test it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from gateway.links.routing import LinkedBackend

log = logging.getLogger(__name__)


class LinkProber:
    def __init__(self, linked: Mapping[str, LinkedBackend]) -> None:
        self._links = [link for backend in linked.values() for link in backend.links]

    async def probe_all(self) -> dict[str, bool]:
        results = await asyncio.gather(*(link.probe() for link in self._links))
        states = {link.link_name: ok for link, ok in zip(self._links, results, strict=True)}
        down = sorted(name for name, ok in states.items() if not ok)
        if down:
            log.warning("links failing their probe: %s", ", ".join(down))
        return states
