"""Hostile and broken requests: each is refused with the right S3 error and changes nothing.

After every refusal the bucket lists exactly what it listed before (objects, uploads and
their parts) and the backend holds no new object; on localfs the temp directory is empty.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import socket
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests import rawclient
from tests.conftest import client_for, files_under
from tests.gateway_process import GatewayProcess
from tests.servers import random_name

CLEANUP_DEADLINE_S = 10.0
XML_CAP_BYTES = 2 * 1024 * 1024  # gateway.s3.xml.MAX_XML_BODY_BYTES

# Stored state


def snapshot(s3: Any, bucket: str) -> dict[str, tuple[str, int]]:
    """Every object as {key: (etag, size)}, every open upload as its parts' etags and size."""
    state: dict[str, tuple[str, int]] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            state[item["Key"]] = (item["ETag"], item["Size"])
    for upload in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        key, upload_id = upload["Key"], upload["UploadId"]
        parts = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id).get("Parts", [])
        etags = ",".join(f"{p['PartNumber']}:{p['ETag']}" for p in parts)
        state[f"upload:{key}:{upload_id}"] = (etags, sum(p["Size"] for p in parts))
    return state


def _backend(gateway: GatewayProcess) -> dict[str, Any]:
    backend: dict[str, Any] = gateway.config["backends"][0]
    return backend


def backend_keys(gateway: GatewayProcess) -> set[str]:
    """What the backend itself stores: files under the localfs root, or keys in the bucket."""
    backend = _backend(gateway)
    if backend["driver"] == "localfs":
        root = Path(backend["path"])
        return {
            str(path.relative_to(root))
            for path in files_under(root)
            if path.relative_to(root).parts[0] != ".tmp"
        }
    client = boto3.client(
        "s3",
        endpoint_url=backend["endpoint"],
        aws_access_key_id=backend["access_key"],
        aws_secret_access_key=backend["secret_key"],
        region_name="us-east-1",
    )
    keys: set[str] = set()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=backend["bucket"]):
        keys.update(item["Key"] for item in page.get("Contents", []))
    return keys


def _temp_files(gateway: GatewayProcess) -> list[Path]:
    backend = _backend(gateway)
    if backend["driver"] != "localfs":
        return []
    return files_under(Path(backend["path"]) / ".tmp")


def _settled(gateway: GatewayProcess, stored: set[str]) -> tuple[set[str], list[Path]]:
    """Poll until no new backend object and no temp file remain (cleanup may trail)."""
    deadline = time.monotonic() + CLEANUP_DEADLINE_S
    while True:
        new, temps = backend_keys(gateway) - stored, _temp_files(gateway)
        if (not new and not temps) or time.monotonic() > deadline:
            return new, temps
        time.sleep(0.05)


@contextlib.contextmanager
def unchanged(gateway: GatewayProcess, s3: Any, bucket: str) -> Iterator[None]:
    """The block must leave the bucket and the backend as they were."""
    before = snapshot(s3, bucket)
    stored = backend_keys(gateway)
    yield
    assert snapshot(s3, bucket) == before
    # The gc worker may reap older garbage meanwhile, so "nothing new" rather than "equal".
    assert _settled(gateway, stored) == (set(), [])


def error_of(call: Any, **kwargs: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    response = info.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def _md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


# Fixtures


# botocore retries BadDigest (and 5xx) by default; one attempt keeps every refusal visible.
NO_RETRIES = {"total_max_attempts": 1}


@pytest.fixture
def local_s3(local_gateway: GatewayProcess) -> Any:
    return client_for(local_gateway, retries=NO_RETRIES)


@pytest.fixture
def s3_once(gateway: GatewayProcess) -> Any:
    return client_for(gateway, retries=NO_RETRIES)


@pytest.fixture
def local_bucket(local_s3: Any) -> str:
    name = random_name()
    local_s3.create_bucket(Bucket=name)
    local_s3.put_object(Bucket=name, Key="existing", Body=b"old content")
    return name


@pytest.fixture
def creds(local_gateway: GatewayProcess) -> rawclient.Credentials:
    gw = local_gateway
    return rawclient.Credentials(gw.endpoint, gw.access_key, gw.secret_key)


@pytest.fixture
def upload_id(local_s3: Any, local_bucket: str) -> str:
    upload: str = local_s3.create_multipart_upload(Bucket=local_bucket, Key="mpu")["UploadId"]
    local_s3.upload_part(
        Bucket=local_bucket, Key="mpu", UploadId=upload, PartNumber=1, Body=b"part one"
    )
    return upload


# Malformed XML


def _xml_request(
    creds: rawclient.Credentials, path: str, query: str, body: bytes, method: str = "PUT"
) -> rawclient.Response:
    headers = {"content-md5": _md5_b64(body)}
    return rawclient.request(creds, method, path, body, query=query, headers=headers)


@pytest.mark.parametrize(
    ("name", "method", "query", "body"),
    [
        ("complete", "POST", "uploadId={upload}", b"<not-xml"),
        ("complete-wrong-root", "POST", "uploadId={upload}", b"<Complete><Part/></Complete>"),
        ("delete-objects", "POST", "delete=", b"\x00\xffgarbage"),
        ("delete-objects-no-objects", "POST", "delete=", b"<Delete><Nope/></Delete>"),
        ("versioning", "PUT", "versioning=", b"garbage"),
        ("tagging-wrong-root", "PUT", "tagging=", b"<Tags><TagSet/></Tags>"),
        ("cors", "PUT", "cors=", b"<CORSConfiguration><Bad"),
    ],
)
def test_malformed_xml(
    local_gateway: GatewayProcess,
    local_s3: Any,
    local_bucket: str,
    creds: rawclient.Credentials,
    upload_id: str,
    name: str,
    method: str,
    query: str,
    body: bytes,
) -> None:
    key = "mpu" if name.startswith("complete") else None
    with unchanged(local_gateway, local_s3, local_bucket):
        answer = _xml_request(
            creds,
            rawclient.object_path(local_bucket, key),
            query.format(upload=upload_id),
            body,
            method,
        )
        assert (answer.status, answer.error_code()) == (400, "MalformedXML"), answer.body
    assert "TagSet" not in str(_bucket_tags(local_s3, local_bucket))
    assert local_s3.get_bucket_versioning(Bucket=local_bucket).get("Status") is None


def _bucket_tags(s3: Any, bucket: str) -> list[Any]:
    try:
        tags: list[Any] = s3.get_bucket_tagging(Bucket=bucket)["TagSet"]
    except ClientError as error:
        if error.response["Error"]["Code"] != "NoSuchTagSet":
            raise
        return []
    return tags


def test_oversized_xml_is_refused_unread(
    creds: rawclient.Credentials, local_bucket: str, upload_id: str
) -> None:
    # Only the headers go out: the refusal must come without the body being read.
    signed = rawclient.sign(
        creds,
        "POST",
        rawclient.object_path(local_bucket, "mpu"),
        query=f"uploadId={upload_id}",
        payload_hash=rawclient.UNSIGNED_PAYLOAD,
    )
    extra = {"Content-Length": str(8 * XML_CAP_BYTES)}
    with rawclient.connect(creds) as sock:
        sock.sendall(rawclient.head_bytes(signed, extra))
        sock.sendall(b"<CompleteMultipartUpload>" + b" " * 1000)
        answer = rawclient.RawReader(sock).read_response()
    assert answer is not None
    assert answer.status == 400
    assert answer.error_code() in ("MaxMessageLengthExceeded", "MalformedXML")


# Digests


def test_wrong_content_md5_is_bad_digest(
    gateway: GatewayProcess, s3_once: Any, bucket: str
) -> None:
    s3_once.put_object(Bucket=bucket, Key="existing", Body=b"old content")
    with unchanged(gateway, s3_once, bucket):
        md5 = _md5_b64(b"something else")
        code = error_of(s3_once.put_object, Bucket=bucket, Key="k", Body=b"payload", ContentMD5=md5)
        assert code == ("BadDigest", 400)
        code = error_of(
            s3_once.put_object, Bucket=bucket, Key="existing", Body=b"new", ContentMD5=md5
        )
        assert code == ("BadDigest", 400)
    assert s3_once.get_object(Bucket=bucket, Key="existing")["Body"].read() == b"old content"


def test_wrong_content_md5_on_a_part(gateway: GatewayProcess, s3_once: Any, bucket: str) -> None:
    upload = s3_once.create_multipart_upload(Bucket=bucket, Key="mpu")["UploadId"]
    with unchanged(gateway, s3_once, bucket):
        code = error_of(
            s3_once.upload_part,
            Bucket=bucket,
            Key="mpu",
            UploadId=upload,
            PartNumber=1,
            Body=b"part",
            ContentMD5=_md5_b64(b"other"),
        )
        assert code == ("BadDigest", 400)
    s3_once.abort_multipart_upload(Bucket=bucket, Key="mpu", UploadId=upload)


@pytest.mark.parametrize(
    "value", ["not base64!!", base64.b64encode(b"0123456789").decode(), ""], ids=str
)
def test_invalid_content_md5(
    local_gateway: GatewayProcess, local_s3: Any, local_bucket: str, value: str
) -> None:
    with unchanged(local_gateway, local_s3, local_bucket):
        code = error_of(
            local_s3.put_object, Bucket=local_bucket, Key="k", Body=b"payload", ContentMD5=value
        )
        assert code == ("InvalidDigest", 400)


@pytest.mark.parametrize(
    "checksum",
    [
        {"ChecksumCRC32": "AAAAAA=="},
        {"ChecksumSHA256": base64.b64encode(bytes(32)).decode()},
        {"ChecksumCRC32C": "AAAAAA=="},
    ],
    ids=lambda c: next(iter(c)),
)
def test_wrong_checksum_header_is_bad_digest(
    local_gateway: GatewayProcess, local_s3: Any, local_bucket: str, checksum: dict[str, str]
) -> None:
    with unchanged(local_gateway, local_s3, local_bucket):
        code = error_of(
            local_s3.put_object, Bucket=local_bucket, Key="existing", Body=b"new", **checksum
        )
        assert code == ("BadDigest", 400)
    assert local_s3.get_object(Bucket=local_bucket, Key="existing")["Body"].read() == b"old content"


def test_wrong_content_sha256(
    local_gateway: GatewayProcess,
    local_s3: Any,
    local_bucket: str,
    creds: rawclient.Credentials,
) -> None:
    body = b"the real payload"
    with unchanged(local_gateway, local_s3, local_bucket):
        signed = rawclient.sign(
            creds,
            "PUT",
            rawclient.object_path(local_bucket, "existing"),
            payload_hash=hashlib.sha256(b"a different payload").hexdigest(),
        )
        answer = rawclient.send(creds, signed, body)
        assert (answer.status, answer.error_code()) == (400, "XAmzContentSHA256Mismatch")
    assert local_s3.get_object(Bucket=local_bucket, Key="existing")["Body"].read() == b"old content"


# Short bodies


def _send_raw_put(
    gateway: GatewayProcess, bucket: str, key: str, body: bytes, *, declared: int
) -> rawclient.Response | None:
    """PUT ``body`` under a Content-Length of ``declared``; a short body ends in a half-close."""
    creds = rawclient.Credentials(gateway.endpoint, gateway.access_key, gateway.secret_key)
    signed = rawclient.sign(
        creds,
        "PUT",
        rawclient.object_path(bucket, key),
        payload_hash=rawclient.UNSIGNED_PAYLOAD,
    )
    with rawclient.connect(creds) as sock:
        sock.sendall(rawclient.head_bytes(signed, {"Content-Length": str(declared)}))
        sock.sendall(body)
        if len(body) < declared:
            sock.shutdown(socket.SHUT_WR)
        try:
            return rawclient.RawReader(sock).read_response()
        except ConnectionResetError:
            return None


@pytest.mark.parametrize("key", ["new-key", "existing"])
def test_short_body_stores_nothing(
    gateway: GatewayProcess, s3_once: Any, bucket: str, key: str
) -> None:
    s3_once.put_object(Bucket=bucket, Key="existing", Body=b"old content")
    with unchanged(gateway, s3_once, bucket):
        answer = _send_raw_put(gateway, bucket, key, os.urandom(500), declared=1000)
        # The half-closed connection usually gets no answer at all; if one comes, it is this.
        if answer is not None:
            assert (answer.status, answer.error_code()) == (400, "IncompleteBody")
    assert s3_once.get_object(Bucket=bucket, Key="existing")["Body"].read() == b"old content"
    # Control: the same request with the whole body is accepted.
    full = os.urandom(1000)
    answer = _send_raw_put(gateway, bucket, key, full, declared=1000)
    assert answer is not None
    assert answer.status == 200
    assert s3_once.get_object(Bucket=bucket, Key=key)["Body"].read() == full


# Ranges, keys, names, part numbers


def test_invalid_range(local_s3: Any, local_bucket: str) -> None:
    code = error_of(local_s3.get_object, Bucket=local_bucket, Key="existing", Range="bytes=100-")
    assert code == ("InvalidRange", 416)


def test_key_too_long(local_gateway: GatewayProcess, local_s3: Any, local_bucket: str) -> None:
    with unchanged(local_gateway, local_s3, local_bucket):
        code = error_of(local_s3.put_object, Bucket=local_bucket, Key="k" * 1025, Body=b"x")
        assert code == ("KeyTooLongError", 400)
        code = error_of(
            local_s3.create_multipart_upload, Bucket=local_bucket, Key="é" * 513
        )  # 1026 bytes of UTF-8
        assert code == ("KeyTooLongError", 400)
    local_s3.put_object(Bucket=local_bucket, Key="k" * 1024, Body=b"x")
    local_s3.delete_object(Bucket=local_bucket, Key="k" * 1024)


@pytest.mark.parametrize(
    "name", ["ab", "a" * 64, "UpperCase", "under_score", "-dash-first", "a..b", "192.168.1.1"]
)
def test_invalid_bucket_name(local_s3: Any, name: str) -> None:
    assert error_of(local_s3.create_bucket, Bucket=name) == ("InvalidBucketName", 400)


@pytest.mark.parametrize("number", [0, 10001])
def test_invalid_part_number(
    local_gateway: GatewayProcess, local_s3: Any, local_bucket: str, upload_id: str, number: int
) -> None:
    with unchanged(local_gateway, local_s3, local_bucket):
        code = error_of(
            local_s3.upload_part,
            Bucket=local_bucket,
            Key="mpu",
            UploadId=upload_id,
            PartNumber=number,
            Body=b"x",
        )
        assert code == ("InvalidArgument", 400)


def test_complete_with_wrong_etag_keeps_upload_open(
    local_gateway: GatewayProcess, local_s3: Any, local_bucket: str
) -> None:
    part_one, part_two = os.urandom(5 * 1024 * 1024), b"tail"
    upload = local_s3.create_multipart_upload(Bucket=local_bucket, Key="mpu")["UploadId"]
    etags = [
        local_s3.upload_part(
            Bucket=local_bucket, Key="mpu", UploadId=upload, PartNumber=n, Body=body
        )["ETag"]
        for n, body in ((1, part_one), (2, part_two))
    ]
    wrong = [{"PartNumber": 1, "ETag": etags[0]}, {"PartNumber": 2, "ETag": '"' + "0" * 32 + '"'}]
    with unchanged(local_gateway, local_s3, local_bucket):
        code = error_of(
            local_s3.complete_multipart_upload,
            Bucket=local_bucket,
            Key="mpu",
            UploadId=upload,
            MultipartUpload={"Parts": wrong},
        )
        assert code == ("InvalidPart", 400)
    right = [{"PartNumber": n, "ETag": etag} for n, etag in enumerate(etags, start=1)]
    local_s3.complete_multipart_upload(
        Bucket=local_bucket, Key="mpu", UploadId=upload, MultipartUpload={"Parts": right}
    )
    assert local_s3.get_object(Bucket=local_bucket, Key="mpu")["Body"].read() == part_one + part_two


# Unknown sub-resources and the shape of errors


def test_unimplemented_subresource(local_s3: Any, local_bucket: str) -> None:
    code = error_of(local_s3.get_bucket_website, Bucket=local_bucket)
    assert code == ("NotImplemented", 501)
    code = error_of(local_s3.get_object_retention, Bucket=local_bucket, Key="existing")
    assert code == ("NotImplemented", 501)
    # Explicit grants are not supported; canned ACLs are.
    code = error_of(local_s3.put_bucket_acl, Bucket=local_bucket, GrantRead="id=someone")
    assert code == ("NotImplemented", 501)


def test_error_response_shape(creds: rawclient.Credentials, local_bucket: str) -> None:
    path = rawclient.object_path(local_bucket, "missing")
    answer = rawclient.request(creds, "GET", path)
    assert answer.status == 404
    request_id = answer.headers["x-amz-request-id"]
    assert request_id
    assert answer.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(answer.body)
    assert root.tag == "Error"
    assert root.findtext("Code") == "NoSuchKey"
    assert root.findtext("Message")
    assert root.findtext("RequestId") == request_id


def test_head_error_has_no_body(creds: rawclient.Credentials, local_bucket: str) -> None:
    for path in (rawclient.object_path(local_bucket, "missing"), "/no-such-bucket-here"):
        answer = rawclient.request(creds, "HEAD", path)
        assert answer.status == 404
        assert answer.headers["x-amz-request-id"]
        assert answer.body == b""
