"""Object and bucket tagging, bucket CORS configuration, and CORS preflight."""

from __future__ import annotations

import http.client
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from tests.gateway_process import GatewayProcess


def _error(info: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = info.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def _tags(tag_set: list[dict[str, str]]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tag_set}


def test_object_tagging_on_put(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging="a=1&b=2&empty=")
    assert _tags(s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"]) == {
        "a": "1",
        "b": "2",
        "empty": "",
    }
    assert s3.get_object(Bucket=bucket, Key="k")["TagCount"] == 3


def test_object_tagging_api(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == []
    assert "TagCount" not in s3.head_object(Bucket=bucket, Key="k")
    s3.put_object_tagging(
        Bucket=bucket,
        Key="k",
        Tagging={"TagSet": [{"Key": "project", "Value": "sky bridge"}, {"Key": "n", "Value": "1"}]},
    )
    assert _tags(s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"]) == {
        "project": "sky bridge",
        "n": "1",
    }
    # PUT replaces the whole set.
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging={"TagSet": [{"Key": "x", "Value": "y"}]})
    assert _tags(s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"]) == {"x": "y"}
    deleted = s3.delete_object_tagging(Bucket=bucket, Key="k")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == []
    # Tagging does not touch the data.
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"


def test_object_tagging_missing_key(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as info:
        s3.get_object_tagging(Bucket=bucket, Key="nope")
    assert _error(info) == ("NoSuchKey", 404)


def test_object_tagging_by_version(s3: Any, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"1", Tagging="v=1")["VersionId"]
    s3.put_object(Bucket=bucket, Key="k", Body=b"2", Tagging="v=2")
    got = s3.get_object_tagging(Bucket=bucket, Key="k", VersionId=v1)
    assert got["VersionId"] == v1
    assert _tags(got["TagSet"]) == {"v": "1"}
    assert _tags(s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"]) == {"v": "2"}


def test_invalid_object_tags(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    too_many = [{"Key": f"k{i}", "Value": "v"} for i in range(11)]
    with pytest.raises(ClientError) as info:
        s3.put_object_tagging(Bucket=bucket, Key="k", Tagging={"TagSet": too_many})
    assert _error(info)[0] in ("BadRequest", "InvalidTag")
    assert _error(info)[1] == 400
    with pytest.raises(ClientError) as info:
        s3.put_object_tagging(
            Bucket=bucket, Key="k", Tagging={"TagSet": [{"Key": "a" * 129, "Value": "v"}]}
        )
    assert _error(info) == ("InvalidTag", 400)


def test_bucket_tagging(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as info:
        s3.get_bucket_tagging(Bucket=bucket)
    assert _error(info) == ("NoSuchTagSet", 404)
    tag_set = [{"Key": "team", "Value": "storage"}, {"Key": "env", "Value": "test"}]
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tag_set})
    assert _tags(s3.get_bucket_tagging(Bucket=bucket)["TagSet"]) == _tags(tag_set)
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "only", "Value": "1"}]})
    assert _tags(s3.get_bucket_tagging(Bucket=bucket)["TagSet"]) == {"only": "1"}
    deleted = s3.delete_bucket_tagging(Bucket=bucket)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as info:
        s3.get_bucket_tagging(Bucket=bucket)
    assert _error(info) == ("NoSuchTagSet", 404)


RULES = [
    {
        "ID": "web",
        "AllowedOrigins": ["https://app.example.com"],
        "AllowedMethods": ["GET", "PUT"],
        "AllowedHeaders": ["x-amz-*", "content-type"],
        "ExposeHeaders": ["ETag"],
        "MaxAgeSeconds": 600,
    },
    {"AllowedOrigins": ["*"], "AllowedMethods": ["HEAD"]},
]


def test_bucket_cors_configuration(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as info:
        s3.get_bucket_cors(Bucket=bucket)
    assert _error(info) == ("NoSuchCORSConfiguration", 404)
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": RULES})
    rules = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    assert rules[0] == RULES[0]
    assert rules[1]["AllowedOrigins"] == ["*"]
    assert rules[1]["AllowedMethods"] == ["HEAD"]
    deleted = s3.delete_bucket_cors(Bucket=bucket)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as info:
        s3.get_bucket_cors(Bucket=bucket)
    assert _error(info) == ("NoSuchCORSConfiguration", 404)


def test_bucket_cors_rejects_bad_method(s3: Any, bucket: str) -> None:
    rule = {"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]}
    with pytest.raises(ClientError) as info:
        s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [rule]})
    assert _error(info)[1] == 400


def _options(gateway: GatewayProcess, path: str, headers: dict[str, str]) -> Any:
    parts = urlsplit(gateway.endpoint)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        connection.request("OPTIONS", path, headers=headers)
        response = connection.getresponse()
        response.read()
        return response
    finally:
        connection.close()


def test_cors_preflight(gateway: GatewayProcess, s3: Any, bucket: str) -> None:
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": RULES})
    allowed = _options(
        gateway,
        f"/{bucket}/some/key",
        {
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "content-type, x-amz-meta-a",
        },
    )
    assert allowed.status == 200
    assert allowed.getheader("Access-Control-Allow-Origin") == "https://app.example.com"
    assert "PUT" in allowed.getheader("Access-Control-Allow-Methods")
    assert allowed.getheader("Access-Control-Max-Age") == "600"
    allow_headers = allowed.getheader("Access-Control-Allow-Headers").lower()
    assert "content-type" in allow_headers
    assert "x-amz-meta-a" in allow_headers
    wildcard = _options(
        gateway,
        f"/{bucket}/k",
        {"Origin": "https://elsewhere.test", "Access-Control-Request-Method": "HEAD"},
    )
    assert wildcard.status == 200
    assert wildcard.getheader("Access-Control-Allow-Origin") == "*"
    for headers in (
        {"Origin": "https://evil.example.com", "Access-Control-Request-Method": "PUT"},
        {"Origin": "https://app.example.com", "Access-Control-Request-Method": "DELETE"},
        {
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    ):
        denied = _options(gateway, f"/{bucket}/k", headers)
        assert denied.status == 403, headers
        assert denied.getheader("Access-Control-Allow-Origin") is None


def test_cors_preflight_without_configuration(gateway: GatewayProcess, bucket: str) -> None:
    denied = _options(
        gateway,
        f"/{bucket}/k",
        {"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"},
    )
    assert denied.status == 403


def test_cors_headers_on_actual_request(gateway: GatewayProcess, s3: Any, bucket: str) -> None:
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": RULES})
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")

    def add_origin(request: Any, **_: Any) -> None:
        request.headers["Origin"] = "https://app.example.com"

    s3.meta.events.register("before-sign.s3.GetObject", add_origin)
    got = s3.get_object(Bucket=bucket, Key="k")
    headers = got["ResponseMetadata"]["HTTPHeaders"]
    assert headers["access-control-allow-origin"] == "https://app.example.com"
    assert headers["access-control-expose-headers"] == "ETag"
