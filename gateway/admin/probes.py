"""Probes for orchestrators and load balancers, on the admin listener without a token.

``GET /healthz``: the process is alive and its event loop answers (liveness).
``GET /readyz``: this node can serve S3 requests now (readiness): it has started, is not
draining, reaches PostgreSQL, and the database has every migration this node ships.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from gateway.app import RUNTIME
from gateway.s3 import dispatch
from gateway.services.admin_errors import Unavailable
from metadata import db

# A readiness probe must answer within the orchestrator's own timeout (Kubernetes: 1 s by
# default, our manifests: 3 s) even while PostgreSQL hangs.
READY_TIMEOUT_S = 2.0


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _problems(s3_app: web.Application) -> list[str]:
    runtime = s3_app.get(RUNTIME)
    if runtime is None:
        return ["starting"]
    if s3_app[dispatch.INFLIGHT].draining:
        return ["draining"]
    try:
        pending = await asyncio.wait_for(
            db.pending_migrations(runtime.pool, runtime.config.migrations_dir), READY_TIMEOUT_S
        )
    except Exception as error:
        if not db.is_unreachable(error):
            raise
        return [f"database unreachable: {type(error).__name__}"]
    return [f"migration pending: {name}" for name in pending]


def add_routes(admin_app: web.Application, s3_app: web.Application) -> None:
    """``/healthz`` and ``/readyz`` for the S3 app ``s3_app`` of the same process."""

    async def readyz(request: web.Request) -> web.Response:
        problems = await _problems(s3_app)
        if problems:
            raise Unavailable("not ready: " + "; ".join(problems), details=problems)
        return web.json_response({"status": "ready"})

    admin_app.router.add_get("/healthz", healthz)
    admin_app.router.add_get("/readyz", readyz)
