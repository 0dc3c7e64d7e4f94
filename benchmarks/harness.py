"""What every benchmark starts: PostgreSQL, a backend, a fresh database and a gateway."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from benchmarks.client import Credentials
from tests.gateway_process import GatewayProcess
from tests.servers import (
    MotoServer,
    PostgresServer,
    SeaweedServer,
    free_port,
    fresh_database,
    make_bucket,
    port_answers,
    random_name,
)

BACKEND_KINDS = ("localfs", "moto", "seaweedfs")
# Benchmarks overwrite keys; the old bytes go at once, as they would on a busy gateway.
BENCH_GC = {"interval_s": 1.0, "deletion_delay_s": 0, "pending_timeout_s": 3600}


@dataclass(frozen=True, slots=True)
class Stack:
    gateway: GatewayProcess
    backend: dict[str, Any]
    workdir: Path
    postgres_dsn: str

    @property
    def credentials(self) -> Credentials:
        return Credentials(self.gateway.access_key, self.gateway.secret_key)

    @property
    def backend_credentials(self) -> Credentials:
        return Credentials(self.backend["access_key"], self.backend["secret_key"])


def _backend(kind: str, workdir: Path, stack: contextlib.ExitStack) -> dict[str, Any]:
    if kind == "localfs":
        return {"name": "localfs", "driver": "localfs", "path": str(workdir / "localfs")}
    server: MotoServer | SeaweedServer = MotoServer() if kind == "moto" else SeaweedServer()
    stack.enter_context(server)
    bucket = random_name("sb-bench-")
    make_bucket(server.endpoint_url, server.access_key, server.secret_key, bucket)
    return {
        "name": kind,
        "driver": "s3",
        "endpoint": server.endpoint_url,
        "bucket": bucket,
        "access_key": server.access_key,
        "secret_key": server.secret_key,
    }


def scratch(stack: contextlib.ExitStack) -> tuple[Path, str]:
    """A temporary directory and a fresh database (on PostgreSQL, started if none runs),
    both removed when ``stack`` closes."""
    workdir = Path(tempfile.mkdtemp(prefix="sb-bench-"))
    stack.callback(shutil.rmtree, workdir, ignore_errors=True)
    postgres = stack.enter_context(PostgresServer())
    dsn, drop = asyncio.run(fresh_database(postgres.dsn))
    stack.callback(run_sync, drop)
    return workdir, dsn


def gateway_config(backend: dict[str, Any], workers: int = 1) -> dict[str, Any]:
    """A benchmark gateway's configuration: one backend, the default for every bucket."""
    return {
        "backends": [backend],
        "default_backend": backend["name"],
        "gc": BENCH_GC,
        "server": {"workers": workers},
    }


@contextlib.contextmanager
def gateway_stack(kind: str, workers: int = 1) -> Iterator[Stack]:
    """A gateway (of ``workers`` processes) on a fresh database over a backend of ``kind``;
    all torn down on exit."""
    with contextlib.ExitStack() as stack:
        workdir, dsn = scratch(stack)
        backend = _backend(kind, workdir, stack)
        gateway = GatewayProcess(workdir / "gateway", dsn, gateway_config(backend, workers))
        gateway.start()
        stack.callback(gateway.stop)
        try:
            yield Stack(gateway, backend, workdir, dsn)
        except BaseException:
            print(f"gateway log tail:\n{gateway.log_tail(60)}", file=sys.stderr)
            raise


def run_sync(factory: Callable[[], Awaitable[None]]) -> None:
    async def call() -> None:
        await factory()

    asyncio.run(call())


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants."""
    return int(_tree_sum(pid, lambda process: process.memory_info().rss))


def tree_pss_bytes(pid: int) -> int:
    """Proportional memory of a process and its descendants: a page shared by n of them
    counts 1/n in each, so forked workers' shared pages count once in the sum (the sum of
    their RSS counts them once per process)."""
    return int(_tree_sum(pid, lambda process: process.memory_full_info().pss))


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user and system) a process and its descendants have used so far."""
    return _tree_sum(pid, lambda process: sum(process.cpu_times()[:2]))


def _tree_sum(pid: int, measure: Callable[[psutil.Process], float]) -> float:
    root = psutil.Process(pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += measure(process)
    return total


def gateway_pid(gateway: GatewayProcess) -> int:
    assert gateway.process is not None, "the gateway is not running"
    return gateway.process.pid


@contextlib.contextmanager
def module_server(module: str, *args: str) -> Iterator[tuple[str, int]]:
    """``python -m module --port P ARGS`` on a free port: (endpoint, pid), stopped on exit."""
    port = free_port()
    command = [sys.executable, "-m", module, "--port", str(port), *args]
    process = subprocess.Popen(command)
    try:
        while not port_answers(port):
            if process.poll() is not None:
                raise RuntimeError(f"{module} exited")
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        process.terminate()
        process.wait()
