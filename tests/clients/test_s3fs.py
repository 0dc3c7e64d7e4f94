"""fsspec's s3fs (aiobotocore underneath) against the gateway, over http and https."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import s3fs

from tests.certs import TestCertificates
from tests.clients.conftest import MIB, assert_same_tree, tree_files
from tests.gateway_process import GatewayProcess
from tests.servers import random_name

BLOCK_BYTES = 5 * MIB


def _filesystem(gateway: GatewayProcess, **client_kwargs: Any) -> Any:
    return s3fs.S3FileSystem(
        key=gateway.access_key,
        secret=gateway.secret_key,
        client_kwargs={
            "endpoint_url": gateway.endpoint,
            "region_name": "us-east-1",
            **client_kwargs,
        },
        default_block_size=BLOCK_BYTES,
        skip_instance_cache=True,
    )


@pytest.fixture(scope="module")
def fs(local_gateway: GatewayProcess) -> Any:
    return _filesystem(local_gateway)


@pytest.fixture
def fs_bucket(fs: Any) -> str:
    name = random_name()
    fs.mkdir(name)
    return name


def test_write_multipart_then_read_back(fs: Any, fs_bucket: str) -> None:
    body = os.urandom(12 * MIB + 3)
    path = f"{fs_bucket}/dir/big.bin"
    with fs.open(path, "wb", block_size=BLOCK_BYTES) as out:
        for start in range(0, len(body), MIB):
            out.write(body[start : start + MIB])

    info = fs.info(path)
    assert info["size"] == len(body)
    assert info["ETag"].strip('"').endswith("-3")  # 5 + 5 + 2 MiB parts
    with fs.open(path, "rb") as source:
        assert source.read() == body
        source.seek(7 * MIB)
        assert source.read(1000) == body[7 * MIB : 7 * MIB + 1000]


def test_ls_info_rm(fs: Any, fs_bucket: str) -> None:
    for key in ["a.txt", "sub/b.txt", "sub/deeper/c.txt"]:
        fs.pipe_file(f"{fs_bucket}/{key}", key.encode())

    assert sorted(fs.ls(fs_bucket, detail=False)) == [f"{fs_bucket}/a.txt", f"{fs_bucket}/sub"]
    detailed = {e["name"]: e for e in fs.ls(f"{fs_bucket}/sub", detail=True)}
    assert detailed[f"{fs_bucket}/sub/b.txt"]["size"] == len(b"sub/b.txt")
    assert detailed[f"{fs_bucket}/sub/deeper"]["type"] == "directory"
    assert fs.info(f"{fs_bucket}/sub")["type"] == "directory"
    assert fs.info(f"{fs_bucket}/a.txt")["size"] == len(b"a.txt")

    fs.rm(f"{fs_bucket}/sub", recursive=True)
    fs.invalidate_cache()
    assert fs.ls(fs_bucket, detail=False) == [f"{fs_bucket}/a.txt"]
    fs.rm(f"{fs_bucket}/a.txt")
    fs.invalidate_cache()
    assert not fs.exists(f"{fs_bucket}/a.txt")
    with pytest.raises(FileNotFoundError):
        fs.info(f"{fs_bucket}/a.txt")


def test_put_and_get_a_tree(fs: Any, fs_bucket: str, tmp_path: Path) -> None:
    source = tmp_path / "src"
    for index, rel in enumerate(["one.bin", "d/two.bin", "d/e/three.bin", "f/four.bin"]):
        (source / rel).parent.mkdir(parents=True, exist_ok=True)
        (source / rel).write_bytes(os.urandom(1000 * (index + 1)))

    fs.put(f"{source}/", f"{fs_bucket}/tree/", recursive=True)
    remote = sorted(p.removeprefix(f"{fs_bucket}/tree/") for p in fs.find(f"{fs_bucket}/tree"))
    assert remote == tree_files(source)

    target = tmp_path / "dst"
    fs.get(f"{fs_bucket}/tree/", f"{target}/", recursive=True)
    assert_same_tree(source, target)


def test_cat_file_ranges(fs: Any, fs_bucket: str) -> None:
    body = os.urandom(100_000)
    path = f"{fs_bucket}/ranged.bin"
    fs.pipe_file(path, body)

    assert fs.cat_file(path) == body
    assert fs.cat_file(path, start=10, end=20) == body[10:20]
    assert fs.cat_file(path, start=99_990) == body[99_990:]
    assert fs.cat_file(path, start=-100) == body[-100:]
    assert fs.cat_file(path, start=0, end=1) == body[:1]


def test_missing_object(fs: Any, fs_bucket: str) -> None:
    with pytest.raises(FileNotFoundError):
        fs.cat_file(f"{fs_bucket}/nope")


@pytest.fixture
def tls_fs(tls_local_gateway: GatewayProcess, certificates: TestCertificates) -> Any:
    return _filesystem(tls_local_gateway, verify=str(certificates.ca_file))


def test_over_tls_multipart_and_small(tls_fs: Any) -> None:
    """aiobotocore over https sends aws-chunked bodies through aiohttp, not urllib3."""
    bucket = random_name()
    tls_fs.mkdir(bucket)
    small = os.urandom(3000)
    big = os.urandom(11 * MIB)

    tls_fs.pipe_file(f"{bucket}/small", small)
    with tls_fs.open(f"{bucket}/big", "wb", block_size=BLOCK_BYTES) as out:
        out.write(big)

    assert tls_fs.cat_file(f"{bucket}/small") == small
    assert tls_fs.cat_file(f"{bucket}/big") == big
    assert (
        tls_fs.cat_file(f"{bucket}/big", start=6 * MIB, end=6 * MIB + 10)
        == big[6 * MIB : 6 * MIB + 10]
    )
