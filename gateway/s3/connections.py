"""Keep-alive limits of the S3 listener: how large a request head may be, how long a
connection may stay idle, and how many connections one process serves at once.

A connection beyond ``max_connections`` is still accepted and parsed, but its first request
is answered ``503 SlowDown`` with ``Connection: close``: S3 clients retry that with backoff,
which a reset or a silently full backlog would not give them.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from gateway.config import ServerConfig

# aiohttp refuses a request line or header line longer than this with 400 (or 431).
# Presigned URLs carry the signature in the request line, so both share one limit.
_HEAD_LIMITS = ("max_line_size", "max_field_size")


def handler_args(server: ServerConfig) -> dict[str, Any]:
    """aiohttp's per-connection settings for the configured limits."""
    args: dict[str, Any] = {name: server.max_header_bytes for name in _HEAD_LIMITS}
    # aiohttp closes a connection that sends no complete request for this long, from its
    # first byte on as well as between keep-alive requests.
    args["keepalive_timeout"] = server.idle_timeout_s
    args["max_headers"] = server.max_headers
    return args


class ConnectionLimit:
    """Marks the connections accepted while ``max_connections`` were already open."""

    def __init__(self, max_connections: int | None) -> None:
        self.max_connections = max_connections
        self._over: set[RequestHandler] = set()

    def protocol_factory(self, server: web.Server) -> Callable[[], RequestHandler]:
        def accept() -> RequestHandler:
            handler = server()
            open_now = server.connections
            if self._over:
                # RequestHandler has no weak references: forget the closed ones here.
                self._over.intersection_update(open_now)
            if self.max_connections is not None and len(open_now) >= self.max_connections:
                self._over.add(handler)
            return handler

        return accept

    def refuses(self, request: web.BaseRequest) -> bool:
        return request.protocol in self._over


LIMIT = web.AppKey("connection_limit", ConnectionLimit)
# aiohttp's idle timeout stops while a handler runs: a body that stops arriving (slowloris)
# would hold its request open for ever. The body reader applies the same idle timeout.
BODY_IDLE_TIMEOUT_S = web.AppKey("body_idle_timeout_s", float)


def install(app: web.Application, server: ServerConfig) -> None:
    app[LIMIT] = ConnectionLimit(server.max_connections)
    app[BODY_IDLE_TIMEOUT_S] = server.idle_timeout_s


def body_idle_timeout_s(request: web.Request) -> float | None:
    """Seconds a request body may send nothing before it is refused with RequestTimeout."""
    return request.app.get(BODY_IDLE_TIMEOUT_S)


def refuses(request: web.Request) -> bool:
    """True for a request on a connection beyond the limit (it gets 503 and is closed)."""
    limit = request.app.get(LIMIT)
    return limit is not None and limit.refuses(request)


class LimitedSite(web.SockSite):
    """``web.SockSite`` whose connections are counted by the app's ``ConnectionLimit``."""

    def __init__(
        self,
        runner: web.AppRunner,
        sock: socket.socket,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(runner, sock, ssl_context=ssl_context)
        self._limit = runner.app[LIMIT]

    async def start(self) -> None:
        # SockSite.start would create the server with aiohttp's own protocol factory.
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            self._limit.protocol_factory(server),
            sock=self._sock,
            ssl=self._ssl_context,
            backlog=self._backlog,
        )
