"""Real servers for tests: moto, SeaweedFS and PostgreSQL as subprocesses on loopback.

Each server writes its output to ``<tmpdir>/server.log`` so a failure can be diagnosed, and
runs in its own process group so :meth:`stop` kills it and every child it forked. All of
them are context managers; ``stop`` is idempotent and safe after a failed ``start``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import glob
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import boto3
from botocore.config import Config

LOOPBACK = "127.0.0.1"
# SeaweedFS refuses ports above 32767 (and opens gRPC at port + 10000), so every port we
# hand out stays in [10000, 22767] with its +10000 twin free as well.
_PORT_LOW, _PORT_HIGH, _GRPC_OFFSET = 10000, 22767, 10000
_handed_out: set[int] = set()

START_TIMEOUT_S = 30.0
# Throwaway data: a graceful SeaweedFS stop takes 3-7 s, so do not wait for it.
STOP_GRACE_S = 1.0
KEEP_LOGS_ENV = "SB_KEEP_SERVER_LOGS"
_POLL_INTERVAL_S = 0.1


def free_port() -> int:
    """A loopback port below 32768 whose ``+10000`` twin is free too, never handed out twice."""
    for _ in range(1000):
        port = random.randint(_PORT_LOW, _PORT_HIGH)
        if port not in _handed_out and _bindable(port) and _bindable(port + _GRPC_OFFSET):
            _handed_out.add(port)
            return port
    raise RuntimeError("no free loopback port found")


def _bindable(port: int) -> bool:
    # No SO_REUSEADDR on purpose: the bind then also fails on a TIME_WAIT socket, which
    # SeaweedFS refuses too.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def port_answers(port: int, host: str = LOOPBACK) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def venv_binary(name: str) -> str:
    """A console script installed next to the running interpreter."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise FileNotFoundError(f"{name} not found next to {sys.executable}")
    return str(path)


def _wait_until(ready: Callable[[], bool], what: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} while starting")
        if ready():
            return
        time.sleep(_POLL_INTERVAL_S)
    raise TimeoutError(f"{what} not ready after {START_TIMEOUT_S} s")


class _ServerProcess:
    """A subprocess in its own session, logging to a file in its temp dir."""

    what = "server"

    def __init__(self) -> None:
        self.tmpdir = Path(tempfile.mkdtemp(prefix=f"sb-{self.what}-"))
        self.log_path = self.tmpdir / "server.log"
        self._process: subprocess.Popen[bytes] | None = None
        self.startup_s = 0.0
        # Set to keep the temp dir (and its log) after stop; also set by a failed start.
        self.keep_logs = bool(os.environ.get(KEEP_LOGS_ENV))

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        began = time.monotonic()
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.tmpdir,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        try:
            _wait_until(self.ready, self.what, self._process)
        except BaseException as exc:
            self.keep_logs = True
            exc.add_note(f"{self.what} log: {self.log_path}\n{self.log_tail()}")
            raise
        self.startup_s = time.monotonic() - began

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            _kill_group(process)
        self.after_stop()
        if not self.keep_logs:
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    @property
    def pid(self) -> int:
        """The server's process id (benchmarks read its CPU time and memory)."""
        assert self._process is not None, f"{self.what} is not running"
        return self._process.pid

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def after_stop(self) -> None:
        """Remove what the server leaves outside its temp dir."""


def _die_with_parent() -> None:
    # Runs in the child before exec: if pytest itself is killed (a CI timeout, ^C twice),
    # the kernel kills the server too, so no test run leaves servers behind.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


_PR_SET_PDEATHSIG = 1


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_GRACE_S)
    # Children may outlive the leader after SIGTERM; the group must be empty either way.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


class MotoServer(_ServerProcess):
    """``moto_server`` on a free loopback port. It accepts any credentials."""

    what = "moto"
    access_key = "testing"
    secret_key = "testing"

    def __init__(self) -> None:
        super().__init__()
        self.port = free_port()
        self.endpoint_url = f"http://{LOOPBACK}:{self.port}"

    def command(self) -> list[str]:
        return [venv_binary("moto_server"), "-H", LOOPBACK, "-p", str(self.port)]

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.endpoint_url + "/moto-api/", timeout=1):
                return True
        except (urllib.error.URLError, OSError):
            return False


class RcloneServer(_ServerProcess):
    """``rclone serve s3`` over ``root`` (each directory in it a bucket): a peer gateway."""

    what = "rclone"

    def __init__(self, root: Path, access_key: str = "sbrcloneak", secret_key: str = "sbrclonesk"):
        super().__init__()
        self.root = root
        self.access_key = access_key
        self.secret_key = secret_key
        self.port = free_port()
        self.endpoint_url = f"http://{LOOPBACK}:{self.port}"

    def command(self) -> list[str]:
        return [
            venv_binary("rclone"),
            "serve",
            "s3",
            str(self.root),
            "--addr",
            f"{LOOPBACK}:{self.port}",
            "--auth-key",
            f"{self.access_key},{self.secret_key}",
            "--vfs-cache-mode",
            "off",
        ]

    def ready(self) -> bool:
        return port_answers(self.port)


class SeaweedServer(_ServerProcess):
    """``weed mini`` (master, volume, filer, S3) on loopback, checking signatures."""

    what = "seaweedfs"
    _PORT_NAMES = ("s3", "master", "volume", "filer", "admin")

    def __init__(self, access_key: str = "sbtestak", secret_key: str = "sbtestsecretkey") -> None:
        super().__init__()
        self.access_key = access_key
        self.secret_key = secret_key
        # The admin server listens even with -admin.ui=false, on a fixed default port
        # that two instances would fight over: give it one of ours.
        self.ports = {name: free_port() for name in self._PORT_NAMES}
        self.port = self.ports["s3"]
        self.endpoint_url = f"http://{LOOPBACK}:{self.port}"
        self._client: Any = None

    def command(self) -> list[str]:
        identity = self.tmpdir / "identity.json"
        identity.write_text(json.dumps(self._identity()))
        (self.tmpdir / "data").mkdir(exist_ok=True)
        return [
            venv_binary("weed"),
            # Its glog files would otherwise pile up in /tmp, one set per run.
            f"-logdir={self.tmpdir}",
            "mini",
            f"-dir={self.tmpdir / 'data'}",
            f"-ip={LOOPBACK}",
            f"-ip.bind={LOOPBACK}",
            *(f"-{name}.port={port}" for name, port in self.ports.items()),
            f"-s3.config={identity}",
            # Keep its HTTP sockets in our temp dir rather than /tmp.
            f"-s3.localSocket={self.tmpdir / 's3.sock'}",
            f"-filer.localSocket={self.tmpdir / 'filer.sock'}",
            "-master.telemetry=false",
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-s3.allowDeleteBucketNotEmpty=false",
            "-s3.autoCreateBucket=false",
        ]

    def _identity(self) -> dict[str, Any]:
        credentials = [{"accessKey": self.access_key, "secretKey": self.secret_key}]
        actions = ["Admin", "Read", "Write", "List", "Tagging"]
        return {"identities": [{"name": "sbtest", "credentials": credentials, "actions": actions}]}

    def ready(self) -> bool:
        # The S3 port opens 2-4 s before S3 works: only a signed request proves readiness.
        if not port_answers(self.port):
            return False
        if self._client is None:
            self._client = s3_client(self.endpoint_url, self.access_key, self.secret_key)
        try:
            self._client.list_buckets()
        except Exception:  # Any failure only means "not yet".
            return False
        return True

    def after_stop(self) -> None:
        self._client = None
        # Its gRPC unix sockets are named by port in /tmp and have no flag to move them.
        for port in self.ports.values():
            for path in glob.glob(f"/tmp/seaweedfs-*-{port + _GRPC_OFFSET}.sock"):
                Path(path).unlink(missing_ok=True)


@functools.cache
def s3_client(endpoint_url: str, access_key: str, secret_key: str) -> Any:
    """A plain boto3 client for test set-up: path style, one attempt, short timeouts.

    Cached, since creating a boto3 client costs about 0.3 s and clients are thread-safe.
    """
    config = Config(
        s3={"addressing_style": "path"},
        retries={"mode": "standard", "max_attempts": 1},
        connect_timeout=2,
        read_timeout=10,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name="us-east-1",
        config=config,
    )


def make_bucket(endpoint_url: str, access_key: str, secret_key: str, name: str) -> None:
    """Create bucket ``name`` on a test S3 server."""
    s3_client(endpoint_url, access_key, secret_key).create_bucket(Bucket=name)


def random_name(prefix: str = "sb-test-") -> str:
    """A fresh bucket or directory name; moto's state is process-wide, so never reuse one."""
    return prefix + secrets.token_hex(6)


# --- PostgreSQL ----------------------------------------------------------------------------

DEFAULT_PG_PORT = 5432
_DEFAULT_DSNS = (
    f"postgresql://postgres@{LOOPBACK}:{DEFAULT_PG_PORT}/test",
    f"postgresql://root@{LOOPBACK}:{DEFAULT_PG_PORT}/test",
)


class PostgresServer:
    """A PostgreSQL to test against: the one on 5432 if it answers, else a throwaway one.

    Order: reuse 127.0.0.1:5432; else Debian binaries (``initdb`` as ``postgres``);
    else PyPI ``pgserver``. ``dsn`` is an admin DSN (superuser or database owner).
    """

    def __init__(self, *, reuse_default: bool | None = None) -> None:
        if reuse_default is None:
            # Parallel work on one machine shares 5432's 100 connections; "own" gives each
            # run a throwaway cluster instead.
            reuse_default = os.environ.get("SKYBRIDGE_TEST_PG", "") != "own"
        self._reuse_default = reuse_default
        self.dsn = ""
        self.kind = ""
        self.tmpdir: Path | None = None
        self._pg_ctl: str | None = None
        self._pgserver: Any = None

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        if self._reuse_default and port_answers(DEFAULT_PG_PORT):
            for dsn in _DEFAULT_DSNS:
                if _run_async(functools.partial(_can_connect, dsn)):
                    self.dsn, self.kind = dsn, "existing"
                    return
        bindirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        if bindirs:
            self._start_debian(Path(bindirs[-1]))
        else:
            self._start_pgserver()

    def stop(self) -> None:
        if self._pg_ctl is not None and self.tmpdir is not None:
            data = str(self.tmpdir / "data")
            subprocess.run(
                [*_AS_POSTGRES, self._pg_ctl, "-D", data, "-m", "immediate", "-w", "stop"],
                capture_output=True,
                check=False,
            )
            self._pg_ctl = None
        if self._pgserver is not None:
            self._pgserver.cleanup()
            self._pgserver = None
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None

    def _start_debian(self, bindir: Path) -> None:
        # initdb refuses to run as root, so the cluster belongs to the postgres user.
        self.tmpdir = Path(tempfile.mkdtemp(prefix="sb-pg-"))
        shutil.chown(self.tmpdir, "postgres", "postgres")
        data, log, port = self.tmpdir / "data", self.tmpdir / "server.log", free_port()
        initdb = [str(bindir / "initdb"), "-D", str(data), "-U", "postgres"]
        _run_logged([*_AS_POSTGRES, *initdb, "--auth=trust", "-E", "UTF8", "--no-sync"], log)
        self._pg_ctl = str(bindir / "pg_ctl")
        options = f"-p {port} -k {self.tmpdir} -c listen_addresses={LOOPBACK} -c fsync=off"
        # pg_ctl writes the server's own log as postgres, so it needs a file of its own.
        server_log = str(self.tmpdir / "postgres.log")
        start = [self._pg_ctl, "-D", str(data), "-l", server_log, "-w", "-o", options, "start"]
        _run_logged([*_AS_POSTGRES, *start], log)
        self.dsn, self.kind = f"postgresql://postgres@{LOOPBACK}:{port}/postgres", "debian"

    def _start_pgserver(self) -> None:
        self.tmpdir = Path(tempfile.mkdtemp(prefix="sb-pgserver-"))
        # pgserver's platformdirs warns when XDG_RUNTIME_DIR is unset, and pytest turns
        # warnings into errors; the warning says nothing about our tests.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pgserver.postgres_server import get_server

            self._pgserver = get_server(self.tmpdir, cleanup_mode="stop")
        self.dsn, self.kind = self._pgserver.get_uri(), "pgserver"


_AS_POSTGRES = ("runuser", "-u", "postgres", "--")


def _run_logged(command: list[str], log: Path) -> None:
    with log.open("ab") as out:
        result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{Path(command[4]).name} failed with {result.returncode}:\n{tail}")


def _run_async(factory: Callable[[], Coroutine[Any, Any, bool]]) -> bool:
    # A fresh loop in a worker thread works whether or not the caller's loop is running.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


async def _can_connect(dsn: str) -> bool:
    try:
        connection = await asyncpg.connect(dsn, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await connection.close()
    return True


async def fresh_database(admin_dsn: str) -> tuple[str, Callable[[], Awaitable[None]]]:
    """Create a uniquely named database; return its DSN and a function that drops it."""
    name = f"sb_test_{secrets.token_hex(6)}"
    connection = await asyncpg.connect(admin_dsn)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()

    async def drop() -> None:
        admin = await asyncpg.connect(admin_dsn)
        try:
            # FORCE (PostgreSQL 13+) ends sessions a failed test left open.
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    return _with_database(admin_dsn, name), drop


def _with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + database))
