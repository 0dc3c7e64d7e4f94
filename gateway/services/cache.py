"""A small per-process cache whose entries expire: for rows read on every request that
change rarely (buckets, access keys)."""

from __future__ import annotations

import time
from typing import Generic, TypeVar

V = TypeVar("V")


class TtlCache(Generic[V]):
    def __init__(self, ttl_s: float, max_entries: int) -> None:
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._entries: dict[str, tuple[float, V]] = {}

    def get(self, key: str) -> V | None:
        entry = self._entries.get(key)
        if entry is None or time.monotonic() - entry[0] >= self._ttl_s:
            return None
        return entry[1]

    def put(self, key: str, value: V) -> None:
        if len(self._entries) >= self._max_entries:
            # Crude but bounded: a full cache starts over rather than tracking recency.
            self._entries.clear()
        self._entries[key] = (time.monotonic(), value)

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)
