"""Object reads and writes through boto3 with default settings, against every backend kind."""

from __future__ import annotations

import base64
import hashlib
import os
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import client_for
from tests.gateway_process import GatewayProcess

MIB = 1024 * 1024


def _error(info: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = info.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def test_put_get_head_delete(s3: Any, bucket: str) -> None:
    body = os.urandom(3000)
    put = s3.put_object(Bucket=bucket, Key="k", Body=body)
    assert put["ETag"] == f'"{_md5(body)}"'
    head = s3.head_object(Bucket=bucket, Key="k")
    assert head["ContentLength"] == len(body)
    assert head["ETag"] == put["ETag"]
    assert head["ContentType"] == "binary/octet-stream"
    assert head["AcceptRanges"] == "bytes"
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == body
    assert got["LastModified"] == head["LastModified"]
    deleted = s3.delete_object(Bucket=bucket, Key="k")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket=bucket, Key="k")
    assert _error(info) == ("NoSuchKey", 404)
    with pytest.raises(ClientError) as info:
        s3.head_object(Bucket=bucket, Key="k")
    assert _error(info) == ("404", 404)
    # Deleting a missing key is not an error.
    assert s3.delete_object(Bucket=bucket, Key="k")["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_zero_byte_object(s3: Any, bucket: str) -> None:
    put = s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    assert put["ETag"] == '"d41d8cd98f00b204e9800998ecf8427e"'
    got = s3.get_object(Bucket=bucket, Key="empty")
    assert got["ContentLength"] == 0
    assert got["Body"].read() == b""
    assert s3.head_object(Bucket=bucket, Key="empty")["ContentLength"] == 0


def test_overwrite_replaces_content(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"first version", Metadata={"a": "1"})
    s3.put_object(Bucket=bucket, Key="k", Body=b"second")
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == b"second"
    assert got["Metadata"] == {}
    listed = s3.list_objects_v2(Bucket=bucket)
    assert [(o["Key"], o["Size"]) for o in listed["Contents"]] == [("k", 6)]


@pytest.mark.parametrize(
    ("range_header", "first", "last"),
    [
        ("bytes=0-9", 0, 9),
        ("bytes=5-", 5, 99),
        ("bytes=-10", 90, 99),
        ("bytes=90-1000", 90, 99),
        ("bytes=99-99", 99, 99),
        ("bytes=-1000", 0, 99),
    ],
)
def test_range_get(s3: Any, bucket: str, range_header: str, first: int, last: int) -> None:
    body = os.urandom(100)
    s3.put_object(Bucket=bucket, Key="k", Body=body)
    got = s3.get_object(Bucket=bucket, Key="k", Range=range_header)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert got["ContentRange"] == f"bytes {first}-{last}/100"
    assert got["ContentLength"] == last - first + 1
    assert got["Body"].read() == body[first : last + 1]


def test_range_past_end_is_invalid(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"small body")
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket=bucket, Key="k", Range="bytes=1000-")
    assert _error(info) == ("InvalidRange", 416)


def test_response_header_overrides(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"data", ContentType="text/plain")
    got = s3.get_object(
        Bucket=bucket,
        Key="k",
        ResponseContentType="application/json",
        ResponseContentDisposition='attachment; filename="x.json"',
        ResponseContentLanguage="fr",
        ResponseCacheControl="no-store",
        ResponseContentEncoding="identity",
        ResponseExpires=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    assert got["ContentType"] == "application/json"
    assert got["ContentDisposition"] == 'attachment; filename="x.json"'
    assert got["ContentLanguage"] == "fr"
    assert got["CacheControl"] == "no-store"
    assert got["ContentEncoding"] == "identity"
    assert got["ResponseMetadata"]["HTTPHeaders"]["expires"] == "Wed, 02 Jan 2030 03:04:05 GMT"
    assert got["Body"].read() == b"data"
    # The stored headers are untouched.
    assert s3.head_object(Bucket=bucket, Key="k")["ContentType"] == "text/plain"


def test_part_number_on_multipart_object(s3: Any, bucket: str) -> None:
    parts = [os.urandom(5 * MIB), os.urandom(1024)]
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")
    done = []
    for number, data in enumerate(parts, start=1):
        part = s3.upload_part(
            Bucket=bucket, Key="mp", UploadId=upload["UploadId"], PartNumber=number, Body=data
        )
        done.append({"PartNumber": number, "ETag": part["ETag"]})
    s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=upload["UploadId"], MultipartUpload={"Parts": done}
    )
    second = s3.get_object(Bucket=bucket, Key="mp", PartNumber=2)
    assert second["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert second["PartsCount"] == 2
    assert second["ContentLength"] == 1024
    assert second["ContentRange"] == f"bytes {5 * MIB}-{5 * MIB + 1023}/{5 * MIB + 1024}"
    assert second["Body"].read() == parts[1]
    head = s3.head_object(Bucket=bucket, Key="mp", PartNumber=1)
    assert head["ContentLength"] == 5 * MIB
    assert head["PartsCount"] == 2
    with pytest.raises(ClientError) as info:
        s3.head_object(Bucket=bucket, Key="mp", PartNumber=3)
    assert _error(info)[1] == 416


def test_part_number_one_on_simple_object_is_whole_object(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"whole")
    got = s3.get_object(Bucket=bucket, Key="k", PartNumber=1)
    assert got["Body"].read() == b"whole"
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket=bucket, Key="k", PartNumber=2)
    assert _error(info) == ("InvalidPartNumber", 416)


def test_metadata_and_standard_headers_round_trip(s3: Any, bucket: str) -> None:
    expires = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    s3.put_object(
        Bucket=bucket,
        Key="k",
        Body=b"<p>hi</p>",
        Metadata={"color": "blue", "Mixed-Case": "Value With Spaces"},
        ContentType="text/html; charset=utf-8",
        ContentEncoding="identity",
        ContentDisposition='inline; filename="a.html"',
        ContentLanguage="en-GB",
        CacheControl="max-age=60",
        Expires=expires,
    )
    for response in (
        s3.head_object(Bucket=bucket, Key="k"),
        s3.get_object(Bucket=bucket, Key="k"),
    ):
        assert response["Metadata"] == {"color": "blue", "mixed-case": "Value With Spaces"}
        assert response["ContentType"] == "text/html; charset=utf-8"
        assert response["ContentEncoding"] == "identity"
        assert response["ContentDisposition"] == 'inline; filename="a.html"'
        assert response["ContentLanguage"] == "en-GB"
        assert response["CacheControl"] == "max-age=60"
        headers = response["ResponseMetadata"]["HTTPHeaders"]
        assert headers["expires"] == "Tue, 06 May 2031 07:08:09 GMT"


def test_conditional_get(s3: Any, bucket: str) -> None:
    put = s3.put_object(Bucket=bucket, Key="k", Body=b"conditional")
    etag = put["ETag"]
    modified = s3.head_object(Bucket=bucket, Key="k")["LastModified"]
    assert s3.get_object(Bucket=bucket, Key="k", IfMatch=etag)["Body"].read() == b"conditional"
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket=bucket, Key="k", IfMatch='"0123456789abcdef0123456789abcdef"')
    assert _error(info) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket=bucket, Key="k", IfNoneMatch=etag)
    assert _error(info) == ("304", 304)
    assert s3.get_object(Bucket=bucket, Key="k", IfNoneMatch='"other"')["Body"].read()
    later = modified + timedelta(hours=1)
    earlier = modified - timedelta(hours=1)
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket=bucket, Key="k", IfModifiedSince=later)
    assert _error(info) == ("304", 304)
    assert s3.get_object(Bucket=bucket, Key="k", IfModifiedSince=earlier)["Body"].read()
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket=bucket, Key="k", IfUnmodifiedSince=earlier)
    assert _error(info) == ("PreconditionFailed", 412)
    assert s3.get_object(Bucket=bucket, Key="k", IfUnmodifiedSince=later)["Body"].read()
    # Last-Modified itself is the boundary: not modified since, and not modified after.
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket=bucket, Key="k", IfModifiedSince=modified)
    assert _error(info) == ("304", 304)
    assert s3.get_object(Bucket=bucket, Key="k", IfUnmodifiedSince=modified)["Body"].read()
    # If-Match true and If-Unmodified-Since false: the object is returned (RFC 7232 order).
    got = s3.get_object(Bucket=bucket, Key="k", IfMatch=etag, IfUnmodifiedSince=earlier)
    assert got["Body"].read() == b"conditional"
    # If-None-Match false and If-Modified-Since true: 304.
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket=bucket, Key="k", IfNoneMatch=etag, IfModifiedSince=earlier)
    assert _error(info) == ("304", 304)


def test_conditional_head(s3: Any, bucket: str) -> None:
    etag = s3.put_object(Bucket=bucket, Key="k", Body=b"x")["ETag"]
    with pytest.raises(ClientError) as info:
        s3.head_object(Bucket=bucket, Key="k", IfMatch='"nope"')
    assert _error(info) == ("412", 412)
    with pytest.raises(ClientError) as info:
        s3.head_object(Bucket=bucket, Key="k", IfNoneMatch=etag)
    assert _error(info) == ("304", 304)


def test_conditional_put_if_none_match(s3: Any, bucket: str) -> None:
    first = s3.put_object(Bucket=bucket, Key="k", Body=b"first", IfNoneMatch="*")
    assert first["ResponseMetadata"]["HTTPStatusCode"] == 200
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket=bucket, Key="k", Body=b"second", IfNoneMatch="*")
    assert _error(info) == ("PreconditionFailed", 412)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"first"
    s3.delete_object(Bucket=bucket, Key="k")
    s3.put_object(Bucket=bucket, Key="k", Body=b"third", IfNoneMatch="*")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"third"


def test_delete_objects(s3: Any, bucket: str) -> None:
    for key in ("a", "b", "c", "d"):
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    result = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "a"}, {"Key": "b"}, {"Key": "missing"}]}
    )
    assert sorted(d["Key"] for d in result["Deleted"]) == ["a", "b", "missing"]
    assert result.get("Errors", []) == []
    quiet = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "c"}], "Quiet": True})
    assert quiet.get("Deleted", []) == []
    assert quiet.get("Errors", []) == []
    remaining = s3.list_objects_v2(Bucket=bucket)
    assert [o["Key"] for o in remaining["Contents"]] == ["d"]


@pytest.mark.parametrize(
    "key",
    [
        "unicode/é😀漢字",
        "with space/and  two",
        "plus+sign",
        "percent%20literal%",
        "question?mark",
        "hash#tag",
        "//double//slash",
        "trailing/",
        "semi;colon,comma=equals&amp@at",
        "tilde~star*paren(1)'quote'",
    ],
)
def test_special_keys(s3: Any, bucket: str, key: str) -> None:
    body = key.encode()
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == len(body)
    listed = s3.list_objects_v2(Bucket=bucket)
    assert [o["Key"] for o in listed["Contents"]] == [key]
    s3.delete_object(Bucket=bucket, Key=key)
    assert s3.list_objects_v2(Bucket=bucket).get("Contents", []) == []


def test_checksum_crc32_default(s3: Any, bucket: str) -> None:
    body = os.urandom(5000)
    put = s3.put_object(Bucket=bucket, Key="k", Body=body)
    assert put["ChecksumCRC32"] == _crc32(body)
    head = s3.head_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == _crc32(body)
    assert head["ChecksumType"] == "FULL_OBJECT"
    got = s3.get_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert got["ChecksumCRC32"] == _crc32(body)
    assert got["Body"].read() == body
    plain = s3.head_object(Bucket=bucket, Key="k")
    assert "ChecksumCRC32" not in plain


def test_checksum_sha256(s3: Any, bucket: str) -> None:
    body = os.urandom(5000)
    expected = base64.b64encode(hashlib.sha256(body).digest()).decode()
    put = s3.put_object(Bucket=bucket, Key="k", Body=body, ChecksumAlgorithm="SHA256")
    assert put["ChecksumSHA256"] == expected
    got = s3.get_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert got["ChecksumSHA256"] == expected
    assert got["Body"].read() == body


def _no_retry(gateway: GatewayProcess) -> Any:
    # botocore retries BadDigest as a transient error; one attempt keeps the test quick.
    return client_for(gateway, retries={"total_max_attempts": 1})


def test_wrong_checksum_is_rejected(gateway: GatewayProcess, bucket: str) -> None:
    s3 = _no_retry(gateway)
    wrong = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket=bucket, Key="k", Body=b"body", ChecksumSHA256=wrong)
    assert _error(info) == ("BadDigest", 400)
    assert s3.list_objects_v2(Bucket=bucket).get("Contents", []) == []


def test_wrong_content_md5_is_rejected(gateway: GatewayProcess, bucket: str) -> None:
    s3 = _no_retry(gateway)
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket=bucket, Key="k", Body=b"body", ContentMD5=wrong)
    assert _error(info) == ("BadDigest", 400)


def test_get_missing_bucket(s3: Any) -> None:
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket="sb-no-such-bucket-xyz", Key="k")
    assert _error(info) == ("NoSuchBucket", 404)


def test_limits(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket=bucket, Key="k" * 1025, Body=b"x")
    assert _error(info) == ("KeyTooLongError", 400)
    s3.put_object(Bucket=bucket, Key="k" * 1024, Body=b"x")
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket=bucket, Key="m", Body=b"x", Metadata={"big": "v" * 2100})
    assert _error(info) == ("MetadataTooLarge", 400)
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket=bucket, Key="s", Body=b"x", StorageClass="NO_SUCH_CLASS")
    assert _error(info) == ("InvalidStorageClass", 400)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["k" * 1024]


def test_storage_class_round_trip(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="ia", Body=b"x", StorageClass="STANDARD_IA")
    s3.put_object(Bucket=bucket, Key="std", Body=b"x")
    assert s3.head_object(Bucket=bucket, Key="ia")["StorageClass"] == "STANDARD_IA"
    # S3 omits the header for STANDARD.
    assert "StorageClass" not in s3.head_object(Bucket=bucket, Key="std")
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert [(o["Key"], o["StorageClass"]) for o in listed] == [
        ("ia", "STANDARD_IA"),
        ("std", "STANDARD"),
    ]


def test_correct_content_md5_is_accepted(s3: Any, bucket: str) -> None:
    body = b"verified body"
    digest = base64.b64encode(hashlib.md5(body).digest()).decode()
    s3.put_object(Bucket=bucket, Key="k", Body=body, ContentMD5=digest)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == body
