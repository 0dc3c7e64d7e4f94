"""The narrow seam between the gateway and an object store.

A backend stores opaque byte objects under keys the gateway owns. Keys are made of
``[A-Za-z0-9._/-]`` only, never start with ``/`` and never contain ``..``: the gateway
generates them, so a client's key never reaches a backend.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol


class BackendError(Exception):
    """The store failed or could not be reached. Callers may retry or fail over."""


class BackendKeyNotFound(BackendError):
    """The key does not exist on the backend."""


@dataclass(frozen=True, slots=True)
class BackendCapabilities:
    # Whether ``get`` honours a byte range natively (otherwise the caller trims).
    ranged_reads: bool = True


class Backend(Protocol):
    """One bucket or directory in one object store."""

    name: str
    capabilities: BackendCapabilities

    async def put(self, key: str, body: AsyncIterator[bytes], size_hint: int | None) -> int:
        """Store ``body`` under ``key`` atomically and return the number of bytes written.

        Readers never observe a partial object: either the previous content (or nothing) or
        the complete new content. If ``body`` raises, nothing is left behind under ``key``.
        Memory use is bounded by a constant, whatever the object size.
        """
        ...

    def get(self, key: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        """Stream ``length`` bytes (or to the end) starting at ``offset``.

        Raises :class:`BackendKeyNotFound` before yielding anything if the key is absent.
        """
        ...

    async def delete(self, key: str) -> None:
        """Delete ``key``. Idempotent: deleting a missing key succeeds."""
        ...

    async def size(self, key: str) -> int | None:
        """Return the stored size of ``key`` or ``None`` if it does not exist."""
        ...

    def list_keys(self, prefix: str = "") -> AsyncIterator[str]:
        """Yield every key under ``prefix`` (used by gc and scrub to find orphans)."""
        ...

    async def sweep_abandoned(self, older_than_s: float) -> int:
        """Remove what writes that died left on the store (temp files, unfinished uploads)
        untouched for ``older_than_s``; return how many were removed.

        A write still running when swept fails cleanly; it never publishes partial bytes.
        """
        ...

    async def close(self) -> None:
        """Release connections and other resources."""
        ...
