"""FaultProxy in front of a real moto server: every fault, and clean forwarding around it."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError, ResponseStreamingError

from tests.faultproxy import EMPTY_MD5, Fault, FaultProxy, Rule
from tests.servers import MotoServer, make_bucket, random_name

BODY = os.urandom(200_000)


def _client(url: str, read_timeout_s: float = 10.0) -> Any:
    config = Config(
        s3={"addressing_style": "path"},
        retries={"mode": "standard", "total_max_attempts": 1},
        read_timeout=read_timeout_s,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
        config=config,
    )


@pytest.fixture(scope="module")
def proxied(moto_server: MotoServer) -> Iterator[tuple[FaultProxy, Any, str]]:
    bucket = random_name()
    make_bucket(moto_server.endpoint_url, "testing", "testing", bucket)
    with FaultProxy(moto_server.endpoint_url, hang_s=5.0) as proxy:
        client = _client(proxy.url)
        client.put_object(Bucket=bucket, Key="stored", Body=BODY)
        yield proxy, client, bucket


@pytest.fixture
def fault(proxied: tuple[FaultProxy, Any, str]) -> Iterator[tuple[FaultProxy, Any, str]]:
    proxied[0].restore()
    yield proxied
    proxied[0].restore()


def _code(exc: pytest.ExceptionInfo[ClientError]) -> tuple[int, str]:
    response = exc.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


def test_forwards_puts_gets_and_listings_intact(fault: tuple[FaultProxy, Any, str]) -> None:
    proxy, s3, bucket = fault
    put = s3.put_object(Bucket=bucket, Key="dir/a b+c", Body=BODY)

    assert put["ETag"].strip('"') == hashlib.md5(BODY).hexdigest()
    assert s3.get_object(Bucket=bucket, Key="dir/a b+c")["Body"].read() == BODY
    ranged = s3.get_object(Bucket=bucket, Key="dir/a b+c", Range="bytes=10-19")
    assert ranged["Body"].read() == BODY[10:20]
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="dir/")["Contents"]
    assert [o["Key"] for o in listed] == ["dir/a b+c"]
    assert all(f is None for _, _, f in proxy.seen())


@pytest.mark.parametrize(
    ("kind", "status", "code"), [(Fault.ERROR_500, 500, "InternalError"),
                                 (Fault.SLOW_DOWN, 503, "SlowDown")]
)  # fmt: skip
def test_error_faults_answer_s3_xml_for_matching_requests_only(
    fault: tuple[FaultProxy, Any, str], kind: Fault, status: int, code: str
) -> None:
    proxy, s3, bucket = fault
    victim = random_name("victim-")
    rule = proxy.add(Rule(kind, method="PUT", path_contains=f"/{victim}", times=1))

    s3.put_object(Bucket=bucket, Key="other", Body=b"x")  # not matched
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket=bucket, Key=victim, Body=b"x")
    assert _code(info) == (status, code)
    with pytest.raises(ClientError):  # never forwarded: the key does not exist
        s3.head_object(Bucket=bucket, Key=victim)
    s3.put_object(Bucket=bucket, Key=victim, Body=b"y")  # times=1: spent

    assert rule.fired == 1
    assert s3.get_object(Bucket=bucket, Key=victim)["Body"].read() == b"y"


def test_query_rule_matches_only_multipart_part_uploads(
    fault: tuple[FaultProxy, Any, str],
) -> None:
    proxy, s3, bucket = fault
    proxy.add(Rule(Fault.SLOW_DOWN, method="PUT", query_has="partNumber"))
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mpu")["UploadId"]

    with pytest.raises(ClientError) as info:
        s3.upload_part(Bucket=bucket, Key="mpu", UploadId=upload, PartNumber=1, Body=b"p")

    assert _code(info) == (503, "SlowDown")
    s3.abort_multipart_upload(Bucket=bucket, Key="mpu", UploadId=upload)


def test_hang_answers_nothing_until_restore(fault: tuple[FaultProxy, Any, str]) -> None:
    proxy, _, bucket = fault
    proxy.add(Rule(Fault.HANG, method="GET"))
    slow = _client(proxy.url, read_timeout_s=0.5)
    started = time.monotonic()

    with pytest.raises(ReadTimeoutError):
        slow.get_object(Bucket=bucket, Key="stored")

    assert time.monotonic() - started >= 0.5
    proxy.restore()
    assert slow.get_object(Bucket=bucket, Key="stored")["Body"].read() == BODY


def test_partial_body_keeps_headers_and_cuts_the_body(fault: tuple[FaultProxy, Any, str]) -> None:
    proxy, s3, bucket = fault
    proxy.add(Rule(Fault.PARTIAL_BODY, method="GET", path_contains="/stored", times=1))

    response = s3.get_object(Bucket=bucket, Key="stored")

    assert response["ContentLength"] == len(BODY)
    with pytest.raises(ResponseStreamingError):
        response["Body"].read()
    assert s3.get_object(Bucket=bucket, Key="stored")["Body"].read() == BODY


def test_wrong_etag_rewrites_the_header_and_forwards_the_write(
    fault: tuple[FaultProxy, Any, str],
) -> None:
    proxy, s3, bucket = fault
    proxy.add(Rule(Fault.WRONG_ETAG, method="PUT", times=1))

    put = s3.put_object(Bucket=bucket, Key="etag", Body=b"real bytes")

    assert put["ETag"] == f'"{EMPTY_MD5}"'
    head = s3.head_object(Bucket=bucket, Key="etag")
    assert head["ETag"].strip('"') == hashlib.md5(b"real bytes").hexdigest()
