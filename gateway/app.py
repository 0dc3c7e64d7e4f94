"""The composition root: ``create_app(config)`` wires every layer, once."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from aiohttp import web

from gateway import memory, topology_setup
from gateway.config import ConfigError, GatewayConfig
from gateway.crypto import keyring, secretbox
from gateway.crypto.keyring import KeyRing, KeyRingError
from gateway.links.routing import LinkedBackend
from gateway.observability import metrics
from gateway.s3 import connections, dispatch
from gateway.services.auth import AuthService
from gateway.services.buckets import BucketService
from gateway.services.container import Services
from gateway.services.encryption import EncryptionService
from gateway.services.keys import KeyRotation
from gateway.services.listing import ListingService
from gateway.services.multipart import MultipartService
from gateway.services.objects import ObjectService
from gateway.services.read_notes import ReadNotes
from gateway.services.replicas import ReplicaWriter
from gateway.services.restores import RestoreService
from gateway.services.topology import REFRESH_S, TopologyService
from gateway.topology_setup import Wiring
from gateway.workers.control import WorkerControl
from gateway.workers.egress import EgressReporter
from gateway.workers.gc import GcWorker
from gateway.workers.lifecycle import LifecycleWorker
from gateway.workers.link_shares import LinkShares
from gateway.workers.probes import LinkProber
from gateway.workers.replacement import ReplacementWorker
from gateway.workers.replication import ReplicationWorker
from gateway.workers.transitions import Transitions
from metadata import db
from metadata.access_keys import AccessKeyRepo
from metadata.access_tiering import AccessTieringRepo
from metadata.admin import WorkerControlRepo
from metadata.buckets import BucketRepo
from metadata.deletions import DeletionRepo
from metadata.egress import EgressRepo
from metadata.keys import KeyUsageRepo
from metadata.ledger import LedgerRepo
from metadata.lifecycle import LifecycleRepo
from metadata.link_shares import LinkShareRepo
from metadata.listing import ListingRepo
from metadata.multipart import MultipartRepo
from metadata.objects import ObjectRepo
from metadata.replication import ReplicationRepo
from metadata.restores import RestoreRepo
from metadata.topology import TopologyRepo
from metadata.warmup import WarmupRepo

log = logging.getLogger(__name__)

CONFIG = web.AppKey("config", GatewayConfig)
# How often a node rereads backend states and policies that other nodes may have changed.
GC = web.AppKey("gc", GcWorker)
# How often client read bytes per link are reported to PostgreSQL.
EGRESS_REPORT_S = 5.0
# How often the nodes of a site re-split each capped link (workers/link_shares.py).
LINK_SHARES_S = 1.0
# How often reads in access-tiered buckets are written (services/read_notes.py).
READ_NOTES_S = 1.0
# How often each node looks for data keys or secrets wrapped under an old key.
REWRAP_INTERVAL_S = 60.0
# Any client reading a body must not be cut off by aiohttp's default 1 MiB cap; bodies
# are streamed, and parsed bodies are capped where they are parsed.
MAX_PARSED_BODY_BYTES = 2**40


@dataclass(frozen=True, slots=True)
class RootKey:
    access_key: str
    secret_key: str
    generated: bool


def _open(ring: KeyRing, stored: str) -> str:
    try:
        return secretbox.open_(ring, stored)
    except KeyRingError as exc:
        # Rewriting the secret would lock out every node that has the right key ring.
        raise ConfigError(
            f"this node's key ring cannot open the secrets in the database ({exc}):"
            " every node of a deployment needs the same key ring"
        ) from None


async def ensure_root_key(pool: asyncpg.Pool, config: GatewayConfig, ring: KeyRing) -> RootKey:
    """The first access key: from config/env, else the stored one, else a new one. Its
    secret is stored sealed under the key ring."""
    keys = AccessKeyRepo(pool)
    if config.root_access_key and config.root_secret_key:
        stored = await keys.get(config.root_access_key)
        if stored is None or _open(ring, stored.secret_key) != config.root_secret_key:
            await keys.ensure(config.root_access_key, secretbox.seal(ring, config.root_secret_key))
        return RootKey(config.root_access_key, config.root_secret_key, False)
    existing = await keys.first_of_tenant("root")
    if existing is not None:
        return RootKey(existing.access_key_id, _open(ring, existing.secret_key), False)
    access_key = "SB" + secrets.token_hex(9).upper()
    secret_key = secrets.token_urlsafe(30)
    await keys.ensure(access_key, secretbox.seal(ring, secret_key))
    return RootKey(access_key, secret_key, True)


@dataclass(frozen=True, slots=True)
class Workers:
    gc: GcWorker
    replication: ReplicationWorker
    topology: TopologyService
    replacement: ReplacementWorker
    lifecycle: LifecycleWorker
    read_notes: ReadNotes


KEY_RING_FILE = "key-ring.json"


def load_key_ring(config: GatewayConfig) -> KeyRing:
    """The configured key ring, else the one kept in the data directory (made once)."""
    ring = _read_ring(config)
    if ring is None:
        path = _ring_path(config)
        if config.encryption.key_ring_file is not None:
            raise ConfigError(f"key ring file {path} does not exist")
        try:
            ring = keyring.create_file(path)
        except FileExistsError:  # another worker process made it first
            ring = keyring.load(path, None)
            assert ring is not None
    return ring


def reread_key_ring(config: GatewayConfig) -> KeyRing:
    """The key ring as its file (or variable) now is: what a reload adopts. A variable is
    read from this process's environment, which does not change while it runs."""
    try:
        ring = _read_ring(config)
    except (OSError, ValueError) as exc:  # KeyRingError is a ValueError
        raise KeyRingError(f"cannot read the key ring: {exc}") from None
    if ring is None:
        raise KeyRingError(f"key ring file {_ring_path(config)} does not exist")
    return ring


def _ring_path(config: GatewayConfig) -> Path:
    return config.encryption.key_ring_file or config.data_dir / KEY_RING_FILE


def _read_ring(config: GatewayConfig) -> KeyRing | None:
    settings = config.encryption
    env_value = os.environ.get(settings.key_ring_env) if settings.key_ring_env else None
    if settings.key_ring_env and not env_value:
        raise ConfigError(f"environment variable {settings.key_ring_env} is not set")
    return keyring.load(_ring_path(config), env_value)


def node_name() -> str:
    """This serving process, as the other nodes see it in shared tables."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def build_services(
    pool: asyncpg.Pool, wiring: Wiring, config: GatewayConfig, ring: KeyRing
) -> tuple[Services, Workers]:
    backends = wiring.registry
    objects_repo = ObjectRepo(pool, deletion_delay_s=config.gc.deletion_delay_s)
    read_notes = ReadNotes(AccessTieringRepo(pool))
    deletions = DeletionRepo(pool)
    topology = TopologyService(
        TopologyRepo(pool),
        wiring.linked,
        local_site=config.site,
        default_policy=config.default_policy,
        wiring=wiring,
    )
    writer = ReplicaWriter(backends, stall_timeout_s=config.replication.stall_timeout_s)
    crypto = EncryptionService(
        ring,
        everywhere=config.encryption.encrypt_everywhere,
        allow_sse_c_over_http=config.encryption.allow_sse_c_over_http,
    )
    restores = RestoreRepo(pool)
    objects = ObjectService(
        objects_repo, backends, topology, writer, crypto, restores, read_notes,
        hedge_reads=config.replication.hedge_reads,
    )  # fmt: skip
    services = Services(
        auth=AuthService(AccessKeyRepo(pool), ring),
        buckets=BucketService(
            BucketRepo(pool),
            config.default_backend,
            config.server.region,
            topology.policy_for_location,
        ),
        objects=objects,
        listing=ListingService(ListingRepo(pool)),
        multipart=MultipartService(
            MultipartRepo(pool),
            deletions,
            objects,
            backends,
            topology,
            writer,
            part_grace_s=config.gc.part_grace_s,
        ),
        restores=RestoreService(objects, restores, topology),
    )
    gc = GcWorker(
        objects_repo,
        deletions,
        backends,
        pending_timeout_s=config.gc.pending_timeout_s,
        # Past both limits a write is doomed: its version or part intent is reaped anyway.
        abandoned_after_s=max(config.gc.pending_timeout_s, config.gc.part_grace_s),
    )
    replication = ReplicationWorker(
        ReplicationRepo(pool),
        objects_repo,
        backends,
        topology,
        concurrency=config.replication.concurrency,
        base_delay_s=config.replication.retry_base_delay_s,
        max_delay_s=config.replication.retry_max_delay_s,
        egress=EgressRepo(pool),
        lease_s=config.replication.lease_s,
        stall_timeout_s=config.replication.stall_timeout_s,
    )
    replacement = ReplacementWorker(pool, LedgerRepo(pool), topology)
    return services, Workers(
        gc,
        replication,
        topology,
        replacement,
        _lifecycle(pool, services, objects_repo, topology, config, read_notes),
        read_notes,
    )


def _lifecycle(
    pool: asyncpg.Pool,
    services: Services,
    objects_repo: ObjectRepo,
    topology: TopologyService,
    config: GatewayConfig,
    read_notes: ReadNotes,
) -> LifecycleWorker:
    repo = LifecycleRepo(pool)
    transitions = Transitions(
        repo, objects_repo, topology, deletion_delay_s=config.gc.deletion_delay_s
    )
    return LifecycleWorker(
        pool,
        repo,
        BucketRepo(pool),
        services.objects,
        services.multipart,
        transitions,
        RestoreRepo(pool),
        WarmupRepo(pool),
        AccessTieringRepo(pool),
        read_notes,
        deletion_delay_s=config.gc.deletion_delay_s,
        scan_interval_s=config.lifecycle.scan_interval_s,
    )


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


@dataclass(frozen=True, slots=True)
class Runtime:
    """What one serving process holds while it runs; the admin listener reads it."""

    config: GatewayConfig
    pool: asyncpg.Pool
    services: Services
    workers: Workers
    control: WorkerControl
    linked: dict[str, LinkedBackend]
    ring: KeyRing
    shares: LinkShares
    keys: KeyRotation


RUNTIME = web.AppKey("runtime", Runtime)


def _start_workers(runtime: Runtime) -> list[asyncio.Task[None]]:
    config, workers, control = runtime.config, runtime.workers, runtime.control
    loops = [
        control.run("gc", config.gc.interval_s, workers.gc.run_pass),
        control.run("replication", config.replication.interval_s, workers.replication.drain),
        control.run("topology", REFRESH_S, workers.topology.refresh, sleep_first=True),
        control.run(
            "replacement",
            config.replication.replacement_interval_s,
            workers.replacement.scheduled_pass,
            sleep_first=True,
        ),
        control.run(
            "lifecycle",
            config.lifecycle.interval_s,
            workers.lifecycle.scheduled_pass,
            sleep_first=True,
        ),
    ]
    loops.append(
        control.run("rewrap", REWRAP_INTERVAL_S, runtime.keys.scheduled_pass, sleep_first=True)
    )
    loops.append(control.run("link-shares", LINK_SHARES_S, runtime.shares.report))
    loops.append(control.run("read-notes", READ_NOTES_S, workers.read_notes.flush))
    reporter = EgressReporter(EgressRepo(runtime.pool), runtime.linked)
    loops.append(control.run("egress", EGRESS_REPORT_S, reporter.flush, sleep_first=True))
    if config.replication.probe_interval_s > 0:
        prober = LinkProber(runtime.linked)
        loops.append(
            control.run(
                "probes", config.replication.probe_interval_s, prober.probe_all, sleep_first=True
            )
        )
    loops.append(memory.trim_heap_forever())
    return [asyncio.create_task(loop) for loop in loops]


async def _resources(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    assert config.database_url is not None, "the caller starts the embedded database"
    await db.migrate(config.database_url, config.migrations_dir)
    pool = await db.create_pool(
        config.database_url, min_size=config.database_pool_min, max_size=config.database_pool_max
    )
    wiring = Wiring(config, app[metrics.METERS].links.meter)
    try:
        await topology_setup.seed(TopologyRepo(pool), config)
        ring = load_key_ring(config)
        services, workers = build_services(pool, wiring, config, ring)
        await workers.topology.refresh()
        linked = wiring.linked
        app[dispatch.SERVICES] = services
        app[GC] = workers.gc
        control = WorkerControl(WorkerControlRepo(pool))
        shares = LinkShares(LinkShareRepo(pool), linked, node_name())
        keys = KeyRotation(KeyUsageRepo(pool), ring, functools.partial(reread_key_ring, config))
        runtime = Runtime(config, pool, services, workers, control, linked, ring, shares, keys)
        app[RUNTIME] = runtime
        app[metrics.OBSERVED] = runtime
        tasks = _start_workers(runtime)
        yield
        await _cancel(tasks)
        with contextlib.suppress(Exception):  # the others stop counting it in 3 s anyway
            await shares.leave()
        with contextlib.suppress(Exception):  # reads are hints: one second's may be lost
            await workers.read_notes.flush()
    finally:
        await wiring.close()
        await pool.close()


def create_app(config: GatewayConfig) -> web.Application:
    app = web.Application(
        client_max_size=MAX_PARSED_BODY_BYTES,
        handler_args=connections.handler_args(config.server),
    )
    app[CONFIG] = config
    connections.install(app, config.server)
    app[dispatch.DOMAIN] = config.server.domain or ""
    app.cleanup_ctx.append(_resources)
    metrics.install(app, config.logging.access_log)
    dispatch.add_routes(app)
    return app
