"""Multipart uploads through boto3 and s3transfer, against every backend kind."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import zlib
from typing import Any

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

MIB = 1024 * 1024
PART_SIZES = (5 * MIB, 5 * MIB, 1024)


def _error(info: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = info.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def _crc32(data: bytes) -> bytes:
    return zlib.crc32(data).to_bytes(4, "big")


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def _multipart_etag(parts: list[bytes]) -> str:
    md5s = b"".join(hashlib.md5(p).digest() for p in parts)
    return f'"{hashlib.md5(md5s).hexdigest()}-{len(parts)}"'


def _upload_parts(
    s3: Any, bucket: str, key: str, upload_id: str, parts: list[bytes], **extra: Any
) -> list[dict[str, Any]]:
    done = []
    for number, data in enumerate(parts, start=1):
        response = s3.upload_part(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data, **extra
        )
        assert response["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
        entry = {"PartNumber": number, "ETag": response["ETag"]}
        if "ChecksumCRC32" in response:
            entry["ChecksumCRC32"] = response["ChecksumCRC32"]
        done.append(entry)
    return done


@pytest.fixture(scope="module")
def parts() -> list[bytes]:
    return [os.urandom(size) for size in PART_SIZES]


def test_upload_complete_and_etag(s3: Any, bucket: str, parts: list[bytes]) -> None:
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp", ContentType="text/x-test")
    assert upload["Bucket"] == bucket
    assert upload["Key"] == "mp"
    done = _upload_parts(s3, bucket, "mp", upload["UploadId"], parts)
    result = s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=upload["UploadId"], MultipartUpload={"Parts": done}
    )
    assert result["ETag"] == _multipart_etag(parts)
    assert result["ETag"].endswith('-3"')
    assert result["Key"] == "mp"
    got = s3.get_object(Bucket=bucket, Key="mp")
    assert got["ContentLength"] == sum(PART_SIZES)
    assert got["ContentType"] == "text/x-test"
    assert got["ETag"] == result["ETag"]
    assert got["Body"].read() == b"".join(parts)
    # A range that spans the part boundary.
    boundary = 5 * MIB
    ranged = s3.get_object(Bucket=bucket, Key="mp", Range=f"bytes={boundary - 10}-{boundary + 9}")
    assert ranged["Body"].read() == (parts[0] + parts[1])[boundary - 10 : boundary + 10]
    with pytest.raises(ClientError) as info:
        s3.list_parts(Bucket=bucket, Key="mp", UploadId=upload["UploadId"])
    assert _error(info) == ("NoSuchUpload", 404)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_list_parts_and_uploads(s3: Any, bucket: str, parts: list[bytes]) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    other_id = s3.create_multipart_upload(Bucket=bucket, Key="other")["UploadId"]
    done = _upload_parts(s3, bucket, "mp", upload_id, [parts[2], parts[2], parts[2]])
    listed = s3.list_parts(Bucket=bucket, Key="mp", UploadId=upload_id)
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed["Parts"]] == [
        (d["PartNumber"], d["ETag"], 1024) for d in done
    ]
    assert listed["IsTruncated"] is False
    assert listed["UploadId"] == upload_id
    seen = []
    marker = 0
    while True:
        page = s3.list_parts(
            Bucket=bucket, Key="mp", UploadId=upload_id, MaxParts=1, PartNumberMarker=marker
        )
        seen += [p["PartNumber"] for p in page["Parts"]]
        if not page["IsTruncated"]:
            break
        marker = page["NextPartNumberMarker"]
    assert seen == [1, 2, 3]
    paged = s3.get_paginator("list_parts").paginate(
        Bucket=bucket, Key="mp", UploadId=upload_id, PaginationConfig={"PageSize": 2}
    )
    assert [p["PartNumber"] for page in paged for p in page.get("Parts", [])] == [1, 2, 3]
    uploads = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert sorted((u["Key"], u["UploadId"]) for u in uploads) == [
        ("mp", upload_id),
        ("other", other_id),
    ]
    assert [u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket, Prefix="ot")["Uploads"]] == [
        "other"
    ]
    first = s3.list_multipart_uploads(Bucket=bucket, MaxUploads=1)
    assert first["IsTruncated"] is True
    assert len(first["Uploads"]) == 1
    rest = s3.list_multipart_uploads(
        Bucket=bucket,
        KeyMarker=first["NextKeyMarker"],
        UploadIdMarker=first["NextUploadIdMarker"],
    )
    assert [u["Key"] for u in first["Uploads"] + rest["Uploads"]] == ["mp", "other"]


def test_abort(s3: Any, bucket: str) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=1, Body=b"x")
    aborted = s3.abort_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload_id)
    assert aborted["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as info:
        s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=2, Body=b"y")
    assert _error(info) == ("NoSuchUpload", 404)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_bogus_upload_id(s3: Any, bucket: str) -> None:
    bogus = "0123456789abcdef0123456789abcdef"
    with pytest.raises(ClientError) as info:
        s3.upload_part(Bucket=bucket, Key="mp", UploadId=bogus, PartNumber=1, Body=b"x")
    assert _error(info) == ("NoSuchUpload", 404)
    with pytest.raises(ClientError) as info:
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="mp",
            UploadId=bogus,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"x"'}]},
        )
    assert _error(info) == ("NoSuchUpload", 404)
    with pytest.raises(ClientError) as info:
        s3.abort_multipart_upload(Bucket=bucket, Key="mp", UploadId=bogus)
    assert _error(info) == ("NoSuchUpload", 404)
    # The upload id belongs to another key.
    real = s3.create_multipart_upload(Bucket=bucket, Key="a")["UploadId"]
    with pytest.raises(ClientError) as info:
        s3.upload_part(Bucket=bucket, Key="b", UploadId=real, PartNumber=1, Body=b"x")
    assert _error(info) == ("NoSuchUpload", 404)


def test_reupload_part_replaces_it(s3: Any, bucket: str, parts: list[bytes]) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=1, Body=b"old" * 9)
    done = _upload_parts(s3, bucket, "mp", upload_id, [parts[0], parts[2]])
    listed = s3.list_parts(Bucket=bucket, Key="mp", UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in listed] == [(1, 5 * MIB), (2, 1024)]
    s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=upload_id, MultipartUpload={"Parts": done}
    )
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == parts[0] + parts[2]


def test_entity_too_small(s3: Any, bucket: str) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    done = _upload_parts(s3, bucket, "mp", upload_id, [b"a" * 1024, b"b" * 1024])
    with pytest.raises(ClientError) as info:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="mp", UploadId=upload_id, MultipartUpload={"Parts": done}
        )
    assert _error(info) == ("EntityTooSmall", 400)
    # A single small part is also the last one, so it is allowed.
    s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=upload_id, MultipartUpload={"Parts": done[:1]}
    )
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"a" * 1024


def test_invalid_part_order_and_invalid_part(s3: Any, bucket: str) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    done = _upload_parts(s3, bucket, "mp", upload_id, [b"a", b"b"])
    with pytest.raises(ClientError) as info:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="mp", UploadId=upload_id, MultipartUpload={"Parts": done[::-1]}
        )
    assert _error(info) == ("InvalidPartOrder", 400)
    wrong = [{"PartNumber": 1, "ETag": '"0123456789abcdef0123456789abcdef"'}]
    with pytest.raises(ClientError) as info:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="mp", UploadId=upload_id, MultipartUpload={"Parts": wrong}
        )
    assert _error(info) == ("InvalidPart", 400)
    missing = [{"PartNumber": 7, "ETag": done[0]["ETag"]}]
    with pytest.raises(ClientError) as info:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="mp", UploadId=upload_id, MultipartUpload={"Parts": missing}
        )
    assert _error(info) == ("InvalidPart", 400)
    # The failed completions left the upload open.
    assert len(s3.list_parts(Bucket=bucket, Key="mp", UploadId=upload_id)["Parts"]) == 2


def test_invalid_part_number(s3: Any, bucket: str) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    for number in (0, 10001):
        with pytest.raises(ClientError) as info:
            s3.upload_part(
                Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=number, Body=b"x"
            )
        assert _error(info) == ("InvalidArgument", 400)


def test_upload_part_copy(s3: Any, bucket: str, parts: list[bytes]) -> None:
    source = parts[0] + parts[2]
    s3.put_object(Bucket=bucket, Key="src", Body=source)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="dst")["UploadId"]
    first = s3.upload_part_copy(
        Bucket=bucket,
        Key="dst",
        UploadId=upload_id,
        PartNumber=1,
        CopySource={"Bucket": bucket, "Key": "src"},
        CopySourceRange=f"bytes=0-{5 * MIB - 1}",
    )
    second = s3.upload_part_copy(
        Bucket=bucket,
        Key="dst",
        UploadId=upload_id,
        PartNumber=2,
        CopySource={"Bucket": bucket, "Key": "src"},
        CopySourceRange=f"bytes={5 * MIB}-{5 * MIB + 99}",
    )
    etags = [first["CopyPartResult"]["ETag"], second["CopyPartResult"]["ETag"]]
    expected_parts = [source[: 5 * MIB], source[5 * MIB : 5 * MIB + 100]]
    assert etags == [f'"{hashlib.md5(p).hexdigest()}"' for p in expected_parts]
    done = [{"PartNumber": i + 1, "ETag": etag} for i, etag in enumerate(etags)]
    result = s3.complete_multipart_upload(
        Bucket=bucket, Key="dst", UploadId=upload_id, MultipartUpload={"Parts": done}
    )
    assert result["ETag"] == _multipart_etag(expected_parts)
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"".join(expected_parts)


def test_upload_part_copy_bad_range(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="src", Body=b"0123456789")
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="dst")["UploadId"]
    with pytest.raises(ClientError) as info:
        s3.upload_part_copy(
            Bucket=bucket,
            Key="dst",
            UploadId=upload_id,
            PartNumber=1,
            CopySource={"Bucket": bucket, "Key": "src"},
            CopySourceRange="bytes=5-100",
        )
    assert _error(info) == ("InvalidArgument", 400)


def test_upload_fileobj_composite_crc32(s3: Any, bucket: str, parts: list[bytes]) -> None:
    body = b"".join(parts)
    config = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
    s3.upload_fileobj(io.BytesIO(body), bucket, "big", Config=config)
    head = s3.head_object(Bucket=bucket, Key="big", ChecksumMode="ENABLED")
    assert head["ETag"] == _multipart_etag(parts)
    assert head["ChecksumType"] == "COMPOSITE"
    composite = _b64(_crc32(b"".join(_crc32(p) for p in parts)))
    assert head["ChecksumCRC32"] == f"{composite}-3"
    out = io.BytesIO()
    s3.download_fileobj(bucket, "big", out, Config=config)
    assert out.getvalue() == body


def test_full_object_crc32(s3: Any, bucket: str, parts: list[bytes]) -> None:
    upload = s3.create_multipart_upload(
        Bucket=bucket, Key="mp", ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT"
    )
    assert upload["ChecksumAlgorithm"] == "CRC32"
    assert upload["ChecksumType"] == "FULL_OBJECT"
    upload_id = upload["UploadId"]
    done = []
    for number, data in enumerate(parts, start=1):
        response = s3.upload_part(
            Bucket=bucket,
            Key="mp",
            UploadId=upload_id,
            PartNumber=number,
            Body=data,
            ChecksumCRC32=_b64(_crc32(data)),
        )
        assert response["ChecksumCRC32"] == _b64(_crc32(data))
        done.append({"PartNumber": number, "ETag": response["ETag"], **_crc_field(data)})
    listed = s3.list_parts(Bucket=bucket, Key="mp", UploadId=upload_id)
    assert [p["ChecksumCRC32"] for p in listed["Parts"]] == [_b64(_crc32(p)) for p in parts]
    body = b"".join(parts)
    result = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="mp",
        UploadId=upload_id,
        MultipartUpload={"Parts": done},
        ChecksumType="FULL_OBJECT",
    )
    assert result["ChecksumCRC32"] == _b64(_crc32(body))
    assert result["ChecksumType"] == "FULL_OBJECT"
    head = s3.head_object(Bucket=bucket, Key="mp", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == _b64(_crc32(body))
    assert head["ChecksumType"] == "FULL_OBJECT"


def _crc_field(data: bytes) -> dict[str, str]:
    return {"ChecksumCRC32": _b64(_crc32(data))}


def test_part_checksum_mismatch_with_upload_algorithm(s3: Any, bucket: str) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="mp", ChecksumAlgorithm="CRC32")[
        "UploadId"
    ]
    with pytest.raises(ClientError) as info:
        s3.upload_part(
            Bucket=bucket,
            Key="mp",
            UploadId=upload_id,
            PartNumber=1,
            Body=b"x",
            ChecksumAlgorithm="SHA256",
        )
    assert _error(info) == ("InvalidRequest", 400)


def test_default_part_checksums_combine(s3: Any, bucket: str, parts: list[bytes]) -> None:
    """No algorithm on create; boto3 still sends CRC32 with every part (its default)."""
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    done = _upload_parts(s3, bucket, "mp", upload_id, [parts[0], parts[2]])
    s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=upload_id, MultipartUpload={"Parts": done}
    )
    got = s3.get_object(Bucket=bucket, Key="mp", ChecksumMode="ENABLED")
    assert got["Body"].read() == parts[0] + parts[2]
