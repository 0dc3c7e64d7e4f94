"""An HTTP reverse proxy in front of a real S3 server that makes it misbehave on request.

:class:`FaultProxy` forwards every request to the upstream S3 server untouched (headers,
``Host`` included, so signatures still verify) and streams the answer back, unless a
:class:`Rule` matches the request. A rule names a method, a substring of the path, a query
parameter and how many times it fires; its :class:`Fault` says what the client gets
instead:

- ``ERROR_500``: ``500 InternalError`` with an S3 XML body, the request not forwarded.
- ``SLOW_DOWN``: ``503 SlowDown`` with an S3 XML body, the request not forwarded.
- ``HANG``: nothing at all until :meth:`FaultProxy.restore` (or ``hang_s``), then the
  connection closes; the request is not forwarded.
- ``PARTIAL_BODY``: the request is forwarded, the answer's status and headers are
  intact, but only half of its body is sent before the connection is closed.
- ``WRONG_ETAG``: the request is forwarded, and the answer's ``ETag`` header is replaced
  by the MD5 of nothing.

Like :class:`tests.netproxy.LinkProxy` it runs its own event loop in a thread, so boto3
tests and gateway subprocesses can use it alike; controls are thread-safe.
"""

from __future__ import annotations

import asyncio
import enum
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from yarl import URL

from tests.loopthread import LoopThread

LOOPBACK = "127.0.0.1"
EMPTY_MD5 = "d41d8cd98f00b204e9800998ecf8427e"
DEFAULT_HANG_S = 120.0
_CONTROL_TIMEOUT_S = 10.0
_CHUNK_BYTES = 64 * 1024
# Hop-by-hop headers (aiohttp frames each side's body itself), and Expect: our own server
# already answered the 100-continue.
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "upgrade"})
_NOT_FORWARDED = _HOP_BY_HOP | {"expect"}


class Fault(enum.Enum):
    ERROR_500 = "500"
    SLOW_DOWN = "503"
    HANG = "hang"
    PARTIAL_BODY = "partial"
    WRONG_ETAG = "etag"


_ERRORS = {
    Fault.ERROR_500: (500, "InternalError", "We encountered an internal error."),
    Fault.SLOW_DOWN: (503, "SlowDown", "Please reduce your request rate."),
}


@dataclass
class Rule:
    """Matches a request by method (one or several), path substring and query parameter
    (all optional); fires ``times`` times (None: until removed)."""

    fault: Fault
    method: str | tuple[str, ...] | None = None
    path_contains: str = ""
    query_has: str | None = None
    times: int | None = None
    fired: int = 0

    def matches(self, method: str, path: str, query: set[str]) -> bool:
        if self.times is not None and self.fired >= self.times:
            return False
        if self.method is not None and method not in _as_tuple(self.method):
            return False
        if self.query_has is not None and self.query_has not in query:
            return False
        return self.path_contains in path


def _as_tuple(methods: str | tuple[str, ...]) -> tuple[str, ...]:
    return (methods,) if isinstance(methods, str) else methods


@dataclass
class _Seen:
    method: str
    path: str
    fault: Fault | None


@dataclass
class _State:
    rules: list[Rule] = field(default_factory=list)
    seen: list[_Seen] = field(default_factory=list)


class FaultProxy(LoopThread):
    """``http://127.0.0.1:<free port>`` forwarding to ``upstream_url`` (an S3 endpoint)."""

    def __init__(self, upstream_url: str, hang_s: float = DEFAULT_HANG_S) -> None:
        super().__init__()
        self.upstream = URL(upstream_url)
        self.hang_s = hang_s
        self._state = _State()
        self._released = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    # -- lifetime ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    # -- controls -----------------------------------------------------------------------------

    def add(self, rule: Rule) -> Rule:
        """Install ``rule`` (checked after the rules already there); returns it, so a test
        can read ``rule.fired``."""
        self._control(lambda: self._state.rules.append(rule))
        return rule

    def restore(self) -> None:
        """Remove every rule and release every hung request."""

        def clear() -> None:
            self._state.rules.clear()
            self._released.set()
            self._released = asyncio.Event()

        self._control(clear)

    def seen(self) -> list[tuple[str, str, Fault | None]]:
        """Every request so far: (method, path, the fault it got or None)."""
        return [(s.method, s.path, s.fault) for s in list(self._state.seen)]

    def _control(self, apply: Callable[[], None]) -> None:
        loop = self._loop
        if loop is None or not loop.is_running():
            apply()
            return

        async def on_loop() -> None:
            apply()

        asyncio.run_coroutine_threadsafe(on_loop(), loop).result(_CONTROL_TIMEOUT_S)

    # -- the loop thread ----------------------------------------------------------------------

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._open())
        except BaseException as exc:  # reported to start()'s caller
            self._start_error = exc
            loop.close()
            ready.set()
            return
        self._loop = loop
        ready.set()
        try:
            loop.run_forever()
        finally:
            self._released.set()
            loop.run_until_complete(self._close())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _open(self) -> None:
        self._released = asyncio.Event()
        app = web.Application(client_max_size=0)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, LOOPBACK, 0)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server)
        self._port = server.sockets[0].getsockname()[1]
        self._session = aiohttp.ClientSession(auto_decompress=False)

    async def _close(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- requests -----------------------------------------------------------------------------

    def _match(self, request: web.Request) -> Fault | None:
        query = set(request.query.keys())
        for rule in self._state.rules:
            if rule.matches(request.method, request.path, query):
                rule.fired += 1
                return rule.fault
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        fault = self._match(request)
        self._state.seen.append(_Seen(request.method, request.path, fault))
        if fault in _ERRORS:
            await request.read()
            return _error_response(*_ERRORS[fault])
        if fault is Fault.HANG:
            released = self._released
            try:
                async with asyncio.timeout(self.hang_s):
                    await released.wait()
            except TimeoutError:
                pass
            _drop(request)
            return web.Response(status=500)
        return await self._forward(request, fault)

    async def _forward(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _NOT_FORWARDED}
        body = request.content.iter_chunked(_CHUNK_BYTES) if request.body_exists else None
        url = self.upstream.join(URL(request.raw_path, encoded=True))
        async with self._session.request(
            request.method,
            url,
            headers=headers,
            data=body,
            allow_redirects=False,
            skip_auto_headers=("Content-Type", "Accept-Encoding", "User-Agent", "Accept"),
        ) as upstream:
            response = web.StreamResponse(status=upstream.status)
            for name, value in upstream.headers.items():
                if name.lower() not in _HOP_BY_HOP | {"content-length"}:
                    response.headers.add(name, value)
            if fault is Fault.WRONG_ETAG and "ETag" in response.headers:
                response.headers["ETag"] = f'"{EMPTY_MD5}"'
            length = upstream.content_length
            if length is not None:
                response.content_length = length
            limit = (length or 0) // 2 if fault is Fault.PARTIAL_BODY else None
            try:
                await self._relay(request, response, upstream, limit)
            except ConnectionResetError:  # the client went away (a link proxy cut it)
                _drop(request)
            return response

    async def _relay(
        self,
        request: web.Request,
        response: web.StreamResponse,
        upstream: aiohttp.ClientResponse,
        limit: int | None,
    ) -> None:
        """Stream the answer; with a ``limit``, stop after that many bytes and hang up."""
        await response.prepare(request)
        sent = 0
        async for chunk in upstream.content.iter_chunked(_CHUNK_BYTES):
            if limit is not None and sent + len(chunk) >= limit:
                await response.write(chunk[: limit - sent])
                _drop(request)
                return
            sent += len(chunk)
            await response.write(chunk)
        await response.write_eof()


def _drop(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.abort()


def _error_response(status: int, code: str, message: str) -> web.Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        "<RequestId>faultproxy</RequestId></Error>"
    )
    return web.Response(status=status, text=body, content_type="application/xml")
