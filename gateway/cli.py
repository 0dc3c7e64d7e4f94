"""``skybridge serve`` and ``skybridge migrate``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import multiprocessing
import os
import signal
import socket
import ssl
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import uvloop
from aiohttp import web

from gateway import maintenance, memory
from gateway.admin import cli as admin_cli
from gateway.admin.app import create_admin_app
from gateway.app import RUNTIME, RootKey, create_app, ensure_root_key, load_key_ring
from gateway.config import GatewayConfig, TlsConfig, load, with_database
from gateway.crypto.keyring import KeyRing
from gateway.embedded_pg import embedded_database
from gateway.observability import meters
from gateway.observability.access import ACCESS_LOGGER
from gateway.observability.lines import BatchedLineHandler
from gateway.s3 import connections, dispatch
from gateway.services.admin_auth import new_token
from gateway.services.admin_errors import Conflict
from gateway.services.keys import KeyRotation
from metadata import db

log = logging.getLogger("skybridge")
ADMIN_TOKEN_FILE = "admin-token"
T = TypeVar("T")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="skybridge", description="Skybridge S3 gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("admin", help="the admin API's operations (skybridge admin --help)")
    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", type=Path, default=None, help="YAML configuration file")
    serve.add_argument("--workers", type=int, default=None, help="processes on one port")
    migrate = sub.add_parser("migrate", help="apply database migrations and exit")
    migrate.add_argument("--config", type=Path, default=None)
    rebalance = sub.add_parser(
        "rebalance", help="run one re-placement pass and print what it moved (JSON)"
    )
    rebalance.add_argument("--config", type=Path, default=None)
    rebalance.add_argument(
        "--dry-run", action="store_true", help="report what would move; change nothing"
    )
    key = sub.add_parser("key", help="create, list or delete access keys")
    key.add_argument("action", choices=["create", "list", "delete"])
    key.add_argument("--config", type=Path, default=None)
    key.add_argument("--tenant", default="root", help="the tenant a new key belongs to")
    key.add_argument("--access-key", default=None, help="the key id (create: optional)")
    policy = sub.add_parser("policy", help="set, list or assign placement policies")
    policy.add_argument("action", choices=["set", "list", "assign"])
    policy.add_argument("--config", type=Path, default=None)
    policy.add_argument("--file", help="set: a policy document (JSON or YAML)")
    policy.add_argument("--bucket", help="assign: the bucket")
    policy.add_argument("--policy", help="assign: the policy name (omit for the default)")
    ledger = sub.add_parser("ledger", help="query the placements ledger (JSON)")
    ledger.add_argument("query", choices=["under-replicated", "only-on", "bytes-per-backend"])
    ledger.add_argument("--config", type=Path, default=None)
    ledger.add_argument("--backend", default=None, help="for only-on")
    ledger.add_argument("--limit", type=int, default=1000)
    quota = sub.add_parser("quota", help="set or clear a bucket or tenant quota")
    quota.add_argument("action", choices=["set", "clear"])
    quota.add_argument("--config", type=Path, default=None)
    target = quota.add_mutually_exclusive_group(required=True)
    target.add_argument("--bucket")
    target.add_argument("--tenant")
    quota.add_argument("--max-bytes", type=int, default=None)
    quota.add_argument("--max-objects", type=int, default=None)
    quota.add_argument("--soft", action="store_true", help="report only, never refuse")
    usage_cmd = sub.add_parser("usage", help="usage and quotas per bucket and tenant (JSON)")
    usage_cmd.add_argument("--config", type=Path, default=None)
    usage_cmd.add_argument(
        "--recompute", action="store_true", help="also compare the counters with the rows"
    )
    scrub = sub.add_parser("scrub", help="check every replica against its backend (JSON)")
    scrub.add_argument("--config", type=Path, default=None)
    scrub.add_argument("--full", action="store_true", help="read back and verify every replica")
    scrub.add_argument("--sample", type=float, default=0.0, help="share of replicas to read back")
    scrub.add_argument("--no-repair", action="store_true", help="report only")
    return parser


async def _prepare(config: GatewayConfig, ring: KeyRing) -> RootKey:
    assert config.database_url is not None
    await db.migrate(config.database_url, config.migrations_dir)
    pool = await db.create_pool(config.database_url, min_size=1, max_size=2)
    try:
        return await ensure_root_key(pool, config, ring)
    finally:
        await pool.close()


def _ssl_context(tls: TlsConfig | None) -> ssl.SSLContext | None:
    if tls is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls.cert_file, tls.key_file)
    return context


def _bind(host: str, port: int, *, reuse_port: bool = False, listen: bool = True) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    if listen:
        sock.listen(1024)
    sock.set_inheritable(True)
    return sock


@dataclass(frozen=True, slots=True)
class Listeners:
    s3: socket.socket
    admin: socket.socket | None


async def _start_admin(
    app: web.Application, sock: socket.socket, tls: TlsConfig | None
) -> web.AppRunner:
    runner = web.AppRunner(create_admin_app(app), handle_signals=False, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock, ssl_context=_ssl_context(tls)).start()
    return runner


async def _serve(config: GatewayConfig, listeners: Listeners) -> None:
    app = create_app(config)
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log=None,
        shutdown_timeout=config.server.shutdown_timeout_s,
    )
    await runner.setup()
    site = connections.LimitedSite(
        runner, listeners.s3, ssl_context=_ssl_context(config.server.tls)
    )
    await site.start()
    admin = (
        None
        if listeners.admin is None
        else await _start_admin(app, listeners.admin, config.admin.tls)
    )
    memory.settle_heap()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    hangups: set[asyncio.Task[None]] = set()

    def hangup() -> None:
        task = loop.create_task(_reload_key_ring(app[RUNTIME].keys))
        hangups.add(task)  # the loop keeps only a weak reference
        task.add_done_callback(hangups.discard)

    loop.add_signal_handler(signal.SIGHUP, hangup)
    # SIGTERM may reach a worker twice (from the process group and from the parent):
    # both only ask for the one graceful drain.
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    # aiohttp's own shutdown stops reading request bodies at once, which would cut off
    # uploads in flight: stop listening, wait for the handlers, and only then clean up.
    inflight = app[dispatch.INFLIGHT]
    inflight.draining = True
    await site.stop()
    log.info("draining %d in-flight request(s)", inflight.count)
    if not await inflight.wait_idle(config.server.shutdown_timeout_s):
        log.warning("%d request(s) still running after the drain timeout", inflight.count)
    if admin is not None:
        await admin.cleanup()
    await runner.cleanup()


async def _reload_key_ring(keys: KeyRotation) -> None:
    """SIGHUP: adopt the key ring file as it now is (the parent passes the signal on to
    every worker process)."""
    try:
        await keys.reload()
    except Conflict as refused:
        log.error("SIGHUP: %s", refused.message)
    except Exception:
        log.exception("SIGHUP: the key ring could not be reloaded")


def _serve_worker(config: GatewayConfig, port: int, admin: socket.socket | None) -> None:
    """One of several workers: its own listening socket on the shared port."""
    listener = _bind(config.server.host, port, reuse_port=True)
    _serve_process(config, Listeners(listener, admin))


def _serve_process(config: GatewayConfig, sock: Listeners) -> None:
    """One worker: its own event loop, pool and app."""
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(_serve(config, sock))
    finally:
        loop.close()
        # A worker process ends in os._exit, which skips logging.shutdown and its flush.
        for handler in logging.getLogger(ACCESS_LOGGER).handlers:
            handler.flush()


def _announce(
    config: GatewayConfig, key: RootKey, workers: int, embedded: bool, *, show_admin_token: bool
) -> None:
    admin = config.admin
    scheme = "https" if config.server.tls else "http"
    lines = [
        f"Skybridge listening on {scheme}://{config.server.host}:{config.server.port}"
        f" ({workers} worker{'s' if workers > 1 else ''})",
        f"  database:   {f'embedded in {config.data_dir}' if embedded else 'external'}",
        f"  backends:   {', '.join(b.name + ' (' + b.driver + ')' for b in config.backends)}",
        f"  access key: {key.access_key}",
        f"  secret key: {key.secret_key}",
    ]
    if admin.enabled:
        admin_scheme = "https" if admin.tls else "http"
        lines.append(
            f"  admin API:  {admin_scheme}://{admin.host}:{admin.port}/admin/v1/ (console at /)"
        )
        shown = admin.token if show_admin_token else "(from the configuration)"
        lines.append(f"  admin token: {shown}")
    print("\n".join(lines), flush=True)


def _run_workers(config: GatewayConfig, workers: int) -> None:
    admin = config.admin
    admin_sock = _bind(admin.host, admin.port) if admin.enabled else None
    server = config.server
    if workers == 1:
        _serve_process(config, Listeners(_bind(server.host, server.port), admin_sock))
        return
    # Each worker listens on a socket of its own (SO_REUSEPORT), and the kernel spreads new
    # connections over them. On one shared socket the worker that woke first took every
    # connection waiting (measured: 12 and 13 of 16), and ran all of their requests alone.
    # A plain bind first: it fails if anything holds the port, where SO_REUSEPORT alone
    # would let a second gateway share the port silently. The socket after it only holds
    # the port (bound, never listening, so it gets no connections).
    _bind(server.host, server.port, listen=False).close()
    reserved = _bind(server.host, server.port, reuse_port=True, listen=False)
    port = int(reserved.getsockname()[1])
    # Before the fork: every process must count into the one shared directory.
    meters.share_between_processes(config.data_dir / "metrics")
    memory.freeze_for_fork()
    ctx = multiprocessing.get_context("fork")
    children = [
        ctx.Process(target=_serve_worker, args=(config, port, admin_sock)) for _ in range(workers)
    ]
    for child in children:
        child.start()

    def forward(signum: int, _frame: object) -> None:
        passed = signal.SIGHUP if signum == signal.SIGHUP else signal.SIGINT
        for child in children:
            if child.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, passed)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    for child in children:
        child.join()
        if child.pid is not None:
            meters.forget_process(child.pid)


def _with_admin_token(config: GatewayConfig) -> GatewayConfig:
    """Without a configured admin token, the one kept in the data directory (made once)."""
    if config.admin.token or not config.admin.enabled:
        return config
    path = config.data_dir / ADMIN_TOKEN_FILE
    if not path.exists():
        config.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(new_token() + "\n")
    return replace(config, admin=replace(config.admin, token=path.read_text().strip()))


def serve(config_path: Path | None, workers: int | None) -> int:
    config = load(config_path)
    count = workers or config.server.workers
    embedded = config.embedded_database
    with contextlib.ExitStack() as stack:
        if embedded:
            config.data_dir.mkdir(parents=True, exist_ok=True)
            config = with_database(config, stack.enter_context(embedded_database(config.data_dir)))
        # Made here once, before worker processes start.
        key = asyncio.run(_prepare(config, load_key_ring(config)))
        configured_token = config.admin.token is not None
        config = _with_admin_token(config)
        _announce(config, key, count, embedded, show_admin_token=not configured_token)
        _run_workers(config, count)
    return 0


def migrate(config_path: Path | None) -> int:
    config = load(config_path)
    with contextlib.ExitStack() as stack:
        if config.embedded_database:
            config = with_database(config, stack.enter_context(embedded_database(config.data_dir)))
        assert config.database_url is not None
        applied = asyncio.run(db.migrate(config.database_url, config.migrations_dir))
    print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}")
    return 0


MAINTENANCE: dict[str, Callable[[argparse.Namespace], maintenance.Work[dict[str, object]]]] = {
    "rebalance": lambda a: lambda c, p: maintenance.rebalance(c, p, a.dry_run),
    "scrub": lambda a: (
        lambda c, p: maintenance.scrub(c, p, 1.0 if a.full else a.sample, not a.no_repair)
    ),
    "quota": lambda a: lambda c, p: maintenance.quota(p, a),
    "key": lambda a: lambda c, p: maintenance.key(c, p, a),
    "ledger": lambda a: lambda c, p: maintenance.ledger(c, p, a),
    "policy": lambda a: lambda c, p: maintenance.policy(c, p, a),
    "usage": lambda a: lambda c, p: maintenance.usage(p, a.recompute),
}


def _exit_code(command: str, report: dict[str, object]) -> int:
    if "error" in report or report.get("drift"):
        return 1
    # Scrub exits 3 when it found damage, so that scripts notice.
    return 3 if command == "scrub" and (report["missing"] or report["corrupt"]) else 0


def _access_log_lines() -> None:
    """Access lines are bare JSON objects, whatever the level of the other loggers."""
    handler = BatchedLineHandler(sys.stderr)
    access = logging.getLogger(ACCESS_LOGGER)
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    access.propagate = False


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=os.environ.get("SKYBRIDGE_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # pgserver narrates every command it runs at INFO.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["admin"]:
        # The admin commands are made from the API's operations: their own parser.
        return admin_cli.main(argv[1:])
    _access_log_lines()
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return serve(args.config, args.workers)
    if args.command in MAINTENANCE:
        report = maintenance.run_with_database(args.config, MAINTENANCE[args.command](args))
        print(json.dumps(report, default=str))
        return _exit_code(args.command, report)
    return migrate(args.config)
