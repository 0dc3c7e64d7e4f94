"""One moto and one SeaweedFS per session; every test gets a fresh bucket or directory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.backends.base import Backend
from gateway.backends.localfs import TMP_DIR_NAME, LocalFsBackend
from gateway.backends.s3 import S3Backend
from tests.servers import MotoServer, SeaweedServer, make_bucket, random_name, s3_client

BACKEND_KINDS = ["localfs", "moto", "seaweedfs"]
S3Server = MotoServer | SeaweedServer


@dataclass(frozen=True)
class BackendUnderTest:
    backend: Backend
    # Lists what a failed or cancelled put may have left behind: temp files for localfs,
    # multipart uploads for S3. Tests expect it to be empty.
    leftovers: Callable[[], list[str]]


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture(scope="session")
def seaweedfs_server() -> Iterator[SeaweedServer]:
    with SeaweedServer() as server:
        yield server


@pytest.fixture(params=BACKEND_KINDS)
async def backend_under_test(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[BackendUnderTest]:
    kind: str = request.param
    if kind == "localfs":
        yield _localfs(tmp_path / "store")
        return
    # Looked up lazily so a run that selects only localfs starts no server.
    server: S3Server = request.getfixturevalue(f"{kind}_server")
    # moto stores under a key prefix, SeaweedFS at the bucket root: both paths get tested.
    key_prefix = "pfx/" if kind == "moto" else ""
    async with _s3(kind, server, key_prefix) as target:
        yield target


@pytest.fixture
def backend(backend_under_test: BackendUnderTest) -> Backend:
    return backend_under_test.backend


@pytest.fixture
def leftovers(backend_under_test: BackendUnderTest) -> Callable[[], list[str]]:
    return backend_under_test.leftovers


def _localfs(root: Path) -> BackendUnderTest:
    backend = LocalFsBackend("localfs-test", root)

    def leftovers() -> list[str]:
        return sorted(path.name for path in (root / TMP_DIR_NAME).iterdir())

    return BackendUnderTest(backend, leftovers)


@asynccontextmanager
async def _s3(kind: str, server: S3Server, key_prefix: str) -> AsyncIterator[BackendUnderTest]:
    bucket = random_name()
    make_bucket(server.endpoint_url, server.access_key, server.secret_key, bucket)
    client: Any = s3_client(server.endpoint_url, server.access_key, server.secret_key)
    backend = S3Backend(
        f"{kind}-test",
        endpoint_url=server.endpoint_url,
        bucket=bucket,
        access_key=server.access_key,
        secret_key=server.secret_key,
        key_prefix=key_prefix,
    )

    def leftovers() -> list[str]:
        uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        return sorted(upload["Key"] for upload in uploads)

    await backend.start()
    try:
        yield BackendUnderTest(backend, leftovers)
    finally:
        await backend.close()
