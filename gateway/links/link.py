"""A link wraps the driver of a backend: concurrency cap, bandwidth cap and health."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from gateway.backends.base import Backend, BackendError, BackendKeyNotFound
from gateway.links.egress import is_background
from gateway.links.health import CircuitBreaker, LatencyWindow
from gateway.links.metering import LinkMeter, Unmetered
from gateway.links.ratelimit import DemandGauge, Slots, TokenBucket
from gateway.links.shares import STARTING_SHARE, bandwidth_share, concurrency_share

# A key the gateway never writes (object keys start with "b<bucket id>/").
PROBE_KEY = "skybridge-link-probe"
PROBE_TIMEOUT_S = 5.0


class LinkDown(BackendError):
    """The link's circuit is open: fail fast instead of waiting for a dead path."""


class LinkTimeout(BackendError):
    """The first byte did not arrive in time: the path may hang; try another replica."""


class Link:
    """Implements the Backend protocol over ``inner``, as seen through one network path."""

    def __init__(
        self,
        name: str,
        backend: str,
        inner: Backend,
        *,
        bandwidth_bytes_per_s: int | None = None,
        max_concurrency: int | None = None,
        breaker: CircuitBreaker | None = None,
        first_byte_timeout_s: float | None = None,
        meter: LinkMeter | None = None,
        endpoint: str | None = None,
    ) -> None:
        self.name = backend  # a Link stands in for its backend
        self.link_name = name
        # The overriding address this link was opened with, if any.
        self.endpoint = endpoint
        self.capabilities = inner.capabilities
        self._inner = inner
        self.breaker = breaker or CircuitBreaker()
        self._meter = meter or Unmetered()
        # Bytes clients read over this link, not yet reported (see workers/egress.py).
        self.client_read_bytes = 0
        self.demand = DemandGauge()
        self.first_byte = LatencyWindow()
        # This node's part of the caps, which are the link's as a whole, for all nodes;
        # workers/link_shares.py sets it once the node has heard from the others.
        self.share = STARTING_SHARE
        self._bucket: TokenBucket | None = None
        self._slots: Slots | None = None
        self.reconfigure(bandwidth_bytes_per_s, max_concurrency, first_byte_timeout_s)

    def reconfigure(
        self,
        bandwidth_bytes_per_s: int | None,
        max_concurrency: int | None,
        first_byte_timeout_s: float | None,
    ) -> None:
        """New settings from the database take effect on the open link, mid-transfer."""
        self.bandwidth_cap = bandwidth_bytes_per_s
        self.concurrency_cap = max_concurrency
        self._first_byte_timeout_s = first_byte_timeout_s
        if bandwidth_bytes_per_s is None:
            self._bucket = None
        elif self._bucket is None:
            self._bucket = TokenBucket(bandwidth_share(bandwidth_bytes_per_s, self.share))
        if max_concurrency is None:
            self._slots = None
        elif self._slots is None:
            self._slots = Slots(concurrency_share(max_concurrency, self.share))
        self.set_share(self.share)

    @property
    def capped(self) -> bool:
        return self.bandwidth_cap is not None or self.concurrency_cap is not None

    def set_share(self, share: float) -> None:
        self.share = share
        if self._bucket is not None and self.bandwidth_cap is not None:
            self._bucket.set_rate(bandwidth_share(self.bandwidth_cap, share))
        if self._slots is not None and self.concurrency_cap is not None:
            self._slots.resize(concurrency_share(self.concurrency_cap, share))

    @property
    def bandwidth_here(self) -> int | None:
        """The bandwidth this node may use now, in whole bytes per second."""
        if self._bucket is None or self.bandwidth_cap is None:
            return None
        # The rate is a float: never report more than the cap it was taken from.
        return min(int(self._bucket.rate), self.bandwidth_cap)

    @property
    def concurrency_here(self) -> int | None:
        return None if self._slots is None else self._slots.limit

    async def probe(self) -> bool:
        """Ask the store for a key that never exists: an answer, even 'absent', proves the
        path works. Runs whatever the breaker says, so it is what closes an open one."""
        try:
            async with self._slot(), self._exchange("probe"):
                await self._probe_once()
        except BackendError:
            return False
        return True

    async def _probe_once(self) -> None:
        timeout_s = self._first_byte_timeout_s or PROBE_TIMEOUT_S
        try:
            await asyncio.wait_for(self._inner.size(PROBE_KEY), timeout_s)
        except TimeoutError:
            raise LinkTimeout(f"link {self.link_name}: no probe answer in {timeout_s} s") from None

    def _check(self) -> None:
        if not self.breaker.allow():
            raise LinkDown(f"link {self.link_name} is down")

    @contextlib.asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        self.demand.enter()
        try:
            slots = self._slots
            if slots is None:
                yield
                return
            await slots.acquire()
            try:
                yield
            finally:
                slots.release()
        finally:
            self.demand.leave()

    async def _paced(self, chunk: bytes) -> AsyncIterator[bytes]:
        """``chunk`` as the link's bandwidth cap lets it pass: in slices of a fiftieth of a
        second's worth, each let through when its tokens are there. Whole chunks (often a
        MiB) would pass in steps an eighth of a second apart on an 8 MiB/s link, and any
        one second could then carry an extra chunk: 12 % over the cap."""
        bucket = self._bucket
        if bucket is None:
            yield chunk
            return
        step = bucket.slice_bytes
        if len(chunk) <= step:
            await bucket.consume(len(chunk))
            yield chunk
            return
        view = memoryview(chunk)
        for at in range(0, len(chunk), step):
            piece = bytes(view[at : at + step])
            await bucket.consume(len(piece))
            yield piece

    async def _throttled(self, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for chunk in body:
            async for piece in self._paced(chunk):
                self._meter.sent(len(piece))
                yield piece

    async def put(self, key: str, body: AsyncIterator[bytes], size_hint: int | None) -> int:
        self._check()
        async with self._slot(), self._exchange("put"):
            return await self._inner.put(key, self._throttled(body), size_hint)

    async def get(
        self, key: str, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        self._check()
        async with self._slot(), self._exchange("get"):
            started = time.monotonic()
            stream = self._inner.get(key, offset, length)
            first = await self._first(stream)
            latency = time.monotonic() - started
            self.breaker.record_success(latency)
            self.first_byte.add(latency)
            if first is None:
                return
            client = not is_background()
            self._received(len(first), client)
            yield first
            async for chunk in stream:
                async for piece in self._paced(chunk):
                    self._received(len(piece), client)
                    yield piece

    def _received(self, size: int, client: bool) -> None:
        self._meter.received(size)
        if client:
            self.client_read_bytes += size

    async def _first(self, stream: AsyncIterator[bytes]) -> bytes | None:
        try:
            # Not wait_for: in this task, so a read costs no task of its own for its first byte.
            async with asyncio.timeout(self._first_byte_timeout_s):
                return await anext(stream, None)
        except TimeoutError:
            raise LinkTimeout(
                f"link {self.link_name}: no first byte in {self._first_byte_timeout_s} s"
            ) from None

    async def delete(self, key: str) -> None:
        self._check()
        async with self._slot(), self._exchange("delete"):
            await self._inner.delete(key)

    async def size(self, key: str) -> int | None:
        self._check()
        async with self._slot(), self._exchange("size"):
            return await self._inner.size(key)

    @contextlib.asynccontextmanager
    async def _exchange(self, operation: str) -> AsyncIterator[None]:
        """One call over the link, as the breaker and the meter see it. An absent key is
        an answer from a working store; a consumer that stops reading is no failure."""
        started = time.monotonic()
        failed = False
        try:
            yield
        except BackendKeyNotFound:
            self.breaker.record_success()
            raise
        except BackendError:
            failed = True
            self.breaker.record_failure()
            raise
        finally:
            self._meter.exchange(operation, time.monotonic() - started, failed)
        self.breaker.record_success()

    def list_keys(self, prefix: str = "") -> AsyncIterator[str]:
        return self._inner.list_keys(prefix)

    async def sweep_abandoned(self, older_than_s: float) -> int:
        return await self._inner.sweep_abandoned(older_than_s)

    async def close(self) -> None:
        await self._inner.close()

    @property
    def inner(self) -> Backend:
        return self._inner

    async def close_inner_once(self, closed: set[int]) -> None:
        """Links sharing one driver close it once."""
        if id(self._inner) not in closed:
            closed.add(id(self._inner))
            await self._inner.close()
