"""SigV2 presigned URLs, checked against botocore's own signer."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
from botocore.auth import HmacV1QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from gateway.s3 import sigv2

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def _presign(method: str, url: str, headers: dict[str, str] | None = None) -> str:
    request = AWSRequest(method=method, url=url, headers=headers or {})
    HmacV1QueryAuth(Credentials("AKIDEXAMPLE", SECRET), expires=3600).add_auth(request)
    request.prepare()
    return str(request.url)


def _verify(method: str, signed_url: str, headers: dict[str, str] | None = None) -> bool:
    parts = urlsplit(signed_url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    presigned = sigv2.parse_presigned(query)
    resource = sigv2.canonical_resource(parts.path, parts.query)
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    to_sign = sigv2.string_to_sign(method, lowered, presigned.expires_epoch_s, resource)
    return sigv2.verify(SECRET, presigned, to_sign)


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "http://127.0.0.1:9000/bucket/key"),
        ("GET", "http://127.0.0.1:9000/bucket/dir/with%20space/%C3%A9t%C3%A9.txt"),
        ("PUT", "http://127.0.0.1:9000/bucket/upload"),
        ("GET", "http://127.0.0.1:9000/bucket/key?versionId=abc123"),
        ("GET", "http://127.0.0.1:9000/bucket/key?response-content-type=text%2Fplain"),
        ("PUT", "http://127.0.0.1:9000/bucket/key?partNumber=2&uploadId=xyz"),
    ],
)
def test_botocore_presigned_urls_verify(method: str, url: str) -> None:
    signed = _presign(method, url)
    assert "AWSAccessKeyId=" in signed
    assert _verify(method, signed)


def test_a_changed_url_does_not_verify() -> None:
    signed = _presign("GET", "http://127.0.0.1:9000/bucket/key")
    assert not _verify("GET", signed.replace("/bucket/key", "/bucket/kez"))
    assert not _verify("PUT", signed)


def test_content_type_is_signed() -> None:
    headers = {"Content-Type": "text/plain"}
    signed = _presign("PUT", "http://127.0.0.1:9000/bucket/k", headers)
    assert _verify("PUT", signed, headers)
    assert not _verify("PUT", signed, {"Content-Type": "image/png"})


def test_missing_parameters_are_refused() -> None:
    with pytest.raises(sigv2.SigV2Error):
        sigv2.parse_presigned({"AWSAccessKeyId": "A", "Signature": "s"})
