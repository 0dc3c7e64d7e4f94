"""Fixtures for real S3 clients: a TLS gateway, a test CA, a file tree to sync."""

from __future__ import annotations

import filecmp
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.certs import TestCertificates, make_certificates
from tests.conftest import backend_config, gateway_config
from tests.gateway_process import GatewayProcess

TREE_FILES = 200
SMALL_FILE_MAX_BYTES = 20_000
BIG_FILE_BYTES = 50 * 1024 * 1024
MIB = 1024 * 1024
# Names that need percent-encoding in a URL, in SigV4's canonical URI or in a listing.
AWKWARD_NAMES = [
    "with space.txt",
    "plus+sign.txt",
    "percent%20literal.txt",
    "tilde~and=equals.txt",
    "paren (1) & amp.txt",
    "ünïcødé-名前.txt",
    "semi;colon,comma@at.txt",
    "dollar$hash#.txt",
]


@dataclass(frozen=True, slots=True)
class FileTree:
    """A directory of ``count`` files; ``big`` is the one file large enough for multipart."""

    root: Path
    count: int
    big: Path


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> TestCertificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


def _tls_config(backend: dict[str, Any], certificates: TestCertificates) -> dict[str, Any]:
    tls = {"cert_file": str(certificates.cert_file), "key_file": str(certificates.key_file)}
    return gateway_config(backend, server={"tls": tls})


@pytest.fixture(scope="session", params=["localfs", "moto"])
def tls_gateway(
    request: pytest.FixtureRequest,
    start_gateway: Callable[..., GatewayProcess],
    tmp_path_factory: pytest.TempPathFactory,
    certificates: TestCertificates,
) -> GatewayProcess:
    """A gateway serving https with a certificate the test CA signed."""
    root = tmp_path_factory.mktemp(f"tls-backend-{request.param}")
    return start_gateway(_tls_config(backend_config(request.param, request, root), certificates))


@pytest.fixture(scope="session")
def tls_local_gateway(
    start_gateway: Callable[..., GatewayProcess],
    tmp_path_factory: pytest.TempPathFactory,
    certificates: TestCertificates,
) -> GatewayProcess:
    """An https gateway on localfs, for clients whose subject is not the backend."""
    root = tmp_path_factory.mktemp("tls-backend-local")
    backend = {"name": "localfs", "driver": "localfs", "path": str(root / "localfs")}
    return start_gateway(_tls_config(backend, certificates))


def _write_random(path: Path, size: int, rng: random.Random) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(rng.randbytes(size))


def _write_big(path: Path, size: int) -> None:
    with path.open("wb") as out:
        for _ in range(size // MIB):
            out.write(os.urandom(MIB))


@pytest.fixture(scope="session")
def file_tree(tmp_path_factory: pytest.TempPathFactory) -> FileTree:
    """200 files in nested directories: small random ones, awkward names, one of 50 MiB."""
    root = tmp_path_factory.mktemp("tree") / "tree"
    rng = random.Random(20240601)
    for name in AWKWARD_NAMES:
        _write_random(root / "awkward dir" / name, rng.randint(1, 100), rng)
    for index in range(TREE_FILES - 1 - len(AWKWARD_NAMES)):
        depth = rng.randint(0, 3)
        parts = [f"d{rng.randint(0, 4)}" for _ in range(depth)]
        size = rng.choice([0, 1, rng.randint(2, SMALL_FILE_MAX_BYTES)])
        _write_random(root.joinpath(*parts, f"file-{index:03d}.bin"), size, rng)
    big = root / "big" / "fifty.bin"
    big.parent.mkdir(parents=True)
    _write_big(big, BIG_FILE_BYTES)
    # Sync tools upload a file whose mtime is newer than the object's LastModified, which
    # S3 (and Skybridge) keep to the second: a tree written in the same second as its
    # upload would be uploaded again by the next sync. Files older than the upload, as in
    # real use, make "a second sync transfers nothing" deterministic.
    an_hour_ago = time.time() - 3600
    for path in root.rglob("*"):
        if path.is_file():
            os.utime(path, (an_hour_ago, an_hour_ago))
    return FileTree(root=root, count=TREE_FILES, big=big)


def tree_files(root: Path) -> list[str]:
    """Every regular file under ``root``, as sorted relative POSIX paths."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def assert_same_tree(expected: Path, actual: Path) -> None:
    """Both trees hold the same file names with byte-identical contents."""
    names = tree_files(expected)
    assert tree_files(actual) == names
    match, mismatch, errors = filecmp.cmpfiles(expected, actual, names, shallow=False)
    assert (mismatch, errors) == ([], [])
    assert len(match) == len(names)
