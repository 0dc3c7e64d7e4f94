"""The CLI as an operator uses it: zero-config start, workers, graceful drain, migrate."""

from __future__ import annotations

import concurrent.futures
import contextlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import psutil
import pytest

from tests.conftest import client_for, gateway_config
from tests.gateway_process import KEY_RING_ENV, REPO, TEST_KEY_RING, GatewayProcess
from tests.servers import free_port, random_name


def _skybridge(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO), **env},
        timeout=120, check=False,
    )  # fmt: skip


def test_migrate_applies_once_and_is_safe_concurrently(new_database: Callable[[], str]) -> None:
    env = {"SKYBRIDGE_DATABASE_URL": new_database()}
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda _: _skybridge("migrate", env=env), range(2)))
    assert all(r.returncode == 0 for r in runs), [r.stderr for r in runs]
    applied = sorted(r.stdout for r in runs)
    # The advisory lock serialises them: one applies everything, the other finds nothing.
    assert "none pending" in applied[1] or "none pending" in applied[0]
    assert any(
        "0001_create_core.sql" in out and "0002_create_topology.sql" in out for out in applied
    )
    again = _skybridge("migrate", env=env)
    assert again.returncode == 0
    assert "none pending" in again.stdout


@pytest.fixture
def zero_config(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    """`skybridge serve` with no configuration at all: embedded PostgreSQL, local disk."""
    port = free_port()
    config = tmp_path / "port-only.yaml"
    # The only setting: a free port instead of 9000, so parallel runs cannot collide.
    config.write_text(f"server: {{port: {port}}}\nadmin: {{port: {free_port()}}}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKYBRIDGE_")}
    env.update(SKYBRIDGE_DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(REPO))
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        start_new_session=True,
    )  # fmt: skip
    announced: dict[str, str] = {}
    assert process.stdout is not None
    deadline = time.monotonic() + 90
    while "admin_token" not in announced and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        announced.setdefault("output", "")
        announced["output"] += line
        if m := re.search(r"listening on (\S+)", line):
            announced["endpoint"] = m.group(1)
        if m := re.search(r"access key: (\S+)", line):
            announced["access"] = m.group(1)
        if m := re.search(r"secret key: (\S+)", line):
            announced["secret"] = m.group(1)
        if m := re.search(r"admin API: +(http\S+/admin/v1/)", line):
            announced["admin"] = m.group(1)
        if m := re.search(r"admin token: (\S+)", line):
            announced["admin_token"] = m.group(1)
    yield process, announced
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(60)
    process.stdout.close()


def test_zero_config_start_prints_a_working_endpoint_and_keys(
    zero_config: tuple[subprocess.Popen[str], dict[str, str]], tmp_path: Path
) -> None:
    process, announced = zero_config
    assert {"endpoint", "access", "secret"} <= announced.keys(), announced.get("output")
    s3 = boto3.client(
        "s3", endpoint_url=announced["endpoint"], aws_access_key_id=announced["access"],
        aws_secret_access_key=announced["secret"], region_name="us-east-1",
    )  # fmt: skip
    for _ in range(50):  # the listener may lag the announcement by a moment
        try:
            s3.create_bucket(Bucket="first-bucket")
            break
        except Exception:  # connection refused while the listener binds
            time.sleep(0.1)
    s3.put_object(Bucket="first-bucket", Key="hello.txt", Body=b"hello")
    assert s3.get_object(Bucket="first-bucket", Key="hello.txt")["Body"].read() == b"hello"
    # The embedded database and the local-disk backend live in the data directory.
    assert (tmp_path / "data" / "postgres" / "PG_VERSION").exists()
    stored = [p for p in (tmp_path / "data" / "backends" / "local").rglob("*") if p.is_file()]
    assert [p.read_bytes() for p in stored] == [b"hello"]
    # The admin listener answers with the token it made and printed, and with no other.
    health = urllib.request.Request(
        announced["admin"] + "health",
        headers={"Authorization": f"Bearer {announced['admin_token']}"},
    )
    with urllib.request.urlopen(health, timeout=10) as answer:
        assert json.loads(answer.read())["status"] == "ok"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(announced["admin"] + "health", timeout=10)
    refused.value.close()
    assert refused.value.code == 401


def test_workers_share_one_port_and_drain_on_sigterm(
    start_test_gateway: Callable[..., GatewayProcess], tmp_path: Path
) -> None:
    backend = {"name": "localfs", "driver": "localfs", "path": str(tmp_path / "store")}
    config = gateway_config(backend, server={"workers": 2, "shutdown_timeout_s": 30})
    gateway = start_test_gateway(config)
    assert gateway.process is not None
    children = psutil.Process(gateway.process.pid).children()
    assert len(children) == 2, "two worker processes serve the port"
    s3: Any = client_for(gateway, signature_version="s3v4")
    bucket = random_name()
    s3.create_bucket(Bucket=bucket)
    result: dict[str, Any] = {}

    def upload() -> None:
        # A 1 MiB body sent over ~2 s: still in flight when SIGTERM arrives.
        signed = urlsplit(
            s3.generate_presigned_url(
                "put_object", Params={"Bucket": bucket, "Key": "slow"}, ExpiresIn=60
            )
        )
        connection = http.client.HTTPConnection(signed.hostname, signed.port, timeout=60)
        connection.putrequest("PUT", f"{signed.path}?{signed.query}")
        connection.putheader("Content-Length", str(1 << 20))
        connection.endheaders()
        for chunk in _slow_chunks(b"x" * (1 << 20), 20, 0.1):
            connection.send(chunk)
        result["status"] = connection.getresponse().status
        connection.close()

    thread = threading.Thread(target=upload)
    thread.start()
    time.sleep(0.5)
    os.killpg(gateway.process.pid, signal.SIGTERM)
    thread.join(60)
    assert result.get("status") == 200, gateway.log_tail()
    gateway.process.wait(60)
    # A new node on the same database sees the drained upload.
    gateway.start()
    assert client_for(gateway).head_object(Bucket=bucket, Key="slow")["ContentLength"] == 1 << 20


def _listening_on(process: psutil.Process, port: int) -> int:
    return sum(
        1
        for c in process.net_connections("tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port
    )


def test_each_worker_listens_on_its_own_socket_and_gets_connections(
    start_test_gateway: Callable[..., GatewayProcess], tmp_path: Path
) -> None:
    """SO_REUSEPORT: the kernel spreads connections over the workers' sockets (on one
    shared socket, the worker that woke first took most of them)."""
    backend = {"name": "localfs", "driver": "localfs", "path": str(tmp_path / "store")}
    gateway = start_test_gateway(gateway_config(backend, server={"workers": 2}))
    assert gateway.process is not None
    port = urlsplit(gateway.endpoint).port
    assert port is not None
    supervisor = psutil.Process(gateway.process.pid)
    workers = supervisor.children()
    assert _listening_on(supervisor, port) == 0
    assert [_listening_on(w, port) for w in workers] == [1, 1]

    connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(32)]
    try:
        for connection in connections:
            connection.request("GET", "/")  # an anonymous ListBuckets: refused, answered
            connection.getresponse().read()
        held = [
            sum(1 for c in w.net_connections("tcp") if c.laddr.port == port and c.raddr)
            for w in workers
        ]
    finally:
        for connection in connections:
            connection.close()
    # Hashed over two sockets, 32 connections all land on one with probability 2**-31.
    assert sum(held) == 32
    assert min(held) > 0, held

    # SO_REUSEPORT must not let a second gateway share the port unnoticed.
    second = GatewayProcess(tmp_path / "second", gateway.database_url, gateway.config, port=port)
    second.workdir.mkdir()
    env = {"SKYBRIDGE_DATABASE_URL": gateway.database_url, KEY_RING_ENV: TEST_KEY_RING}
    command = [sys.executable, "-m", "gateway", "serve", "--config", str(second._write_config())]
    intruder = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), **env}, start_new_session=True,
    )  # fmt: skip
    try:
        output, _ = intruder.communicate(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(intruder.pid, signal.SIGKILL)  # its workers too, had it started
    assert intruder.returncode != 0
    assert "Address already in use" in output, output[-2000:]


def _slow_chunks(body: bytes, pieces: int, pause_s: float) -> Iterator[bytes]:
    size = len(body) // pieces
    for i in range(pieces):
        time.sleep(pause_s)
        yield body[i * size : (i + 1) * size if i < pieces - 1 else len(body)]
