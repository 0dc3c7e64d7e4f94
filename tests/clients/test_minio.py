"""The minio Python client against the gateway: plain http, and once over TLS.

minio signs every payload with a hex SHA-256 (never aws-chunked) and uploads streams of
unknown length as multipart of ``part_size``, so it exercises other paths than boto3.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import os
import ssl
import urllib.request
from collections.abc import Iterator
from typing import Any, BinaryIO, cast

import pytest
import urllib3
from minio import Minio
from minio.commonconfig import ENABLED, CopySource, Tags
from minio.deleteobjects import DeleteObject
from minio.error import S3Error
from minio.versioningconfig import SUSPENDED, VersioningConfig

from tests.certs import TestCertificates
from tests.gateway_process import GatewayProcess
from tests.servers import random_name

MIB = 1024 * 1024


def _host(gateway: GatewayProcess) -> str:
    return gateway.endpoint.split("://", 1)[1]


@pytest.fixture(scope="module")
def mc(local_gateway: GatewayProcess) -> Minio:
    return Minio(
        _host(local_gateway),
        access_key=local_gateway.access_key,
        secret_key=local_gateway.secret_key,
        secure=False,
        region="us-east-1",
    )


@pytest.fixture
def minio_bucket(mc: Minio) -> str:
    name = random_name()
    mc.make_bucket(name)
    return name


def _read(mc: Minio, bucket: str, key: str, **kwargs: Any) -> bytes:
    response = mc.get_object(bucket, key, **kwargs)
    try:
        return bytes(response.read())
    finally:
        response.close()
        response.release_conn()


def _unsized(data: bytes) -> BinaryIO:
    return cast(BinaryIO, _UnsizedStream(data))


def _put(mc: Minio, bucket: str, key: str, body: bytes, **kwargs: Any) -> Any:
    return mc.put_object(bucket, key, io.BytesIO(body), len(body), **kwargs)


class _UnsizedStream(io.RawIOBase):
    """A readable stream of unknown length, as from a pipe: minio must go multipart."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._inner.readinto(buffer)


def test_make_bucket_and_bucket_exists(mc: Minio) -> None:
    name = random_name()
    assert not mc.bucket_exists(name)
    mc.make_bucket(name)
    assert mc.bucket_exists(name)
    with pytest.raises(S3Error) as raised:
        mc.make_bucket(name)
    assert raised.value.code == "BucketAlreadyOwnedByYou"


def test_put_small_get_stat(mc: Minio, minio_bucket: str) -> None:
    body = os.urandom(70_000)
    result = _put(mc, minio_bucket, "a/small.bin", body, metadata={"colour": "blue"})

    assert _read(mc, minio_bucket, "a/small.bin") == body
    stat = mc.stat_object(minio_bucket, "a/small.bin")
    assert stat.size == len(body)
    assert stat.etag == result.etag == hashlib.md5(body).hexdigest()
    assert stat.metadata is not None
    assert stat.metadata["x-amz-meta-colour"] == "blue"
    assert _read(mc, minio_bucket, "a/small.bin", offset=1000, length=500) == body[1000:1500]


def test_put_unsized_stream_goes_multipart(mc: Minio, minio_bucket: str) -> None:
    body = os.urandom(12 * MIB)
    mc.put_object(minio_bucket, "big", _unsized(body), -1, part_size=5 * MIB)

    stat = mc.stat_object(minio_bucket, "big")
    assert stat.size == len(body)
    assert stat.etag is not None
    assert stat.etag.endswith("-3")  # three parts: 5 + 5 + 2 MiB
    assert _read(mc, minio_bucket, "big") == body


def test_stat_missing_object(mc: Minio, minio_bucket: str) -> None:
    with pytest.raises(S3Error) as raised:
        mc.stat_object(minio_bucket, "missing")
    assert raised.value.code == "NoSuchKey"


def test_list_objects_recursive_and_not(mc: Minio, minio_bucket: str) -> None:
    for key in ["top.txt", "dir/one.txt", "dir/sub/two.txt", "other/three.txt"]:
        _put(mc, minio_bucket, key, key.encode())

    # minio yields a page's objects before its common prefixes, so compare sorted.
    shallow = sorted((o.object_name, o.is_dir) for o in mc.list_objects(minio_bucket))
    assert shallow == [("dir/", True), ("other/", True), ("top.txt", False)]
    deep = [o.object_name for o in mc.list_objects(minio_bucket, recursive=True)]
    assert deep == ["dir/one.txt", "dir/sub/two.txt", "other/three.txt", "top.txt"]
    under = sorted(o.object_name for o in mc.list_objects(minio_bucket, prefix="dir/"))
    assert under == ["dir/one.txt", "dir/sub/"]
    sizes = {o.object_name: o.size for o in mc.list_objects(minio_bucket, recursive=True)}
    assert sizes["dir/sub/two.txt"] == len(b"dir/sub/two.txt")


def test_copy_object(mc: Minio, minio_bucket: str) -> None:
    body = os.urandom(100_000)
    _put(mc, minio_bucket, "src", body, metadata={"kept": "yes"})
    target = random_name()
    mc.make_bucket(target)

    mc.copy_object(target, "dst", CopySource(minio_bucket, "src"))

    assert _read(mc, target, "dst") == body
    metadata = mc.stat_object(target, "dst").metadata
    assert metadata is not None
    assert metadata["x-amz-meta-kept"] == "yes"


def test_remove_object_and_objects(mc: Minio, minio_bucket: str) -> None:
    keys = [f"k{i:02d}" for i in range(12)]
    for key in keys:
        _put(mc, minio_bucket, key, b"x")

    mc.remove_object(minio_bucket, "k00")
    errors = list(mc.remove_objects(minio_bucket, [DeleteObject(k) for k in keys[1:8]]))

    assert errors == []
    remaining = [o.object_name for o in mc.list_objects(minio_bucket, recursive=True)]
    assert remaining == keys[8:]


def test_presigned_get_fetched_with_urllib(mc: Minio, minio_bucket: str) -> None:
    body = os.urandom(5000)
    _put(mc, minio_bucket, "shared/file name.bin", body)
    url = mc.presigned_get_object(
        minio_bucket, "shared/file name.bin", expires=datetime.timedelta(minutes=5)
    )
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == body

    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(_tampered(url), timeout=10)
    assert raised.value.code == 403
    assert b"<Code>SignatureDoesNotMatch</Code>" in raised.value.read()
    raised.value.close()


def _tampered(url: str) -> str:
    """The same presigned URL with the last hex digit of its signature changed."""
    head, signature = url.split("X-Amz-Signature=", 1)
    last = "0" if signature[63] != "0" else "1"
    return f"{head}X-Amz-Signature={signature[:63]}{last}{signature[64:]}"


def test_bucket_versioning(mc: Minio, minio_bucket: str) -> None:
    assert mc.get_bucket_versioning(minio_bucket).status is None  # never enabled: no Status

    mc.set_bucket_versioning(minio_bucket, VersioningConfig(ENABLED))
    assert mc.get_bucket_versioning(minio_bucket).status == ENABLED
    first = _put(mc, minio_bucket, "v", b"one")
    second = _put(mc, minio_bucket, "v", b"two")
    assert first.version_id
    assert second.version_id
    assert first.version_id != second.version_id
    assert _read(mc, minio_bucket, "v", version_id=first.version_id) == b"one"
    assert _read(mc, minio_bucket, "v") == b"two"

    mc.set_bucket_versioning(minio_bucket, VersioningConfig(SUSPENDED))
    assert mc.get_bucket_versioning(minio_bucket).status == SUSPENDED


def test_object_tags(mc: Minio, minio_bucket: str) -> None:
    _put(mc, minio_bucket, "tagged", b"data")
    assert mc.get_object_tags(minio_bucket, "tagged") is None

    tags = Tags.new_object_tags()
    tags["project"] = "skybridge"
    tags["tier"] = "hot"
    mc.set_object_tags(minio_bucket, "tagged", tags)

    assert dict(mc.get_object_tags(minio_bucket, "tagged") or {}) == {
        "project": "skybridge",
        "tier": "hot",
    }
    mc.delete_object_tags(minio_bucket, "tagged")
    assert mc.get_object_tags(minio_bucket, "tagged") is None


@pytest.fixture
def tls_mc(tls_local_gateway: GatewayProcess, certificates: TestCertificates) -> Iterator[Minio]:
    context = ssl.create_default_context(cafile=str(certificates.ca_file))
    pool = urllib3.PoolManager(ssl_context=context)
    yield Minio(
        _host(tls_local_gateway),
        access_key=tls_local_gateway.access_key,
        secret_key=tls_local_gateway.secret_key,
        secure=True,
        region="us-east-1",
        http_client=pool,
    )
    pool.clear()


def test_over_tls_trusting_the_test_ca(tls_mc: Minio) -> None:
    bucket = random_name()
    tls_mc.make_bucket(bucket)
    small = os.urandom(10_000)
    big = os.urandom(11 * MIB)

    _put(tls_mc, bucket, "small", small)
    tls_mc.put_object(bucket, "big", _unsized(big), -1, part_size=5 * MIB)

    assert _read(tls_mc, bucket, "small") == small
    assert _read(tls_mc, bucket, "big") == big
    assert [o.object_name for o in tls_mc.list_objects(bucket)] == ["big", "small"]
