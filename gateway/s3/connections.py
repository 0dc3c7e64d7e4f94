"""Keep-alive limits of the S3 listener: how large a request head may be, how long a
connection may stay idle, and how many connections one process serves at once.

A connection beyond ``max_connections`` is still accepted and parsed, but its first request
is answered ``503 SlowDown`` with ``Connection: close``: S3 clients retry that with backoff,
which a reset or a silently full backlog would not give them.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import ssl
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from gateway.config import ServerConfig
from gateway.errors import RequestHeaderSectionTooLarge, S3Error
from gateway.s3 import xml

log = logging.getLogger(__name__)

# aiohttp refuses a request line or header line longer than this; S3RequestHandler answers
# 400 RequestHeaderSectionTooLarge.
# Presigned URLs carry the signature in the request line, so both share one limit.
_HEAD_LIMITS = ("max_line_size", "max_field_size")
READ_BUFSIZE = 256 * 1024


def handler_args(server: ServerConfig) -> dict[str, Any]:
    """aiohttp's per-connection settings for the configured limits."""
    args: dict[str, Any] = {name: server.max_header_bytes for name in _HEAD_LIMITS}
    # aiohttp closes a connection that sends no complete request for this long, from its
    # first byte on as well as between keep-alive requests.
    args["keepalive_timeout"] = server.idle_timeout_s
    args["max_headers"] = server.max_headers
    # aiohttp stops reading a connection once twice this is buffered (64 KiB by default):
    # a body then reaches the handler in pieces of 64 KiB or less, and each piece costs a
    # hashing thread hop, a write and a pass through every stream stage. At 256 KiB an
    # upload costs a quarter of the hops, and 64 uploads buffer at most 32 MiB.
    args["read_bufsize"] = READ_BUFSIZE
    return args


class S3RequestHandler(RequestHandler):
    """aiohttp's connection handler, answering a request head its parser refuses for size
    (a line over ``max_header_bytes``, more than ``max_headers`` lines) the way S3 does:
    400 RequestHeaderSectionTooLarge in XML, and the connection closed."""

    __slots__ = ()

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if not _head_too_large(exc) or request.writer.output_size > 0:
            return super().handle_error(request, status, exc, message)
        log.info("request head from %s refused: %s", request.remote, exc)
        return _render(RequestHeaderSectionTooLarge())


def _head_too_large(exc: BaseException | None) -> bool:
    return isinstance(exc, LineTooLong) or (
        isinstance(exc, BadHttpMessage) and "Too many headers" in str(exc)
    )


def _render(error: S3Error) -> web.Response:
    # The request never reached the dispatcher (nor its renderer): it has no parsed head.
    rid = secrets.token_hex(8).upper()
    fields = {"Code": error.code, "Message": error.message, "RequestId": rid, "HostId": rid}
    body = xml.render("Error", fields, namespace=False)
    headers = {"x-amz-request-id": rid, "x-amz-id-2": rid, "Server": "Skybridge",
               "Connection": "close"}  # fmt: skip
    response = web.Response(
        status=error.status, body=body, headers=headers, content_type="application/xml"
    )
    response.force_close()
    return response


class ConnectionLimit:
    """Marks the connections accepted while ``max_connections`` were already open."""

    def __init__(self, max_connections: int | None) -> None:
        self.max_connections = max_connections
        self._over: set[RequestHandler] = set()

    def protocol_factory(self, server: web.Server) -> Callable[[], RequestHandler]:
        def accept() -> RequestHandler:
            # What server() makes, with the S3 handler class (aiohttp has no option for it).
            handler = S3RequestHandler(server, loop=server._loop, **server._kwargs)
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
