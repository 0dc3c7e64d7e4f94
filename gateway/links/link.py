"""A link wraps the driver of a backend: concurrency cap, bandwidth cap and health."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from gateway.backends.base import Backend, BackendError, BackendKeyNotFound
from gateway.links.egress import is_background
from gateway.links.health import CircuitBreaker
from gateway.links.metering import LinkMeter, Unmetered
from gateway.links.ratelimit import TokenBucket

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
    ) -> None:
        self.name = backend  # a Link stands in for its backend
        self.link_name = name
        self.capabilities = inner.capabilities
        self._inner = inner
        self._bucket = TokenBucket(bandwidth_bytes_per_s) if bandwidth_bytes_per_s else None
        self._slots = asyncio.Semaphore(max_concurrency) if max_concurrency else None
        self.breaker = breaker or CircuitBreaker()
        self._first_byte_timeout_s = first_byte_timeout_s
        self._meter = meter or Unmetered()
        # Bytes clients read over this link, not yet reported (see workers/egress.py).
        self.client_read_bytes = 0

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
        if self._slots is None:
            yield
            return
        async with self._slots:
            yield

    async def _throttled(self, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for chunk in body:
            if self._bucket is not None:
                await self._bucket.consume(len(chunk))
            self._meter.sent(len(chunk))
            yield chunk

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
            self.breaker.record_success(time.monotonic() - started)
            if first is None:
                return
            client = not is_background()
            self._received(len(first), client)
            yield first
            async for chunk in stream:
                if self._bucket is not None:
                    await self._bucket.consume(len(chunk))
                self._received(len(chunk), client)
                yield chunk

    def _received(self, size: int, client: bool) -> None:
        self._meter.received(size)
        if client:
            self.client_read_bytes += size

    async def _first(self, stream: AsyncIterator[bytes]) -> bytes | None:
        try:
            return await asyncio.wait_for(anext(stream, None), self._first_byte_timeout_s)
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

    async def close_inner_once(self, closed: set[int]) -> None:
        """Links sharing one driver close it once."""
        if id(self._inner) not in closed:
            closed.add(id(self._inner))
            await self._inner.close()
