"""The caps of one link on this node: a token bucket for bandwidth, slots for concurrency,
both resizable, since this node's share of a link's caps moves with the other nodes'
demand (gateway/links/shares.py)."""

from __future__ import annotations

import asyncio
import time
from collections import deque


def _burst(rate: float) -> float:
    # Any one second may carry the rate plus one burst: 5 % over at most.
    return max(rate / 20, 64 * 1024)


class TokenBucket:
    """``rate`` bytes per second, with bursts of at most a twentieth of a second's worth."""

    def __init__(self, rate: float) -> None:
        self._rate = rate
        self._burst = _burst(rate)
        self._tokens = self._burst
        self._updated = time.monotonic()
        self._lock = asyncio.Lock()

    @property
    def rate(self) -> float:
        return self._rate

    @property
    def slice_bytes(self) -> int:
        """The most bytes to let through at once: a fiftieth of a second's worth."""
        return max(16 * 1024, int(self._rate / 50))

    def set_rate(self, rate: float) -> None:
        self._refill()
        self._rate = rate
        self._burst = _burst(rate)
        self._tokens = min(self._tokens, self._burst)

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


class Slots:
    """A semaphore whose limit can change while requests hold and wait for slots; a
    lowered limit takes effect as holders leave."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._used = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def limit(self) -> int:
        return self._limit

    def resize(self, limit: int) -> None:
        self._limit = limit
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._used < self._limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._used += 1
                waiter.set_result(None)

    async def acquire(self) -> None:
        if self._used < self._limit and not self._waiters:
            self._used += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # the slot came with the cancellation: hand it on
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        self._used -= 1
        self._wake()


class DemandGauge:
    """The average number of requests using or waiting for a link since the last reading:
    what this node tells the others it wants of the link."""

    def __init__(self) -> None:
        self._active = 0
        self._area = 0.0
        self._since = self._changed = time.monotonic()

    def _advance(self) -> None:
        now = time.monotonic()
        self._area += self._active * (now - self._changed)
        self._changed = now

    def enter(self) -> None:
        self._advance()
        self._active += 1

    def leave(self) -> None:
        self._advance()
        self._active -= 1

    def take(self) -> float:
        self._advance()
        elapsed = self._changed - self._since
        average = self._area / elapsed if elapsed > 0 else float(self._active)
        self._area, self._since = 0.0, self._changed
        # A request that just arrived counts in full: it must not wait a whole reading.
        return max(average, float(self._active))
