"""Issue #6, acceptance 3: expiration and noncurrent-version rules delete exactly what they
should and usage follows; an incomplete multipart upload is aborted after its days. Time
is injected: each pass runs at a time the test names."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import client_for, gateway_config
from tests.gateway_process import GatewayProcess
from tests.lifecycle.conftest import NO_SCHEDULED_PASS, bucket_usage, run_lifecycle
from tests.servers import random_name


@pytest.fixture(scope="module")
def gateway(
    start_module_gateway: Callable[..., GatewayProcess], tmp_path_factory: pytest.TempPathFactory
) -> GatewayProcess:
    root = tmp_path_factory.mktemp("lifecycle-expiration")
    backend = {"name": "localfs", "driver": "localfs", "path": str(root / "store")}
    return start_module_gateway(gateway_config(backend, lifecycle=NO_SCHEDULED_PASS))


@pytest.fixture(scope="module")
def s3(gateway: GatewayProcess) -> Any:
    return client_for(gateway)


def _bucket(s3: Any, rules: list[dict[str, Any]], versioned: bool = False) -> str:
    name = random_name("lc-")
    s3.create_bucket(Bucket=name)
    if versioned:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": rules})
    return name


def test_unversioned_expiration_deletes_exactly_the_matching_objects(
    gateway: GatewayProcess, s3: Any
) -> None:
    bucket = _bucket(s3, [{"ID": "tmp", "Filter": {"Prefix": "tmp/"}, "Status": "Enabled",
                           "Expiration": {"Days": 2}}])  # fmt: skip
    for key, size in (("tmp/a", 100), ("tmp/b", 200), ("keep/c", 300), ("tmpx", 400)):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x" * size)
    assert run_lifecycle(gateway, 1)["expired"] == 0
    report = run_lifecycle(gateway, 3)
    assert report["expired"] == 2
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["keep/c", "tmpx"]
    assert bucket_usage(gateway, bucket) == {"bytes": 700, "objects": 2}
    assert run_lifecycle(gateway, 3)["expired"] == 0


def _put_versions(s3: Any, bucket: str, key: str, bodies: list[str]) -> list[str]:
    return [s3.put_object(Bucket=bucket, Key=key, Body=b.encode())["VersionId"] for b in bodies]


def _state(s3: Any, bucket: str) -> dict[str, list[str]]:
    """Each key's versions, newest first: the body of each version, or "marker"."""
    listed = s3.list_object_versions(Bucket=bucket)
    entries = [(v, False) for v in listed.get("Versions", [])]
    entries += [(m, True) for m in listed.get("DeleteMarkers", [])]
    # boto3 lists versions and markers apart; each list is newest first within a key.
    entries.sort(key=lambda e: (e[0]["Key"], not e[0]["IsLatest"]))
    state: dict[str, list[str]] = {}
    for entry, marker in entries:
        key, version_id = entry["Key"], entry["VersionId"]
        label = "marker" if marker else _body(s3, bucket, key, version_id)
        state.setdefault(key, []).append(label)
    return state


def _body(s3: Any, bucket: str, key: str, version_id: str) -> str:
    response = s3.get_object(Bucket=bucket, Key=key, VersionId=version_id)
    return str(response["Body"].read().decode())


def test_versioned_expiration_and_noncurrent_rules(gateway: GatewayProcess, s3: Any) -> None:
    bucket = _bucket(
        s3,
        [
            {"ID": "logs", "Filter": {"Prefix": "logs/"}, "Status": "Enabled",
             "Expiration": {"Days": 1},
             "NoncurrentVersionExpiration": {"NoncurrentDays": 1, "NewerNoncurrentVersions": 1}},
            {"ID": "markers", "Filter": {"Prefix": "markers/"}, "Status": "Enabled",
             "Expiration": {"ExpiredObjectDeleteMarker": True}},
        ],
        versioned=True,
    )  # fmt: skip
    _put_versions(s3, bucket, "logs/a", ["a1", "a2", "a3"])
    _put_versions(s3, bucket, "data/b", ["b1", "b2"])
    _put_versions(s3, bucket, "markers/c", ["c1"])
    s3.delete_object(Bucket=bucket, Key="markers/c")
    s3.delete_object(Bucket=bucket, Key="markers/d")  # a delete marker and nothing else
    before = bucket_usage(gateway, bucket)
    assert before == {"bytes": 12, "objects": 6}

    report = run_lifecycle(gateway, 2)
    assert (report["expired"], report["removed"]) == (1, 2)
    assert _state(s3, bucket) == {
        # a3 expired (a delete marker now), a1 had one newer noncurrent version: removed.
        "logs/a": ["marker", "a3", "a2"],
        "data/b": ["b2", "b1"],
        # The marker of c has a noncurrent version behind it, so it is not "expired".
        "markers/c": ["marker", "c1"],
    }
    assert bucket_usage(gateway, bucket) == {"bytes": 10, "objects": 5}

    report = run_lifecycle(gateway, 4)
    assert (report["expired"], report["removed"]) == (0, 1)
    assert _state(s3, bucket)["logs/a"] == ["marker", "a3"]
    assert bucket_usage(gateway, bucket) == {"bytes": 8, "objects": 4}


def test_incomplete_upload_is_aborted_after_its_days(gateway: GatewayProcess, s3: Any) -> None:
    abort = {"DaysAfterInitiation": 2}
    bucket = _bucket(s3, [{"ID": "uploads", "Filter": {"Prefix": "up/"}, "Status": "Enabled",
                           "AbortIncompleteMultipartUpload": abort}])  # fmt: skip
    uploads = {}
    for key in ("up/x", "other/y"):
        upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=b"p" * 1000)
        uploads[key] = upload_id
    assert bucket_usage(gateway, bucket) == {"bytes": 2000, "objects": 0}
    assert run_lifecycle(gateway, 1)["uploads_aborted"] == 0
    assert run_lifecycle(gateway, 3)["uploads_aborted"] == 1
    listed = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert [u["Key"] for u in listed] == ["other/y"]
    assert bucket_usage(gateway, bucket) == {"bytes": 1000, "objects": 0}
    with pytest.raises(s3.exceptions.NoSuchUpload):
        s3.list_parts(Bucket=bucket, Key="up/x", UploadId=uploads["up/x"])


def test_a_disabled_rule_does_nothing(gateway: GatewayProcess, s3: Any) -> None:
    bucket = _bucket(s3, [{"ID": "off", "Filter": {}, "Status": "Disabled",
                           "Expiration": {"Days": 1}}])  # fmt: skip
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    run_lifecycle(gateway, 30)
    assert s3.head_object(Bucket=bucket, Key="k")["ContentLength"] == 1
