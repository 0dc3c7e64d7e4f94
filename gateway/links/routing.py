"""Every backend is reached through its links from this site, dedicated line first."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar

from gateway.backends.base import BackendError, BackendKeyNotFound
from gateway.links.link import Link, LinkDown

T = TypeVar("T")


class LinkedBackend:
    """A backend as this site sees it: its links in order, each tried while the earlier
    ones are down. Writes take the first link whose circuit is closed; reads fall over to
    the next link on an error before the first byte."""

    def __init__(self, name: str, links: Sequence[Link]) -> None:
        if not links:
            raise ValueError(f"backend {name} has no link")
        self.name = name
        self.links = list(links)
        self.capabilities = links[0].capabilities

    def _usable(self) -> list[Link]:
        usable = [link for link in self.links if link.breaker.healthy]
        return usable or self.links[:1]

    def hedge_after_s(self) -> float | None:
        """How long a read waits for its first byte before it also asks another replica:
        the observed p95 of the link reads take (None: too few reads seen yet)."""
        return self._usable()[0].first_byte.quantile(0.95)

    @property
    def healthy(self) -> bool:
        return any(link.breaker.healthy for link in self.links)

    async def put(self, key: str, body: AsyncIterator[bytes], size_hint: int | None) -> int:
        return await self._usable()[0].put(key, body, size_hint)

    async def get(
        self, key: str, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        last: BackendError | None = None
        for link in self._usable():
            stream = link.get(key, offset, length)
            try:
                first = await anext(stream, None)
            except BackendKeyNotFound:
                raise
            except BackendError as exc:
                last = exc
                continue
            if first is not None:
                yield first
            async for chunk in stream:
                yield chunk
            return
        raise last or LinkDown(f"no link to {self.name}")

    async def delete(self, key: str) -> None:
        await self._first_working(lambda link: link.delete(key))

    async def size(self, key: str) -> int | None:
        return await self._first_working(lambda link: link.size(key))

    async def _first_working(self, operation: Callable[[Link], Awaitable[T]]) -> T:
        last: BackendError | None = None
        for link in self._usable():
            try:
                return await operation(link)
            except BackendKeyNotFound:
                raise
            except BackendError as exc:
                last = exc
        raise last or LinkDown(f"no link to {self.name}")

    def list_keys(self, prefix: str = "") -> AsyncIterator[str]:
        return self._usable()[0].list_keys(prefix)

    async def sweep_abandoned(self, older_than_s: float) -> int:
        return await self._first_working(lambda link: link.sweep_abandoned(older_than_s))

    async def close(self) -> None:
        closed: set[int] = set()
        for link in self.links:
            await link.close_inner_once(closed)
