"""The composition root: ``create_app(config)`` wires every layer, once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
from aiohttp import web

from gateway.backends.factory import open_backend
from gateway.backends.registry import BackendRegistry
from gateway.config import GatewayConfig
from gateway.s3 import dispatch
from gateway.services.auth import AuthService
from gateway.services.buckets import BucketService
from gateway.services.container import Services
from gateway.services.listing import ListingService
from gateway.services.multipart import MultipartService
from gateway.services.objects import ObjectService
from gateway.workers.gc import GcWorker
from metadata import db
from metadata.access_keys import AccessKeyRepo
from metadata.buckets import BucketRepo
from metadata.deletions import DeletionRepo
from metadata.listing import ListingRepo
from metadata.multipart import MultipartRepo
from metadata.objects import ObjectRepo

log = logging.getLogger(__name__)

CONFIG = web.AppKey("config", GatewayConfig)
GC = web.AppKey("gc", GcWorker)
# Any client reading a body must not be cut off by aiohttp's default 1 MiB cap; bodies
# are streamed, and parsed bodies are capped where they are parsed.
MAX_PARSED_BODY_BYTES = 2**40


@dataclass(frozen=True, slots=True)
class RootKey:
    access_key: str
    secret_key: str
    generated: bool


async def ensure_root_key(pool: asyncpg.Pool, config: GatewayConfig) -> RootKey:
    """The first access key: from config/env, else the stored one, else a new one."""
    keys = AccessKeyRepo(pool)
    if config.root_access_key and config.root_secret_key:
        await keys.ensure(config.root_access_key, config.root_secret_key)
        return RootKey(config.root_access_key, config.root_secret_key, False)
    existing = await keys.first_of_tenant("root")
    if existing is not None:
        return RootKey(existing.access_key_id, existing.secret_key, False)
    access_key = "SB" + secrets.token_hex(9).upper()
    secret_key = secrets.token_urlsafe(30)
    await keys.ensure(access_key, secret_key)
    return RootKey(access_key, secret_key, True)


def build_services(
    pool: asyncpg.Pool, backends: BackendRegistry, config: GatewayConfig
) -> tuple[Services, GcWorker]:
    objects_repo = ObjectRepo(pool, deletion_delay_s=config.gc.deletion_delay_s)
    deletions = DeletionRepo(pool)
    objects = ObjectService(objects_repo, backends)
    services = Services(
        auth=AuthService(AccessKeyRepo(pool)),
        buckets=BucketService(BucketRepo(pool), config.default_backend, config.server.region),
        objects=objects,
        listing=ListingService(ListingRepo(pool)),
        multipart=MultipartService(
            MultipartRepo(pool),
            deletions,
            objects,
            backends,
            part_grace_s=config.gc.part_grace_s,
        ),
    )
    gc = GcWorker(objects_repo, deletions, backends, pending_timeout_s=config.gc.pending_timeout_s)
    return services, gc


async def _resources(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    assert config.database_url is not None, "the caller starts the embedded database"
    await db.migrate(config.database_url, config.migrations_dir)
    pool = await db.create_pool(config.database_url)
    backends = BackendRegistry([await open_backend(b) for b in config.backends])
    try:
        services, gc = build_services(pool, backends, config)
        app[dispatch.SERVICES] = services
        app[GC] = gc
        gc_task = asyncio.create_task(gc.run_forever(config.gc.interval_s))
        yield
        gc_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await gc_task
    finally:
        await backends.close()
        await pool.close()


def create_app(config: GatewayConfig) -> web.Application:
    app = web.Application(
        client_max_size=MAX_PARSED_BODY_BYTES, handler_args={"max_field_size": 65536}
    )
    app[CONFIG] = config
    app[dispatch.DOMAIN] = config.server.domain or ""
    app.cleanup_ctx.append(_resources)
    dispatch.add_routes(app)
    return app
