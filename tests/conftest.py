"""Session-wide real components: PostgreSQL, S3 servers playing the clouds, gateways."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.gateway_process import GatewayProcess
from tests.servers import (
    MotoServer,
    PostgresServer,
    SeaweedServer,
    fresh_database,
    make_bucket,
    random_name,
)

BACKEND_KINDS = ["localfs", "moto", "seaweedfs"]


def run_sync(coro_factory: Callable[[], Any]) -> Any:
    # A fresh loop in a worker thread works whether or not a loop is running here.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(coro_factory())).result()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture(scope="session")
def seaweedfs_server() -> Iterator[SeaweedServer]:
    with SeaweedServer() as server:
        yield server


@pytest.fixture(scope="session")
def new_database(postgres: PostgresServer) -> Iterator[Callable[[], str]]:
    """Make a fresh database per call; all are dropped at the end of the session."""
    drops: list[Callable[[], Any]] = []

    def make() -> str:
        dsn, drop = run_sync(lambda: fresh_database(postgres.dsn))
        drops.append(drop)
        return str(dsn)

    yield make
    for drop in drops:
        run_sync(drop)


def files_under(root: Path) -> list[Path]:
    """Every file under ``root``. Walked with ``os.walk``, which skips a directory removed
    meanwhile (gc deletes objects and prunes their empty directories while tests look),
    where ``Path.rglob`` raises FileNotFoundError."""
    return [Path(at, name) for at, _, names in os.walk(root) for name in names]


def backend_config(kind: str, request: pytest.FixtureRequest, root: Path) -> dict[str, Any]:
    if kind == "localfs":
        return {"name": "localfs", "driver": "localfs", "path": str(root / "localfs")}
    server: MotoServer | SeaweedServer = request.getfixturevalue(f"{kind}_server")
    bucket = random_name("sb-backend-")
    make_bucket(server.endpoint_url, server.access_key, server.secret_key, bucket)
    return {
        "name": kind,
        "driver": "s3",
        "endpoint": server.endpoint_url,
        "bucket": bucket,
        "access_key": server.access_key,
        "secret_key": server.secret_key,
    }


def gateway_config(backend: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "backends": [backend],
        "default_backend": backend["name"],
        "gc": {"interval_s": 0.5, "deletion_delay_s": 0, "pending_timeout_s": 3600},
        **extra,
    }


Starter = Callable[..., GatewayProcess]


@contextlib.contextmanager
def _gateways(
    tmp_path_factory: pytest.TempPathFactory, new_database: Callable[[], str]
) -> Iterator[Starter]:
    """Start gateways; every one is stopped when the block ends. Each holds PostgreSQL
    connections, so the starter used must match the scope that uses the gateway."""
    started: list[GatewayProcess] = []

    def start(config: dict[str, Any], **kwargs: Any) -> GatewayProcess:
        workdir = tmp_path_factory.mktemp("gateway")
        gateway = GatewayProcess(
            workdir, kwargs.pop("database_url", None) or new_database(), config, **kwargs
        )
        gateway.start()
        started.append(gateway)
        return gateway

    try:
        yield start
    finally:
        for gateway in started:
            gateway.stop()


@pytest.fixture(scope="session")
def start_gateway(
    tmp_path_factory: pytest.TempPathFactory, new_database: Callable[[], str]
) -> Iterator[Starter]:
    """For session-scoped fixtures: the gateways live until the session ends."""
    with _gateways(tmp_path_factory, new_database) as start:
        yield start


@pytest.fixture(scope="module")
def start_module_gateway(
    tmp_path_factory: pytest.TempPathFactory, new_database: Callable[[], str]
) -> Iterator[Starter]:
    """For module-scoped fixtures: the gateways stop when the module's tests are done."""
    with _gateways(tmp_path_factory, new_database) as start:
        yield start


@pytest.fixture
def start_test_gateway(
    tmp_path_factory: pytest.TempPathFactory, new_database: Callable[[], str]
) -> Iterator[Starter]:
    """For one test: the gateways stop when it ends."""
    with _gateways(tmp_path_factory, new_database) as start:
        yield start


@pytest.fixture(scope="session", params=BACKEND_KINDS)
def gateway(
    request: pytest.FixtureRequest,
    start_gateway: Callable[..., GatewayProcess],
    tmp_path_factory: pytest.TempPathFactory,
) -> GatewayProcess:
    """One gateway per backend kind; every object test runs against each."""
    root = tmp_path_factory.mktemp(f"backend-{request.param}")
    return start_gateway(gateway_config(backend_config(request.param, request, root)))


@pytest.fixture(scope="session")
def local_gateway(
    start_gateway: Callable[..., GatewayProcess], tmp_path_factory: pytest.TempPathFactory
) -> GatewayProcess:
    """A localfs gateway for tests whose subject is not the backend."""
    root = tmp_path_factory.mktemp("backend-local")
    backend = {"name": "localfs", "driver": "localfs", "path": str(root / "localfs")}
    return start_gateway(gateway_config(backend))


def client_for(gateway: GatewayProcess, **config: Any) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=gateway.endpoint,
        aws_access_key_id=gateway.access_key,
        aws_secret_access_key=gateway.secret_key,
        region_name="us-east-1",
        verify=False if gateway.tls else None,
        config=Config(**config) if config else None,
    )


@pytest.fixture
def s3(gateway: GatewayProcess) -> Any:
    return client_for(gateway)


@pytest.fixture
def bucket(s3: Any) -> str:
    name = random_name()
    s3.create_bucket(Bucket=name)
    return name
