"""A TCP proxy that plays a network link in tests: cut, hang, delay, throttle, reset or
corrupt it.

:class:`LinkProxy` listens on a free loopback port and forwards every connection to one
upstream ``host:port``. It runs its own event loop in a background thread, so synchronous
tests (boto3) and gateway subprocesses can use it alike. Every control is thread-safe and
takes effect before it returns, on the connections already open as well as on new ones.

Each direction of a connection is a pipeline: a reader stamps every chunk with the time it
arrived and puts it in a small bounded queue; a writer holds it while the link hangs, until
its arrival time plus the delay, and then for as long as the token bucket asks. A delay is
therefore latency, not a bandwidth cap: chunks in flight overlap their delays as they would
on a long line.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from tests.loopthread import LoopThread

LOOPBACK = "127.0.0.1"
READ_CHUNK_BYTES = 64 * 1024
# Largest piece written at once while throttled, so the rate stays smooth.
THROTTLE_SLICE_BYTES = 16 * 1024
# A throttled direction may send this many seconds' worth of bytes in one burst.
BURST_S = 0.1
# Chunks buffered per direction: bounds memory and keeps backpressure end to end.
_QUEUE_CHUNKS = 8
_CONTROL_TIMEOUT_S = 10.0

Direction = Literal["up", "down"]


class _LinkReset(Exception):
    """Raised by a writer when the connection's reset_after budget is spent."""


@dataclass
class _State:
    hung: bool = False
    delay_s: float = 0.0
    reset_after_bytes: int | None = None
    reset_direction: Direction = "up"
    # Directions whose chunks of at least this many bytes get their last byte flipped.
    corrupt: dict[Direction, int] = field(default_factory=dict)
    # A chunk holding this pattern is dropped and its connection reset (then the link is
    # cut too, when asked): the one message it carries is lost.
    lose: tuple[Direction, bytes, bool] | None = None


class _TokenBucket:
    """Generic cell rate algorithm: ``reserve`` says when ``n`` bytes may go."""

    def __init__(self, bytes_per_s: int) -> None:
        self.bytes_per_s = bytes_per_s
        self._due_at = 0.0  # when the bytes reserved so far will have drained

    def reserve(self, n: int, now: float) -> float:
        self._due_at = max(self._due_at, now) + n / self.bytes_per_s
        return self._due_at - BURST_S

    def slice_bytes(self) -> int:
        return max(1, min(THROTTLE_SLICE_BYTES, int(self.bytes_per_s * BURST_S)))


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close abruptly: SO_LINGER 0 makes the kernel send RST instead of FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _ended_cleanly(task: asyncio.Task[None]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is None


class _Connection:
    """One proxied connection: two directions, each a reader task and a writer task."""

    def __init__(
        self,
        proxy: LinkProxy,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> None:
        self._proxy = proxy
        self._client = client
        self._upstream = upstream
        self._tasks: list[asyncio.Task[None]] = []
        # Bytes left to forward in the reset direction before a reset; None when off.
        self.reset_budget: int | None = proxy._state.reset_after_bytes

    async def run(self) -> None:
        """Forward until both directions end (graceful) or one fails (reset both sides)."""
        up: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(_QUEUE_CHUNKS)
        down: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(_QUEUE_CHUNKS)
        self._tasks = [
            asyncio.create_task(self._read(self._client[0], up)),
            asyncio.create_task(self._write(up, self._upstream[1], "up")),
            asyncio.create_task(self._read(self._upstream[0], down)),
            asyncio.create_task(self._write(down, self._client[1], "down")),
        ]
        try:
            await asyncio.wait(self._tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            if not all(_ended_cleanly(t) for t in self._tasks):
                self.reset()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._close()

    def reset(self) -> None:
        for task in self._tasks:
            task.cancel()
        _reset(self._client[1])
        _reset(self._upstream[1])

    async def _close(self) -> None:
        for writer in (self._client[1], self._upstream[1]):
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _read(
        self, reader: asyncio.StreamReader, queue: asyncio.Queue[tuple[float, bytes]]
    ) -> None:
        loop = asyncio.get_running_loop()
        while chunk := await reader.read(READ_CHUNK_BYTES):
            await queue.put((loop.time(), chunk))
        await queue.put((loop.time(), b""))

    async def _write(
        self,
        queue: asyncio.Queue[tuple[float, bytes]],
        writer: asyncio.StreamWriter,
        direction: Direction,
    ) -> None:
        while True:
            arrived_at, chunk = await queue.get()
            if not chunk:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            await self._proxy._hold(arrived_at)
            self._proxy._maybe_lose(direction, chunk)
            chunk = self._proxy._maybe_corrupt(direction, chunk)
            view = memoryview(chunk)
            while view:
                piece, view = await self._proxy._take(direction, view)
                await self._send(writer, direction, bytes(piece))

    async def _send(self, writer: asyncio.StreamWriter, direction: Direction, data: bytes) -> None:
        budget = self.reset_budget if direction == self._proxy._state.reset_direction else None
        spent = budget is not None and len(data) >= budget
        if budget is not None:
            data = data[:budget]
            self.reset_budget = budget - len(data)
        writer.write(data)
        self._proxy._count(direction, len(data))
        await writer.drain()
        if spent:
            raise _LinkReset


class LinkProxy(LoopThread):
    """A TCP proxy on ``127.0.0.1:<free port>`` that forwards to ``upstream_host:port``.

    Controls (thread-safe, effective on open connections before they return):

    - :meth:`cut`: reset every open connection (RST) and reset new ones as they arrive.
    - :meth:`hang`: accept and hold connections but forward nothing (a black hole).
    - :meth:`delay`: add latency to every chunk, both directions.
    - :meth:`throttle`: cap throughput per direction, summed over all connections.
    - :meth:`reset_after`: reset a connection once it forwarded ``n`` more bytes in one
      direction, upstream-bound by default (counted from the call for open connections,
      from the accept for new ones).
    - :meth:`corrupt`: flip the last byte of every chunk of at least ``min_chunk_bytes``
      forwarded in one direction (the length stays right, so only a checksum can tell).
    - :meth:`restore`: undo all of the above.

    Counters ``bytes_up`` (client to upstream), ``bytes_down``, ``connections`` (accepted)
    and ``corrupted`` (chunks altered) are totals since :meth:`start`.
    """

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        super().__init__()
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.bytes_up = 0
        self.bytes_down = 0
        self.connections = 0
        self.corrupted = 0
        self.lost = 0
        self._cut = False
        self._state = _State()
        self._buckets: dict[Direction, _TokenBucket] = {}
        self._changed = asyncio.Event()
        self._open: set[_Connection] = set()
        self._handlers: set[asyncio.Task[object]] = set()
        self._server: asyncio.Server | None = None

    # -- lifetime ---------------------------------------------------------------------------

    def _thread_name(self) -> str:
        return f"link-proxy-{self.upstream_host}:{self.upstream_port}"

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    # -- controls -----------------------------------------------------------------------------

    def cut(self) -> None:
        self._control(self._apply_cut)

    def hang(self) -> None:
        self._control(lambda: setattr(self._state, "hung", True))

    def delay(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"delay must be >= 0, got {seconds}")
        self._control(lambda: setattr(self._state, "delay_s", seconds))

    def throttle(self, bytes_per_s: int) -> None:
        if bytes_per_s <= 0:
            raise ValueError(f"throttle must be > 0 bytes/s, got {bytes_per_s}")
        self._control(lambda: self._apply_throttle(bytes_per_s))

    def reset_after(self, n_bytes: int, direction: Direction = "up") -> None:
        if n_bytes < 0:
            raise ValueError(f"reset_after must be >= 0, got {n_bytes}")
        self._control(lambda: self._apply_reset_after(n_bytes, direction))

    def corrupt(self, direction: Direction = "down", min_chunk_bytes: int = 1024) -> None:
        """Small chunks (request and status lines, headers) pass intact by default."""
        if min_chunk_bytes < 1:
            raise ValueError(f"min_chunk_bytes must be >= 1, got {min_chunk_bytes}")
        self._control(lambda: self._state.corrupt.__setitem__(direction, min_chunk_bytes))

    def lose(self, pattern: bytes, direction: Direction = "down", then_cut: bool = False) -> None:
        """Drop each chunk holding ``pattern`` and reset its connection (a message
        lost in flight, such as a database's answer); ``then_cut`` cuts the link as well."""
        if not pattern:
            raise ValueError("lose needs a pattern")
        self._control(lambda: setattr(self._state, "lose", (direction, pattern, then_cut)))

    def restore(self) -> None:
        self._control(self._apply_restore)

    def _control(self, apply: Callable[[], None]) -> None:
        """Run ``apply`` on the proxy's loop (state is only touched there), then wake writers."""

        def apply_and_wake() -> None:
            apply()
            woken, self._changed = self._changed, asyncio.Event()
            woken.set()

        loop = self._loop
        if loop is None or not loop.is_running():
            apply()
            return

        async def on_loop() -> None:
            apply_and_wake()

        asyncio.run_coroutine_threadsafe(on_loop(), loop).result(_CONTROL_TIMEOUT_S)

    def _apply_cut(self) -> None:
        self._cut = True
        for conn in list(self._open):
            conn.reset()

    def _apply_throttle(self, bytes_per_s: int) -> None:
        self._buckets = {"up": _TokenBucket(bytes_per_s), "down": _TokenBucket(bytes_per_s)}

    def _apply_reset_after(self, n_bytes: int, direction: Direction) -> None:
        self._state.reset_after_bytes = n_bytes
        self._state.reset_direction = direction
        for conn in self._open:
            conn.reset_budget = n_bytes

    def _apply_restore(self) -> None:
        self._cut = False
        self._state = _State()
        self._buckets = {}
        for conn in self._open:
            conn.reset_budget = None

    # -- the loop thread ----------------------------------------------------------------------

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        try:
            self._server = loop.run_until_complete(asyncio.start_server(self._serve, LOOPBACK, 0))
        except BaseException as exc:  # reported to start()'s caller
            self._start_error = exc
            loop.close()
            ready.set()
            return
        self._port = self._server.sockets[0].getsockname()[1]
        self._loop = loop
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._shutdown())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        self._apply_cut()
        for task in self._handlers:
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._proxy_one((reader, writer))
        except asyncio.CancelledError:
            # Only _shutdown cancels a handler. Python 3.11's start_server calls
            # task.exception() on it, which logs a cancelled task as an error.
            pass
        finally:
            self._handlers.discard(task)

    async def _proxy_one(self, client: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        try:
            if self._cut:
                raise ConnectionRefusedError("link is cut")
            upstream = await asyncio.open_connection(self.upstream_host, self.upstream_port)
        except OSError:
            _reset(client[1])
            return
        except asyncio.CancelledError:
            _reset(client[1])
            raise
        conn = _Connection(self, client, upstream)
        if self._cut:  # cut while we were connecting
            conn.reset()
            return
        self._open.add(conn)
        try:
            await conn.run()
        finally:
            self._open.discard(conn)

    async def _wait_changed(self, timeout_s: float | None) -> None:
        changed = self._changed
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await changed.wait()

    async def _hold(self, arrived_at: float) -> None:
        """Wait while the link hangs, then until the chunk has been delayed enough."""
        loop = asyncio.get_running_loop()
        while True:
            if self._state.hung:
                await self._wait_changed(None)
                continue
            remaining = arrived_at + self._state.delay_s - loop.time()
            if remaining <= 0:
                return
            await self._wait_changed(remaining)

    async def _take(self, direction: Direction, data: memoryview) -> tuple[memoryview, memoryview]:
        """Split off the next piece of ``data`` the throttle lets through, waiting for it."""
        bucket = self._buckets.get(direction)
        if bucket is None:
            return data, data[len(data) :]
        n = bucket.slice_bytes()
        loop = asyncio.get_running_loop()
        wait_s = bucket.reserve(min(n, len(data)), loop.time()) - loop.time()
        if wait_s > 0:
            await self._wait_changed(wait_s)
        await self._hold(0.0)  # a hang set while we waited holds the rest of the chunk
        return data[:n], data[n:]

    def _maybe_lose(self, direction: Direction, chunk: bytes) -> None:
        lose = self._state.lose
        if lose is None or lose[0] != direction or lose[1] not in chunk:
            return
        self.lost += 1
        if lose[2]:
            self._apply_cut()
        raise _LinkReset

    def _maybe_corrupt(self, direction: Direction, chunk: bytes) -> bytes:
        threshold = self._state.corrupt.get(direction)
        if threshold is None or len(chunk) < threshold:
            return chunk
        self.corrupted += 1
        return chunk[:-1] + bytes([chunk[-1] ^ 0xFF])

    def _count(self, direction: Direction, n: int) -> None:
        if direction == "up":
            self.bytes_up += n
        else:
            self.bytes_down += n
