"""The set of configured backends, by name."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from gateway.backends.base import Backend


@runtime_checkable
class Hedgeable(Protocol):
    """A backend that knows when a read of it is late (a LinkedBackend)."""

    def hedge_after_s(self) -> float | None: ...


class UnknownBackend(KeyError):
    pass


class BackendRegistry:
    def __init__(self, backends: Iterable[Backend]) -> None:
        self._by_name = {b.name: b for b in backends}

    def get(self, name: str) -> Backend:
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownBackend(name) from None

    def hedge_after_s(self, name: str) -> float | None:
        backend = self._by_name.get(name)
        return backend.hedge_after_s() if isinstance(backend, Hedgeable) else None

    def add(self, backend: Backend) -> None:
        self._by_name[backend.name] = backend

    def remove(self, name: str) -> None:
        self._by_name.pop(name, None)

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def all(self) -> list[Backend]:
        return list(self._by_name.values())

    async def close(self) -> None:
        for backend in self._by_name.values():
            await backend.close()
