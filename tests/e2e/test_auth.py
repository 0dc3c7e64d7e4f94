"""Authentication at the edge: presigned URLs, bad credentials, clock skew, 100-continue."""

from __future__ import annotations

import contextlib
import importlib
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import boto3
import pytest
import requests
from botocore import UNSIGNED
from botocore.exceptions import ClientError

from tests import rawclient
from tests.conftest import client_for
from tests.gateway_process import GatewayProcess
from tests.servers import random_name

EXPIRY_POLL_DEADLINE_S = 10.0


@pytest.fixture
def local_s3(local_gateway: GatewayProcess) -> Any:
    # Explicit s3v4: boto3 presigns S3 URLs with SigV2 by default in us-east-1.
    return client_for(local_gateway, signature_version="s3v4")


@pytest.fixture
def local_bucket(local_s3: Any) -> str:
    name = random_name()
    local_s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def creds(local_gateway: GatewayProcess) -> rawclient.Credentials:
    gw = local_gateway
    return rawclient.Credentials(gw.endpoint, gw.access_key, gw.secret_key)


def _fetch(url: str, method: str = "GET", data: bytes | None = None) -> tuple[int, bytes]:
    """A plain HTTP request with no auth headers at all."""
    req = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as answer:
            return int(answer.status), bytes(answer.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


def _code(body: bytes) -> str:
    return rawclient.Response(0, "", {}, body).error_code() or ""


def _client_error(call: Any, **kwargs: Any) -> ClientError:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    return info.value


# Presigned URLs


def test_presigned_get_and_put_over_plain_http(local_s3: Any, local_bucket: str) -> None:
    body = os.urandom(50_000)
    put_url = local_s3.generate_presigned_url(
        "put_object", Params={"Bucket": local_bucket, "Key": "up/load"}, ExpiresIn=300
    )
    assert urlsplit(put_url).scheme == "http"
    assert _fetch(put_url, "PUT", body)[0] == 200
    assert local_s3.get_object(Bucket=local_bucket, Key="up/load")["Body"].read() == body
    get_url = local_s3.generate_presigned_url(
        "get_object", Params={"Bucket": local_bucket, "Key": "up/load"}, ExpiresIn=300
    )
    assert _fetch(get_url) == (200, body)


def test_default_boto3_presigned_urls_work(
    local_gateway: GatewayProcess, local_s3: Any, local_bucket: str
) -> None:
    """boto3 with default settings presigns S3 URLs with SigV2 for a custom endpoint."""
    default = client_for(local_gateway)
    put_url = default.generate_presigned_url(
        "put_object", Params={"Bucket": local_bucket, "Key": "v2/obj"}, ExpiresIn=300
    )
    assert "AWSAccessKeyId=" in put_url
    # requests sends no Content-Type for bytes; SigV2 signs the Content-Type (empty here).
    assert requests.put(put_url, data=b"via sigv2", timeout=10).status_code == 200
    get_url = default.generate_presigned_url(
        "get_object", Params={"Bucket": local_bucket, "Key": "v2/obj"}, ExpiresIn=300
    )
    assert _fetch(get_url) == (200, b"via sigv2")
    status, body = _fetch(get_url.replace("v2/obj", "v2/obx"))
    assert (status, _code(body)) == (403, "SignatureDoesNotMatch")
    expired = default.generate_presigned_url(
        "get_object", Params={"Bucket": local_bucket, "Key": "v2/obj"}, ExpiresIn=-10
    )
    status, body = _fetch(expired)
    assert (status, _code(body)) == (403, "AccessDenied")


def test_presigned_url_expires(local_s3: Any, local_bucket: str) -> None:
    local_s3.put_object(Bucket=local_bucket, Key="k", Body=b"v")
    url = local_s3.generate_presigned_url(
        "get_object", Params={"Bucket": local_bucket, "Key": "k"}, ExpiresIn=1
    )
    deadline = time.monotonic() + EXPIRY_POLL_DEADLINE_S
    status, body = _fetch(url)
    while status == 200 and time.monotonic() < deadline:
        time.sleep(0.2)
        status, body = _fetch(url)
    assert (status, _code(body)) == (403, "AccessDenied")


@contextlib.contextmanager
def _botocore_clock(moment: datetime) -> Iterator[None]:
    """Make botocore sign at ``moment`` (its python signer, and the CRT one when installed)."""

    def now(remove_tzinfo: bool = True) -> datetime:
        return moment.replace(tzinfo=None) if remove_tzinfo else moment

    with contextlib.ExitStack() as stack:
        for module in ("botocore.auth", "botocore.crt.auth"):
            try:
                importlib.import_module(module)
            except ImportError:
                continue
            stack.enter_context(mock.patch(f"{module}.get_current_datetime", now))
        yield


@pytest.mark.parametrize(("age_s", "expires_s", "status"), [(600, 3600, 200), (600, 60, 403)])
def test_presigned_url_signed_in_the_past(
    local_s3: Any, local_bucket: str, age_s: int, expires_s: int, status: int
) -> None:
    local_s3.put_object(Bucket=local_bucket, Key="k", Body=b"v")
    signed_at = datetime.now(UTC) - timedelta(seconds=age_s)
    with _botocore_clock(signed_at):
        url = local_s3.generate_presigned_url(
            "get_object", Params={"Bucket": local_bucket, "Key": "k"}, ExpiresIn=expires_s
        )
    assert f"X-Amz-Date={signed_at:%Y%m%dT%H%M%SZ}" in url
    answer, body = _fetch(url)
    assert answer == status
    if status == 403:
        assert _code(body) == "AccessDenied"


def _replace_query(url: str, name: str, value: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    assert name in query
    query[name] = value
    return urlunsplit(parts._replace(query=urlencode(query)))


def _flip_signature(url: str) -> str:
    signature = dict(parse_qsl(urlsplit(url).query))["X-Amz-Signature"]
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    return _replace_query(url, "X-Amz-Signature", flipped)


def _tamper(url: str, how: str) -> str:
    if how == "key":
        return url.replace("/key-a?", "/key-b?")
    if how == "expires":
        return _replace_query(url, "X-Amz-Expires", "301")
    if how == "signature":
        return _flip_signature(url)
    return url + "&response-content-type=text%2Fhtml"


@pytest.mark.parametrize("tamper", ["key", "expires", "signature", "extra-param"])
def test_tampered_presigned_url(local_s3: Any, local_bucket: str, tamper: str) -> None:
    local_s3.put_object(Bucket=local_bucket, Key="key-a", Body=b"a")
    local_s3.put_object(Bucket=local_bucket, Key="key-b", Body=b"b")
    url = local_s3.generate_presigned_url(
        "get_object", Params={"Bucket": local_bucket, "Key": "key-a"}, ExpiresIn=300
    )
    assert _fetch(url) == (200, b"a")
    tampered = _tamper(url, tamper)
    assert tampered != url
    status, body = _fetch(tampered)
    assert (status, _code(body)) == (403, "SignatureDoesNotMatch")


def test_presigned_put_cannot_be_replayed_as_get(local_s3: Any, local_bucket: str) -> None:
    local_s3.put_object(Bucket=local_bucket, Key="k", Body=b"secret")
    url = local_s3.generate_presigned_url(
        "put_object", Params={"Bucket": local_bucket, "Key": "k"}, ExpiresIn=300
    )
    status, body = _fetch(url)
    assert (status, _code(body)) == (403, "SignatureDoesNotMatch")


# Credentials


def _client(gw: GatewayProcess, access_key: str, secret_key: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=gw.endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name="us-east-1",
    )


def test_wrong_secret_is_signature_mismatch(
    local_gateway: GatewayProcess, local_bucket: str
) -> None:
    bad = _client(local_gateway, local_gateway.access_key, local_gateway.secret_key + "x")
    error = _client_error(bad.list_objects_v2, Bucket=local_bucket)
    assert error.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    error = _client_error(bad.put_object, Bucket=local_bucket, Key="k", Body=b"x")
    assert error.response["Error"]["Code"] == "SignatureDoesNotMatch"


def test_unknown_access_key(local_gateway: GatewayProcess, local_bucket: str) -> None:
    stranger = _client(local_gateway, "AKNOBODYHERE", local_gateway.secret_key)
    error = _client_error(stranger.list_objects_v2, Bucket=local_bucket)
    assert error.response["Error"]["Code"] == "InvalidAccessKeyId"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_anonymous_requests_are_denied(
    local_gateway: GatewayProcess, local_s3: Any, local_bucket: str
) -> None:
    local_s3.put_object(Bucket=local_bucket, Key="k", Body=b"v")
    for url in (
        f"{local_gateway.endpoint}/",
        f"{local_gateway.endpoint}/{local_bucket}",
        f"{local_gateway.endpoint}/{local_bucket}/k",
    ):
        status, body = _fetch(url)
        assert (status, _code(body)) == (403, "AccessDenied"), url
    anonymous = client_for(local_gateway, signature_version=UNSIGNED)
    error = _client_error(anonymous.put_object, Bucket=local_bucket, Key="new", Body=b"x")
    assert error.response["Error"]["Code"] == "AccessDenied"
    assert [o["Key"] for o in local_s3.list_objects_v2(Bucket=local_bucket)["Contents"]] == ["k"]


# Clock skew


@pytest.mark.parametrize(
    ("offset_min", "code"), [(0, None), (-20, "RequestTimeTooSkewed"), (20, "RequestTimeTooSkewed")]
)
def test_clock_skew(
    creds: rawclient.Credentials, local_bucket: str, offset_min: int, code: str | None
) -> None:
    now = datetime.now(UTC) + timedelta(minutes=offset_min)
    signed = rawclient.sign(creds, "GET", f"/{local_bucket}", query="list-type=2", now=now)
    answer = rawclient.send(creds, signed)
    assert answer.error_code() == code
    assert answer.status == (200 if code is None else 403)


# Expect: 100-continue


def _expect_put(
    creds: rawclient.Credentials, bucket: str, body: bytes, secret_key: str | None = None
) -> tuple[rawclient.Signed, dict[str, str]]:
    extra = {"Content-Length": str(len(body)), "Expect": "100-continue"}
    signed = rawclient.sign(
        creds,
        "PUT",
        f"/{bucket}/expect",
        payload_hash=rawclient.UNSIGNED_PAYLOAD,
        secret_key=secret_key,
    )
    return signed, extra


def test_expect_continue_bad_signature_gets_403_without_continue(
    creds: rawclient.Credentials, local_s3: Any, local_bucket: str
) -> None:
    body = os.urandom(1000)
    signed, extra = _expect_put(creds, local_bucket, body, secret_key="wrong-secret")
    with rawclient.connect(creds) as sock:
        sock.sendall(rawclient.head_bytes(signed, extra))
        answer = rawclient.RawReader(sock).read_response()
    assert answer is not None
    assert answer.status == 403
    assert answer.error_code() == "SignatureDoesNotMatch"
    assert "Contents" not in local_s3.list_objects_v2(Bucket=local_bucket)


def test_expect_continue_good_signature_gets_continue_first(
    creds: rawclient.Credentials, local_s3: Any, local_bucket: str
) -> None:
    body = os.urandom(1000)
    signed, extra = _expect_put(creds, local_bucket, body)
    with rawclient.connect(creds) as sock:
        sock.sendall(rawclient.head_bytes(signed, extra))
        reader = rawclient.RawReader(sock)
        interim = reader.read_head()
        assert interim is not None
        assert (interim.status, interim.reason) == (100, "Continue")
        sock.sendall(body)
        final = reader.read_response()
    assert final is not None
    assert final.status == 200, final.body
    assert local_s3.get_object(Bucket=local_bucket, Key="expect")["Body"].read() == body
