"""Bucket operations through boto3 with default settings, against every backend kind."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.servers import random_name


def _error(info: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = info.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_list_buckets_shows_created_bucket(s3: Any, bucket: str) -> None:
    listed = s3.list_buckets()
    names = [b["Name"] for b in listed["Buckets"]]
    assert bucket in names
    assert names == sorted(names)
    assert all(b["CreationDate"] is not None for b in listed["Buckets"])
    assert listed["Owner"]["ID"]


def test_create_bucket_with_location_constraint(s3: Any) -> None:
    name = random_name()
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] == "eu-west-1"
    head = s3.head_bucket(Bucket=name)
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == "eu-west-1"


def test_create_bucket_in_us_east_1_has_empty_location(s3: Any, bucket: str) -> None:
    assert s3.get_bucket_location(Bucket=bucket).get("LocationConstraint") in (None, "")


def test_recreate_own_bucket_is_already_owned(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as info:
        s3.create_bucket(Bucket=bucket)
    assert _error(info) == ("BucketAlreadyOwnedByYou", 409)


def test_head_bucket(s3: Any, bucket: str) -> None:
    assert s3.head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200
    with pytest.raises(ClientError) as info:
        s3.head_bucket(Bucket=random_name("missing-"))
    # HEAD has no body, so botocore reports the bare status as the code.
    assert _error(info) == ("404", 404)


def test_delete_bucket_lifecycle(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as info:
        s3.delete_bucket(Bucket=bucket)
    assert _error(info) == ("BucketNotEmpty", 409)
    s3.delete_object(Bucket=bucket, Key="k")
    assert s3.delete_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    with pytest.raises(ClientError) as info:
        s3.delete_bucket(Bucket=bucket)
    assert _error(info) == ("NoSuchBucket", 404)
    with pytest.raises(ClientError) as info:
        s3.list_objects_v2(Bucket=bucket)
    assert _error(info) == ("NoSuchBucket", 404)


def test_bucket_with_versions_left_is_not_empty(s3: Any, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    s3.delete_object(Bucket=bucket, Key="k")  # only a delete marker on top
    with pytest.raises(ClientError) as info:
        s3.delete_bucket(Bucket=bucket)
    assert _error(info) == ("BucketNotEmpty", 409)


def test_delete_bucket_with_open_upload_is_not_empty(s3: Any, bucket: str) -> None:
    s3.create_multipart_upload(Bucket=bucket, Key="k")
    with pytest.raises(ClientError) as info:
        s3.delete_bucket(Bucket=bucket)
    assert _error(info) == ("BucketNotEmpty", 409)


@pytest.mark.parametrize(
    "name",
    [
        "UpperCase-bucket",
        "ab",
        "a..b",
        "192.168.1.1",
        "trailing-dash-",
        "-leading-dash",
        "under_score",
        "a" * 64,
        "dot-.dash",
        "xn--prefixed",
    ],
)
def test_invalid_bucket_names(s3: Any, name: str) -> None:
    with pytest.raises(ClientError) as info:
        s3.create_bucket(Bucket=name)
    assert _error(info) == ("InvalidBucketName", 400)
