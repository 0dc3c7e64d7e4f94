"""A token bucket shared by every transfer on one link of this node."""

from __future__ import annotations

import asyncio
import time


class TokenBucket:
    """``rate`` bytes per second, with bursts of at most ``burst`` bytes."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self._rate = rate
        self._burst = burst if burst is not None else max(rate / 10, 64 * 1024)
        self._tokens = self._burst
        self._updated = time.monotonic()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
        self._updated = now

    async def consume(self, amount: int) -> None:
        """Wait until ``amount`` bytes may pass; large amounts pass as a debt, smoothly."""
        async with self._lock:
            self._refill()
            self._tokens -= amount
            if self._tokens < 0:
                await asyncio.sleep(-self._tokens / self._rate)
