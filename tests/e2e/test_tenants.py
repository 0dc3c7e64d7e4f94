"""Issue #5 acceptance 1, first half: tenants are isolated. Two tenants with two access keys
each; every operation across tenants is refused with AccessDenied, every one within a
tenant succeeds. (Bucket policies that open access across tenants are not built yet.)"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.conftest import gateway_config
from tests.gateway_process import GatewayProcess
from tests.placement.conftest import poll
from tests.servers import random_name


def _cli(gateway: GatewayProcess, *args: str) -> dict[str, Any]:
    code, result = gateway.cli(*args)
    assert code == 0, result
    return result


def _client(gateway: GatewayProcess, key: dict[str, Any]) -> Any:
    return boto3.client(
        "s3", endpoint_url=gateway.endpoint, aws_access_key_id=key["access_key"],
        aws_secret_access_key=key["secret_key"], region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, signature_version="s3v4"),
    )  # fmt: skip


@pytest.fixture(scope="module")
def tenants(
    start_module_gateway: Callable[..., GatewayProcess], tmp_path_factory: pytest.TempPathFactory
) -> tuple[GatewayProcess, dict[str, list[Any]]]:
    root: Path = tmp_path_factory.mktemp("tenants")
    gateway = start_module_gateway(
        gateway_config({"name": "localfs", "driver": "localfs", "path": str(root)})
    )
    clients = {
        tenant: [
            _client(gateway, _cli(gateway, "key", "create", "--tenant", tenant)) for _ in range(2)
        ]
        for tenant in ("alpha", "beta")
    }
    return gateway, clients


def _denied(call: Callable[[], object]) -> str:
    with pytest.raises(ClientError) as refused:
        call()
    response = refused.value.response
    return f"{response['ResponseMetadata']['HTTPStatusCode']} {response['Error']['Code']}"


def _delete_objects(s3: Any, bucket: str) -> None:
    """DeleteObjects authorizes each key: a refusal is an AccessDenied entry, as in S3."""
    result = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "shared.txt"}]})
    if [e["Code"] for e in result.get("Errors", [])] == ["AccessDenied"]:
        raise ClientError(
            {"Error": {"Code": "AccessDenied"}, "ResponseMetadata": {"HTTPStatusCode": 403}},
            "DeleteObjects",
        )


def _operations(s3: Any, bucket: str, own_bucket: str) -> dict[str, Callable[[], object]]:
    """Every S3 operation against ``bucket`` (another tenant's)."""
    return {
        "HeadBucket": lambda: s3.head_bucket(Bucket=bucket),
        "ListObjectsV2": lambda: s3.list_objects_v2(Bucket=bucket),
        "ListObjects": lambda: s3.list_objects(Bucket=bucket),
        "ListObjectVersions": lambda: s3.list_object_versions(Bucket=bucket),
        "GetBucketLocation": lambda: s3.get_bucket_location(Bucket=bucket),
        "GetBucketVersioning": lambda: s3.get_bucket_versioning(Bucket=bucket),
        "PutBucketVersioning": lambda: s3.put_bucket_versioning(
            Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
        ),
        "PutBucketTagging": lambda: s3.put_bucket_tagging(
            Bucket=bucket, Tagging={"TagSet": [{"Key": "k", "Value": "v"}]}
        ),
        "DeleteBucket": lambda: s3.delete_bucket(Bucket=bucket),
        "GetObject": lambda: s3.get_object(Bucket=bucket, Key="shared.txt"),
        "HeadObject": lambda: s3.head_object(Bucket=bucket, Key="shared.txt"),
        "PutObject": lambda: s3.put_object(Bucket=bucket, Key="intruder", Body=b"x"),
        "DeleteObject": lambda: s3.delete_object(Bucket=bucket, Key="shared.txt"),
        "DeleteObjects": lambda: _delete_objects(s3, bucket),
        "GetObjectTagging": lambda: s3.get_object_tagging(Bucket=bucket, Key="shared.txt"),
        "CreateMultipartUpload": lambda: s3.create_multipart_upload(Bucket=bucket, Key="mp"),
        "ListMultipartUploads": lambda: s3.list_multipart_uploads(Bucket=bucket),
        "CopyObject (into it)": lambda: s3.copy_object(
            Bucket=bucket, Key="c", CopySource={"Bucket": own_bucket, "Key": "mine.txt"}
        ),
        "CopyObject (out of it)": lambda: s3.copy_object(
            Bucket=own_bucket, Key="c", CopySource={"Bucket": bucket, "Key": "shared.txt"}
        ),
    }


def test_tenants_are_isolated(tenants: tuple[GatewayProcess, dict[str, list[Any]]]) -> None:
    _, clients = tenants
    (a1, a2), (b1, b2) = clients["alpha"], clients["beta"]
    a_bucket, b_bucket = random_name(), random_name()
    a1.create_bucket(Bucket=a_bucket)
    b1.create_bucket(Bucket=b_bucket)
    a1.put_object(Bucket=a_bucket, Key="shared.txt", Body=b"alpha data")
    b1.put_object(Bucket=b_bucket, Key="mine.txt", Body=b"beta data")

    # Within a tenant, every key works on the tenant's buckets.
    assert a2.get_object(Bucket=a_bucket, Key="shared.txt")["Body"].read() == b"alpha data"
    a2.put_object(Bucket=a_bucket, Key="from-a2", Body=b"ok")
    assert {o["Key"] for o in a2.list_objects_v2(Bucket=a_bucket)["Contents"]} == {
        "shared.txt", "from-a2",
    }  # fmt: skip
    # ListBuckets shows the caller's tenant only.
    assert a_bucket in {b["Name"] for b in a2.list_buckets()["Buckets"]}
    for beta in (b1, b2):
        names = {b["Name"] for b in beta.list_buckets()["Buckets"]}
        assert a_bucket not in names
        assert b_bucket in names

    # Across tenants, every operation is refused.
    for beta in (b1, b2):
        outcomes = {
            name: _denied(call) for name, call in _operations(beta, a_bucket, b_bucket).items()
        }
        assert {name: o for name, o in outcomes.items() if not o.startswith("403")} == {}
        assert set(outcomes.values()) <= {"403 AccessDenied", "403 403"}
    # Names stay globally unique: beta cannot take alpha's bucket name.
    assert _denied(lambda: b1.create_bucket(Bucket=a_bucket)) == "409 BucketAlreadyExists"
    # And alpha's data is exactly as it was.
    assert a1.get_object(Bucket=a_bucket, Key="shared.txt")["Body"].read() == b"alpha data"
    assert {o["Key"] for o in a1.list_objects_v2(Bucket=a_bucket)["Contents"]} == {
        "shared.txt", "from-a2",
    }  # fmt: skip


def test_a_deleted_key_stops_working(
    tenants: tuple[GatewayProcess, dict[str, list[Any]]],
) -> None:
    gateway, _ = tenants
    created = _cli(gateway, "key", "create", "--tenant", "alpha")
    s3 = _client(gateway, created)
    s3.list_buckets()
    listed = _cli(gateway, "key", "list")["keys"]
    assert {"access_key": created["access_key"], "tenant": "alpha"} in listed
    assert all("secret" not in entry for entry in listed)
    _cli(gateway, "key", "delete", "--access-key", created["access_key"])
    # Nodes cache keys for at most a few seconds.
    codes: list[str] = []

    def refused() -> bool:
        try:
            s3.list_buckets()
        except ClientError as error:
            codes.append(error.response["Error"]["Code"])
            return True
        return False

    poll(refused, "the deleted key refused", timeout_s=15)
    assert codes == ["InvalidAccessKeyId"]
