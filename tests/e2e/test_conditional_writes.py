"""Conditional writes with If-Match (PutObject and CompleteMultipartUpload), as AWS has
them: the write commits only if the current object's ETag matches; 412 otherwise, and 404
when there is no current object. A refused write changes nothing."""

from __future__ import annotations

import os
from typing import Any

import pytest
from botocore.exceptions import ClientError

PART = 5 * 1024 * 1024


def _error(call: Any) -> tuple[int, str]:
    with pytest.raises(ClientError) as refused:
        call()
    response = refused.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


def test_put_if_match(s3: Any, bucket: str) -> None:
    first = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["ETag"]
    second = s3.put_object(Bucket=bucket, Key="k", Body=b"two", IfMatch=first)["ETag"]
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"two"
    # The ETag it matched is gone now: a stale writer is refused and changes nothing.
    assert _error(lambda: s3.put_object(Bucket=bucket, Key="k", Body=b"x", IfMatch=first)) == (
        412, "PreconditionFailed",
    )  # fmt: skip
    assert s3.head_object(Bucket=bucket, Key="k")["ETag"] == second
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"two"
    # No current object: 404.
    assert _error(lambda: s3.put_object(Bucket=bucket, Key="new", Body=b"x", IfMatch=first)) == (
        404, "NoSuchKey",
    )  # fmt: skip
    assert _error(lambda: s3.head_object(Bucket=bucket, Key="new"))[0] == 404


def test_complete_multipart_if_match(s3: Any, bucket: str) -> None:
    current = s3.put_object(Bucket=bucket, Key="mp", Body=b"before")["ETag"]
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    body = os.urandom(PART + 10)
    parts = [
        {"PartNumber": n + 1, "ETag": s3.upload_part(
            Bucket=bucket, Key="mp", UploadId=upload, PartNumber=n + 1, Body=chunk
        )["ETag"]}
        for n, chunk in enumerate([body[:PART], body[PART:]])
    ]  # fmt: skip

    def complete(if_match: str) -> Any:
        return s3.complete_multipart_upload(
            Bucket=bucket, Key="mp", UploadId=upload, MultipartUpload={"Parts": parts},
            IfMatch=if_match,
        )  # fmt: skip

    assert _error(lambda: complete('"0123456789abcdef0123456789abcdef"')) == (
        412, "PreconditionFailed",
    )  # fmt: skip
    # Refused whole: the old object stays, and the upload is still open.
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"before"
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]] == [upload]
    complete(current)
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == body
