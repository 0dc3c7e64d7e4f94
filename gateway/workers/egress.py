"""Reports the bytes clients read over each link to PostgreSQL, where the admin API shows
them beside the background bytes that budgets limit."""

from __future__ import annotations

from collections.abc import Mapping

from gateway.links.routing import LinkedBackend
from metadata.egress import EgressRepo


class EgressReporter:
    def __init__(self, repo: EgressRepo, linked: Mapping[str, LinkedBackend]) -> None:
        self._repo = repo
        self._links = [link for backend in linked.values() for link in backend.links]

    async def flush(self) -> None:
        counts: dict[str, int] = {}
        for link in self._links:
            if link.client_read_bytes:
                # Taken before the await: reads that land meanwhile go to the next flush.
                counts[link.link_name] = counts.get(link.link_name, 0) + link.client_read_bytes
                link.client_read_bytes = 0
        if not counts:
            return
        try:
            await self._repo.add_client(counts)
        except Exception:
            by_name = {link.link_name: link for link in self._links}
            for name, size in counts.items():
                by_name[name].client_read_bytes += size
            raise
