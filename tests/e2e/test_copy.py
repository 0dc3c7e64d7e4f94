"""CopyObject: directives, conditions, and copies onto the same key."""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.servers import random_name

MIB = 1024 * 1024


def _error(info: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = info.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def _source(s3: Any, bucket: str, body: bytes = b"source body") -> dict[str, Any]:
    put: dict[str, Any] = s3.put_object(
        Bucket=bucket,
        Key="src",
        Body=body,
        ContentType="text/plain",
        CacheControl="max-age=5",
        Metadata={"origin": "source"},
        Tagging="colour=red",
    )
    return put


def test_copy_within_bucket_copies_metadata(s3: Any, bucket: str) -> None:
    put = _source(s3, bucket)
    result = s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    assert result["CopyObjectResult"]["ETag"] == put["ETag"]
    head = s3.head_object(Bucket=bucket, Key="dst")
    assert result["CopyObjectResult"]["LastModified"] == head["LastModified"]
    assert head["Metadata"] == {"origin": "source"}
    assert head["ContentType"] == "text/plain"
    assert head["CacheControl"] == "max-age=5"
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"source body"
    tags = s3.get_object_tagging(Bucket=bucket, Key="dst")["TagSet"]
    assert tags == [{"Key": "colour", "Value": "red"}]


def test_copy_across_buckets(s3: Any, bucket: str) -> None:
    _source(s3, bucket)
    other = random_name()
    s3.create_bucket(Bucket=other)
    s3.copy_object(Bucket=other, Key="a/b c", CopySource=f"{bucket}/src")
    assert s3.get_object(Bucket=other, Key="a/b c")["Body"].read() == b"source body"
    # The source is untouched.
    assert s3.get_object(Bucket=bucket, Key="src")["Body"].read() == b"source body"


def test_copy_special_character_key(s3: Any, bucket: str) -> None:
    key = "dir/ü ?#+%x"
    s3.put_object(Bucket=bucket, Key=key, Body=b"odd")
    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": key})
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"odd"


def test_metadata_directive_replace(s3: Any, bucket: str) -> None:
    _source(s3, bucket)
    s3.copy_object(
        Bucket=bucket,
        Key="dst",
        CopySource={"Bucket": bucket, "Key": "src"},
        MetadataDirective="REPLACE",
        Metadata={"fresh": "yes"},
        ContentType="application/json",
    )
    head = s3.head_object(Bucket=bucket, Key="dst")
    assert head["Metadata"] == {"fresh": "yes"}
    assert head["ContentType"] == "application/json"
    assert "CacheControl" not in head
    # Tags follow the tagging directive, not the metadata directive.
    tags = s3.get_object_tagging(Bucket=bucket, Key="dst")["TagSet"]
    assert tags == [{"Key": "colour", "Value": "red"}]


def test_metadata_directive_copy_ignores_new_metadata(s3: Any, bucket: str) -> None:
    _source(s3, bucket)
    s3.copy_object(
        Bucket=bucket,
        Key="dst",
        CopySource={"Bucket": bucket, "Key": "src"},
        MetadataDirective="COPY",
        Metadata={"ignored": "1"},
    )
    assert s3.head_object(Bucket=bucket, Key="dst")["Metadata"] == {"origin": "source"}


def test_tagging_directive(s3: Any, bucket: str) -> None:
    _source(s3, bucket)
    s3.copy_object(
        Bucket=bucket,
        Key="replaced",
        CopySource={"Bucket": bucket, "Key": "src"},
        TaggingDirective="REPLACE",
        Tagging="size=big&shape=round",
    )
    tags = s3.get_object_tagging(Bucket=bucket, Key="replaced")["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("shape", "round"), ("size", "big")]
    s3.copy_object(
        Bucket=bucket,
        Key="cleared",
        CopySource={"Bucket": bucket, "Key": "src"},
        TaggingDirective="REPLACE",
    )
    assert s3.get_object_tagging(Bucket=bucket, Key="cleared")["TagSet"] == []


def test_copy_source_conditions(s3: Any, bucket: str) -> None:
    etag = _source(s3, bucket)["ETag"]
    modified = s3.head_object(Bucket=bucket, Key="src")["LastModified"]
    source = {"Bucket": bucket, "Key": "src"}
    s3.copy_object(Bucket=bucket, Key="ok", CopySource=source, CopySourceIfMatch=etag)
    s3.copy_object(Bucket=bucket, Key="ok2", CopySource=source, CopySourceIfNoneMatch='"other"')
    failing: list[dict[str, Any]] = [
        {"CopySourceIfMatch": '"0123456789abcdef0123456789abcdef"'},
        {"CopySourceIfNoneMatch": etag},
        {"CopySourceIfModifiedSince": modified + timedelta(hours=1)},
        {"CopySourceIfUnmodifiedSince": modified - timedelta(hours=1)},
    ]
    for condition in failing:
        with pytest.raises(ClientError) as info:
            s3.copy_object(Bucket=bucket, Key="no", CopySource=source, **condition)
        assert _error(info) == ("PreconditionFailed", 412), condition
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["ok", "ok2", "src"]


def test_copy_missing_source(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as info:
        s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "nope"})
    assert _error(info) == ("NoSuchKey", 404)
    with pytest.raises(ClientError) as info:
        s3.copy_object(
            Bucket=bucket, Key="dst", CopySource={"Bucket": random_name("gone-"), "Key": "k"}
        )
    assert _error(info) == ("NoSuchBucket", 404)


def test_copy_of_multipart_object(s3: Any, bucket: str) -> None:
    parts = [os.urandom(5 * MIB), os.urandom(2048)]
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    done = []
    for number, data in enumerate(parts, start=1):
        etag = s3.upload_part(
            Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=number, Body=data
        )["ETag"]
        done.append({"PartNumber": number, "ETag": etag})
    s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=upload_id, MultipartUpload={"Parts": done}
    )
    result = s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "mp"})
    body = b"".join(parts)
    # A copy is written in one piece: its ETag is the MD5 of the data.
    assert result["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key="copy")
    assert got["ContentLength"] == len(body)
    assert got["Body"].read() == body


def test_copy_onto_itself(s3: Any, bucket: str) -> None:
    _source(s3, bucket)
    source = {"Bucket": bucket, "Key": "src"}
    with pytest.raises(ClientError) as info:
        s3.copy_object(Bucket=bucket, Key="src", CopySource=source)
    assert _error(info) == ("InvalidRequest", 400)
    s3.copy_object(
        Bucket=bucket,
        Key="src",
        CopySource=source,
        MetadataDirective="REPLACE",
        Metadata={"updated": "true"},
        ContentType="text/markdown",
    )
    head = s3.head_object(Bucket=bucket, Key="src")
    assert head["Metadata"] == {"updated": "true"}
    assert head["ContentType"] == "text/markdown"
    assert s3.get_object(Bucket=bucket, Key="src")["Body"].read() == b"source body"
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 1


def test_copy_specific_version(s3: Any, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket=bucket, Key="src", Body=b"one")["VersionId"]
    s3.put_object(Bucket=bucket, Key="src", Body=b"two")
    result = s3.copy_object(
        Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src", "VersionId": v1}
    )
    assert result["CopySourceVersionId"] == v1
    assert result["VersionId"]
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"one"
    # In a versioned bucket a plain self-copy is allowed: it makes a new version.
    again = s3.copy_object(Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "src"})
    assert again["VersionId"]
    versions = s3.list_object_versions(Bucket=bucket, Prefix="src")["Versions"]
    assert len(versions) == 3


def test_invalid_metadata_directive(s3: Any, bucket: str) -> None:
    _source(s3, bucket)
    with pytest.raises(ClientError) as info:
        s3.copy_object(
            Bucket=bucket,
            Key="dst",
            CopySource={"Bucket": bucket, "Key": "src"},
            MetadataDirective="MERGE",
        )
    assert _error(info) == ("InvalidArgument", 400)


def test_copy_keeps_checksum_algorithm(s3: Any, bucket: str) -> None:
    body = b"checksummed body"
    expected = base64.b64encode(hashlib.sha256(body).digest()).decode()
    s3.put_object(Bucket=bucket, Key="src", Body=body, ChecksumAlgorithm="SHA256")
    result = s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    assert result["CopyObjectResult"]["ChecksumSHA256"] == expected
    head = s3.head_object(Bucket=bucket, Key="dst", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == expected
