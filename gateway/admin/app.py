"""The admin listener: JSON over HTTP under ``/admin/v1/``, bearer tokens, and requests
validated against the operations' declared schemas. Errors are rendered here only."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gateway.admin import probes, validation
from gateway.admin.call import AdminCall
from gateway.admin.console import add_routes as add_console_routes
from gateway.admin.resources import (
    lifecycle,
    operations,
    policies,
    system,
    tenancy,
    topology,
    warmup,
)
from gateway.admin.spec import PREFIX, Operation, Schema, document
from gateway.app import RUNTIME, Runtime
from gateway.observability import metrics
from gateway.services.admin_auth import AdminAuth, Principal
from gateway.services.admin_errors import (
    AdminError,
    BadRequest,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    Unauthorized,
    Unavailable,
)
from gateway.services.management import Management
from metadata import db
from metadata.admin import AdminTokenRepo

log = logging.getLogger(__name__)
VERSION = "1.0.0"
MODULES = (system, topology, policies, tenancy, operations, lifecycle, warmup)
_REQUEST_ID = web.RequestKey("admin_request_id", str)


def all_operations() -> Iterator[Operation]:
    for module in MODULES:
        yield from module.ops.all


@dataclass(frozen=True, slots=True)
class AdminState:
    runtime: Runtime
    management: Management
    auth: AdminAuth


STATE = web.AppKey("admin_state", AdminState)
S3_APP = web.AppKey("s3_app", web.Application)
SPEC = web.AppKey("spec", dict)


def request_id(request: web.Request) -> str:
    rid = request.get(_REQUEST_ID)
    if rid is None:
        rid = request[_REQUEST_ID] = secrets.token_hex(8).upper()
    return str(rid)


def json_response(request: web.Request, body: object, status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(body, default=str),
        content_type="application/json",
        headers={"X-Request-Id": request_id(request)},
    )


def render_error(request: web.Request, error: AdminError) -> web.Response:
    fields: dict[str, Any] = {
        "code": error.code,
        "message": error.message,
        "request_id": request_id(request),
    }
    if error.details is not None:
        fields["details"] = error.details
    return json_response(request, {"error": fields}, error.status)


@web.middleware
async def errors_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except AdminError as error:
        return render_error(request, error)
    except web.HTTPMethodNotAllowed as exc:
        response = render_error(request, MethodNotAllowed(f"{request.method} is not allowed here"))
        response.headers["Allow"] = ", ".join(sorted(exc.allowed_methods))
        return response
    except web.HTTPNotFound:
        return render_error(request, NotFound(f"no admin resource at {request.path}"))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return render_error(request, BadRequest(exc.reason))
    except Exception as error:
        if db.is_unreachable(error):
            log.warning("admin %s %s: metadata unreachable: %r", request.method, request.path,
                        error)  # fmt: skip
            return render_error(request, Unavailable("the metadata database is unreachable"))
        log.exception("admin request %s %s failed", request.method, request.path)
        return render_error(request, AdminError("internal error; see the gateway log"))


async def authenticate(request: web.Request, auth: AdminAuth) -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("a bearer token is required")
    principal = await auth.principal(token.strip())
    if principal is None:
        raise Unauthorized("the bearer token is not valid")
    return principal


def _endpoint(op: Operation) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def endpoint(request: web.Request) -> web.StreamResponse:
        state = request.app[STATE]
        principal = await authenticate(request, state.auth)
        if not principal.may(op.scope):
            raise Forbidden(f"{op.operation_id} needs a token with scope {op.scope.value}")
        path = validation.parameters(op.path_params, request.match_info, tuple(op.path_params),
                                     "path")  # fmt: skip
        query = validation.parameters(op.query, request.query, op.required_query, "query")
        raw = await request.content.read(validation.MAX_BODY_BYTES + 1)
        if len(raw) > validation.MAX_BODY_BYTES:
            raise BadRequest(f"the body is larger than {validation.MAX_BODY_BYTES} bytes")
        body = validation.body(op, request.content_type if raw else "", raw)
        call = AdminCall(request, state.runtime, state.management, state.auth, principal,
                         path, query, body)  # fmt: skip
        return json_response(request, await op.handler(call), op.status)

    return endpoint


async def openapi(request: web.Request) -> web.StreamResponse:
    await authenticate(request, request.app[STATE].auth)
    return json_response(request, request.app[SPEC])


async def _start(app: web.Application) -> None:
    runtime = app[S3_APP][RUNTIME]
    workers = runtime.workers
    management = Management(
        runtime.pool,
        runtime.config,
        workers.topology,
        workers.replacement,
        runtime.linked,
        runtime.control,
        runtime.ring,
        runtime.keys,
        runtime.services.buckets,
    )
    auth = AdminAuth(AdminTokenRepo(runtime.pool), runtime.config.admin.token)
    app[STATE] = AdminState(runtime, management, auth)


def spec() -> Schema:
    return document(all_operations(), VERSION)


def create_admin_app(s3_app: web.Application) -> web.Application:
    """The admin app of the node whose S3 app is ``s3_app`` (started before this one)."""
    app = web.Application(middlewares=[errors_middleware])
    app[S3_APP] = s3_app
    app[SPEC] = spec()
    app.on_startup.append(_start)
    app.router.add_get(PREFIX + "/openapi.json", openapi)
    metrics.add_routes(app, s3_app)
    probes.add_routes(app, s3_app)
    for op in all_operations():
        app.router.add_route(op.method, PREFIX + op.path, _endpoint(op))
    add_console_routes(app)
    return app
