"""Issue #6: PutBucketLifecycleConfiguration, GetBucketLifecycleConfiguration and
DeleteBucketLifecycle through boto3."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests import rawclient
from tests.conftest import client_for
from tests.gateway_process import GatewayProcess
from tests.servers import random_name

RULES: list[dict[str, Any]] = [
    {
        "ID": "archive-logs",
        "Filter": {"And": {"Prefix": "logs/", "Tags": [{"Key": "keep", "Value": "no"}],
                           "ObjectSizeGreaterThan": 1024}},
        "Status": "Enabled",
        "Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"},
                        {"Days": 90, "StorageClass": "GLACIER"}],
        "Expiration": {"Days": 365},
        "NoncurrentVersionTransitions": [{"NoncurrentDays": 30, "StorageClass": "GLACIER_IR",
                                          "NewerNoncurrentVersions": 2}],
        "NoncurrentVersionExpiration": {"NoncurrentDays": 60, "NewerNoncurrentVersions": 3},
    },
    {
        "ID": "uploads",
        "Filter": {"Prefix": ""},
        "Status": "Disabled",
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
        "Expiration": {"ExpiredObjectDeleteMarker": True},
    },
    {
        "ID": "dated",
        "Filter": {"ObjectSizeLessThan": 10},
        "Status": "Enabled",
        "Expiration": {"Date": datetime(2031, 1, 1, tzinfo=UTC)},
    },
]  # fmt: skip


@pytest.fixture(scope="module")
def s3(local_gateway: GatewayProcess) -> Any:
    return client_for(local_gateway)


@pytest.fixture
def bucket(s3: Any) -> str:
    name = random_name("lc-")
    s3.create_bucket(Bucket=name)
    return name


def _error(call: Any, **kwargs: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    response = info.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_configuration_round_trip(s3: Any, bucket: str) -> None:
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": RULES})
    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert rules == RULES


def test_no_configuration_is_404_and_delete_removes_it(s3: Any, bucket: str) -> None:
    get = s3.get_bucket_lifecycle_configuration
    assert _error(get, Bucket=bucket) == ("NoSuchLifecycleConfiguration", 404)
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": RULES[2:]}
    )
    assert get(Bucket=bucket)["Rules"][0]["ID"] == "dated"
    s3.delete_bucket_lifecycle(Bucket=bucket)
    assert _error(get, Bucket=bucket) == ("NoSuchLifecycleConfiguration", 404)


@pytest.mark.parametrize(
    ("rule", "code"),
    [
        ({"Filter": {}, "Status": "Enabled", "Expiration": {"Days": 0}}, "InvalidArgument"),
        ({"Filter": {}, "Status": "Enabled"}, "InvalidRequest"),
        ({"Filter": {"Tag": {"Key": "k", "Value": "v"}}, "Status": "Enabled",
          "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}, "InvalidRequest"),
        ({"Filter": {}, "Status": "Enabled",
          "Transitions": [{"Days": 1, "StorageClass": "STANDARD_IA"}]}, "InvalidArgument"),
        ({"Filter": {}, "Status": "Enabled",
          "Expiration": {"Date": datetime(2031, 1, 1, 12, tzinfo=UTC)}}, "InvalidArgument"),
    ],
)  # fmt: skip
def test_malformed_rules_are_refused(s3: Any, bucket: str, rule: dict[str, Any], code: str) -> None:
    put = s3.put_bucket_lifecycle_configuration
    config = {"Rules": [{"ID": "bad", **rule}]}
    assert _error(put, Bucket=bucket, LifecycleConfiguration=config) == (code, 400)
    get = s3.get_bucket_lifecycle_configuration
    assert _error(get, Bucket=bucket) == ("NoSuchLifecycleConfiguration", 404)


def test_a_body_without_integrity_check_is_refused(
    local_gateway: GatewayProcess, bucket: str
) -> None:
    body = (
        b"<LifecycleConfiguration><Rule><Filter/><Status>Enabled</Status>"
        b"<Expiration><Days>1</Days></Expiration></Rule></LifecycleConfiguration>"
    )
    gw = local_gateway
    creds = rawclient.Credentials(gw.endpoint, gw.access_key, gw.secret_key)
    path = rawclient.object_path(bucket)
    answer = rawclient.request(creds, "PUT", path, body, query="lifecycle=")
    assert (answer.status, answer.error_code()) == (400, "InvalidRequest")
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    answer = rawclient.request(
        creds, "PUT", path, body, query="lifecycle=", headers={"Content-MD5": md5}
    )
    assert answer.status == 200
