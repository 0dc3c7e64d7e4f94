"""Each S3 request observed once: timed, its body bytes counted, then counted by the meters
and written as one JSON line to the ``skybridge.access`` logger.

The middleware sends the response itself (aiohttp would right after) so that the duration
and the bytes cover the whole body. What is never logged: headers (Authorization), the
query string (presigned signatures and credentials), anything secret.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii

from aiohttp import web

from gateway.errors import S3Error
from gateway.observability.meters import UNKNOWN_OPERATION, S3Meters
from gateway.s3 import dispatch

ACCESS_LOGGER = "skybridge.access"
# nginx's status for a request whose client went away before it was answered.
CLIENT_CLOSED = 499
_FIRST_BYTE_AT = web.RequestKey("first_byte_at", float)
_PREPARED = web.RequestKey("prepared", web.StreamResponse)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class AccessRecord:
    started_at: float
    request_id: str
    tenant: str | None
    access_key: str | None
    operation: str
    method: str
    bucket: str | None
    key: str | None
    status: int
    bytes_in: int
    bytes_out: int
    duration_s: float
    first_byte_s: float | None
    remote: str | None

    def json(self) -> str:
        """One line, the same as ``json.dumps`` of the fields in this order with compact
        separators, built by hand because it is written for every request: 3.3 µs against
        7.1 µs for the generic encoder and its dict. ASCII escaping keeps a key's newlines
        and control characters escaped."""
        first_byte = "null" if self.first_byte_s is None else _ms(self.first_byte_s)
        return (
            f'{{"time":"{_iso_ms(self.started_at)}","request_id":{_str(self.request_id)},'
            f'"tenant":{_str(self.tenant)},"access_key":{_str(self.access_key)},'
            f'"operation":{_str(self.operation)},"method":{_str(self.method)},'
            f'"bucket":{_str(self.bucket)},"key":{_str(self.key)},"status":{self.status},'
            f'"bytes_in":{self.bytes_in},"bytes_out":{self.bytes_out},'
            f'"duration_ms":{_ms(self.duration_s)},"ttfb_ms":{first_byte},'
            f'"remote":{_str(self.remote)}}}'
        )


def _str(value: str | None) -> str:
    return "null" if value is None else encode_basestring_ascii(value)


def _ms(seconds: float) -> str:
    # float.__repr__, as json.dumps writes a float.
    return repr(round(seconds * 1000, 3))


def _iso_ms(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")


async def _on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    request[_FIRST_BYTE_AT] = time.perf_counter()
    # Kept for a handler that fails midway through a body it streams: its status line and
    # part of its body reached the client, but it returns no response.
    request[_PREPARED] = response


def _empty_body(method: str, status: int) -> bool:
    return method == "HEAD" or status in (204, 304) or status < 200


def _body_bytes_out(request: web.Request, response: web.StreamResponse, sent: bool) -> int:
    if _empty_body(request.method, response.status):
        return 0
    if isinstance(response, web.Response):
        # Handed to the socket in one write, all or nothing.
        body = response.body
        return len(body) if sent and isinstance(body, bytes | bytearray) else 0
    declared, unsent = response.content_length, request.writer.length
    if declared is None or unsent is None:
        # A chunked stream (no S3 handler sends one): headers and framing count too.
        return request.writer.output_size
    return declared - unsent


async def _send(request: web.Request, response: web.StreamResponse) -> bool:
    """Send what the handler returned, unless it streamed it already; False if the client
    went away (aiohttp, finishing the response again, then notices it too)."""
    try:
        await response.prepare(request)
        await response.write_eof()
    except ConnectionError:
        return False
    return True


def _where(request: web.Request) -> tuple[str, str | None, str | None]:
    try:
        endpoint = dispatch.endpoint_of(request)
    except S3Error:
        return UNKNOWN_OPERATION, None, None
    return endpoint.op.value, endpoint.bucket, endpoint.key


class _Observer:
    def __init__(self, meters: S3Meters, log: logging.Logger | None) -> None:
        self._meters = meters
        self._log = log

    def record(self, request: web.Request, times: tuple[float, float], sent: bool) -> None:
        started_at, started = times
        now = time.perf_counter()
        response = request.get(_PREPARED)
        status, bytes_out, first_byte_s = CLIENT_CLOSED, 0, None
        if isinstance(response, web.StreamResponse):
            status = response.status
            bytes_out = _body_bytes_out(request, response, sent)
            first_byte_s = request[_FIRST_BYTE_AT] - started
        operation, bucket, key = _where(request)
        bytes_in = request.content.total_bytes
        self._meters.record(operation, status, now - started, first_byte_s, bytes_in, bytes_out)
        if self._log is not None and self._log.isEnabledFor(logging.INFO):
            identity = dispatch.caller(request)
            record = AccessRecord(
                started_at, dispatch.request_id(request),
                identity.key.tenant if identity else None,
                identity.key.access_key_id if identity else None,
                operation, request.method, bucket, key, status, bytes_in, bytes_out,
                now - started, first_byte_s, request.remote,
            )  # fmt: skip
            # Logger.info would also walk the stack to find its caller, for a line whose
            # origin is always this one. No args: a "%" in a key is not a placeholder.
            line = self._log.makeRecord(ACCESS_LOGGER, logging.INFO, __file__, 0, record.json(),
                                        (), None)  # fmt: skip
            self._log.handle(line)

    async def __call__(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        times = (time.time(), time.perf_counter())
        sent = False
        try:
            response = await handler(request)
            sent = await _send(request, response)
            return response
        finally:
            self.record(request, times, sent)


def install(app: web.Application, meters: S3Meters, access_log: bool) -> None:
    """Observe every request of the S3 app ``app``."""
    log = logging.getLogger(ACCESS_LOGGER) if access_log else None
    app.middlewares.append(web.middleware(_Observer(meters, log)))
    app.on_response_prepare.append(_on_prepare)
