"""Issue #5: hard quotas enforced in real time, and usage kept exact.

Quotas are set with ``skybridge quota`` (the admin API is issue #7)."""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import client_for, gateway_config
from tests.gateway_process import GatewayProcess
from tests.servers import random_name

MIB = 1 << 20
QUOTA_BYTES = 100 * MIB
PART = 5 * MIB


def _cli(gateway: GatewayProcess, *args: str) -> tuple[int, dict[str, Any]]:
    return gateway.cli(*args)


def _bucket_usage(gateway: GatewayProcess, bucket_id: str) -> dict[str, Any]:
    code, report = _cli(gateway, "usage", "--recompute")
    assert code == 0, report["drift"]
    [row] = [u for u in report["usage"] if u["scope"] == "bucket" and u["scope_id"] == bucket_id]
    return dict(row)


def _bucket_id(gateway: GatewayProcess, bucket: str) -> str:
    code, report = _cli(gateway, "quota", "set", "--bucket", bucket)
    assert code == 0
    _cli(gateway, "quota", "clear", "--bucket", bucket)
    return str(report["set"]["scope_id"])


@pytest.fixture
def quota_gateway(
    start_test_gateway: Callable[..., GatewayProcess], tmp_path: Path
) -> GatewayProcess:
    backend = {"name": "localfs", "driver": "localfs", "path": str(tmp_path / "store")}
    return start_test_gateway(gateway_config(backend))


def _is_quota(error: ClientError) -> bool:
    response = error.response
    return bool(
        response["Error"]["Code"] == "QuotaExceeded"
        and response["ResponseMetadata"]["HTTPStatusCode"] == 403
    )


def _writer(
    gateway: GatewayProcess, bucket: str, seed: int, stored: dict[str, int], refused: list[str]
) -> None:
    rng = random.Random(seed)
    s3 = client_for(gateway, retries={"max_attempts": 1})
    for n in range(8):
        key = f"w{seed}/{n}"
        size = rng.choice([64 * 1024, MIB, 3 * MIB, 7 * MIB])
        try:
            if rng.random() < 0.2:
                _multipart(s3, bucket, key, 2 * PART + size)
                stored[key] = 2 * PART + size
            else:
                s3.put_object(Bucket=bucket, Key=key, Body=os.urandom(size))
                stored[key] = size
        except ClientError as error:
            # Anything but a quota refusal shows up as an unexpected key in the assertion.
            refused.append(key if _is_quota(error) else f"unexpected {error.response}")


def _multipart(s3: Any, bucket: str, key: str, size: int) -> None:
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    try:
        parts, offset, number = [], 0, 1
        while offset < size:
            chunk = os.urandom(min(PART, size - offset))
            etag = s3.upload_part(
                Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=chunk
            )["ETag"]
            parts.append({"PartNumber": number, "ETag": etag})
            offset += len(chunk)
            number += 1
        s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
        )
    except ClientError:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload)
        raise


def test_concurrent_writers_never_overshoot_a_hard_quota(
    quota_gateway: GatewayProcess, tmp_path: Path
) -> None:
    s3 = client_for(quota_gateway)
    bucket = random_name()
    s3.create_bucket(Bucket=bucket)
    code, _ = _cli(
        quota_gateway, "quota", "set", "--bucket", bucket, "--max-bytes", str(QUOTA_BYTES)
    )
    assert code == 0
    stored: dict[str, int] = {}
    refused: list[str] = []
    threads = [
        threading.Thread(target=_writer, args=(quota_gateway, bucket, seed, stored, refused))
        for seed in range(32)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert refused, "the writers must have hit the quota"
    assert [r for r in refused if r.startswith("unexpected")] == []
    listed = {
        o["Key"]: o["Size"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in page.get("Contents", [])
    }
    assert listed == stored
    assert sum(listed.values()) <= QUOTA_BYTES
    # Refused writes left nothing: no object, no open upload, no bytes on the backend.
    assert not set(refused) & set(listed)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    usage = _bucket_usage(quota_gateway, _bucket_id(quota_gateway, bucket))
    assert (usage["bytes"], usage["objects"]) == (sum(listed.values()), len(listed))
    assert (usage["reserved_bytes"], usage["reserved_objects"]) == (0, 0)


def _mixed_operations(s3: Any, versioned: str, plain: str, rng: random.Random) -> None:
    for n in range(2000):
        bucket = versioned if n % 2 else plain
        key = f"k{rng.randrange(40)}"
        action = rng.random()
        if action < 0.45:
            s3.put_object(Bucket=bucket, Key=key, Body=os.urandom(rng.randrange(0, 4096)))
        elif action < 0.6:
            s3.delete_object(Bucket=bucket, Key=key)
        elif action < 0.7:
            versions = s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", [])
            if versions:
                victim = rng.choice(versions)
                s3.delete_object(Bucket=bucket, Key=victim["Key"], VersionId=victim["VersionId"])
        elif action < 0.8:
            listed = s3.list_objects_v2(Bucket=bucket, Prefix=key).get("Contents", [])
            if any(o["Key"] == key for o in listed):
                s3.copy_object(
                    Bucket=bucket, Key=f"copy-{key}", CopySource={"Bucket": bucket, "Key": key}
                )
        else:
            upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
            body = os.urandom(rng.randrange(1, 8192))
            etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=body)[
                "ETag"
            ]
            if rng.random() < 0.5:
                s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload)
            elif rng.random() < 0.8:
                s3.complete_multipart_upload(
                    Bucket=bucket, Key=key, UploadId=upload,
                    MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]},
                )  # fmt: skip
            # else: left open, its part counts as stored bytes


def test_usage_stays_exact_through_mixed_operations(quota_gateway: GatewayProcess) -> None:
    s3 = client_for(quota_gateway)
    versioned, plain = random_name(), random_name()
    for name in (versioned, plain):
        s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=versioned, VersioningConfiguration={"Status": "Enabled"})
    _mixed_operations(s3, versioned, plain, random.Random(5))
    code, report = _cli(quota_gateway, "usage", "--recompute")
    assert code == 0
    assert report["drift"] == []
    for name in (versioned, plain):
        expected_bytes = sum(
            v["Size"]
            for page in s3.get_paginator("list_object_versions").paginate(Bucket=name)
            for v in page.get("Versions", [])
        )
        usage = _bucket_usage(quota_gateway, _bucket_id(quota_gateway, name))
        open_parts = sum(
            p["Size"]
            for u in s3.list_multipart_uploads(Bucket=name).get("Uploads", [])
            for p in s3.list_parts(Bucket=name, Key=u["Key"], UploadId=u["UploadId"])["Parts"]
        )
        assert usage["bytes"] == expected_bytes + open_parts


def test_a_quota_below_usage_blocks_writes_until_usage_falls(
    quota_gateway: GatewayProcess,
) -> None:
    s3 = client_for(quota_gateway)
    bucket = random_name()
    s3.create_bucket(Bucket=bucket)
    for n in range(3):
        s3.put_object(Bucket=bucket, Key=f"o{n}", Body=b"x" * 1000)
    code, _ = _cli(quota_gateway, "quota", "set", "--bucket", bucket, "--max-bytes", "1500")
    assert code == 0, "a quota below current usage is accepted"
    code, report = _cli(quota_gateway, "usage")
    [row] = [u for u in report["usage"] if u["quota"] and u["scope"] == "bucket"]
    assert row["over_quota"] is True
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=bucket, Key="more", Body=b"y")
    assert _is_quota(refused.value)
    assert "1500" in refused.value.response["Error"]["Message"]
    for n in range(3):
        s3.delete_object(Bucket=bucket, Key=f"o{n}")
    s3.put_object(Bucket=bucket, Key="fits", Body=b"z" * 1000)
    with pytest.raises(ClientError) as again:
        s3.put_object(Bucket=bucket, Key="too-much", Body=b"z" * 600)
    assert _is_quota(again.value)
    # A soft quota only reports.
    _cli(quota_gateway, "quota", "set", "--bucket", bucket, "--max-bytes", "10", "--soft")
    s3.put_object(Bucket=bucket, Key="soft", Body=b"s" * 100)
