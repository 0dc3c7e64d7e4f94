"""Inputs the fuzzers found that made the gateway raise something other than an S3 error
(a 500) or accept what it should not; each is pinned here so CI checks it every run."""

from __future__ import annotations

import pytest

from gateway.errors import InvalidBucketName, InvalidURI, MalformedXML
from gateway.s3 import headers as h
from gateway.s3 import sigv4, xml
from gateway.s3.handlers.buckets import parse_cors
from gateway.s3.router import split_target
from gateway.services.buckets import check_bucket_name

CORS_MAX_AGE = (
    b"<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod><AllowedOrigin>*"
    b"</AllowedOrigin><MaxAgeSeconds>soon</MaxAgeSeconds></CORSRule></CORSConfiguration>"
)


@pytest.mark.parametrize("expires", ["\u00b2", "\u2776", "9" * 5000])
def test_presigned_expires_that_isdigit_but_not_int(expires: str) -> None:
    query = {
        "X-Amz-Algorithm": sigv4.ALGORITHM,
        "X-Amz-Credential": "AK/20260101/us-east-1/s3/aws4_request",
        "X-Amz-Date": "20260101T000000Z",
        "X-Amz-Expires": expires,
        "X-Amz-SignedHeaders": "host",
        "X-Amz-Signature": "0" * 64,
    }
    with pytest.raises(sigv4.SigV4Error) as info:
        sigv4.parse_presigned(query)
    assert info.value.code == "AuthorizationQueryParametersError"


@pytest.mark.parametrize("value", ["bytes=\u0663-", "bytes=0-\u0661", "bytes=-\u00b2"])
def test_ranges_with_non_ascii_digits_are_ignored(value: str) -> None:
    assert h.byte_range(value) is None


def test_an_unknown_xml_encoding_is_malformed() -> None:
    with pytest.raises(MalformedXML):
        xml.parse(b'<?xml version="1.0" encoding="TF-8"?><Tagging/>', "Tagging")


def test_a_cors_max_age_that_is_no_integer_is_malformed() -> None:
    with pytest.raises(MalformedXML):
        parse_cors(xml.parse(CORS_MAX_AGE, "CORSConfiguration"))


@pytest.mark.parametrize("name", ["1.2.3.04", "01.2.3.4", "999.1.1.1"])
def test_bucket_names_formatted_as_ip_addresses_are_invalid(name: str) -> None:
    with pytest.raises(InvalidBucketName):
        check_bucket_name(name)


@pytest.mark.parametrize("path", ["/bucket/a%FFb", "/bucket/a%00b", "/bucket/a\udcffb", "/b%C3/k"])
def test_names_that_are_not_utf8_or_hold_nul_are_invalid_uri(path: str) -> None:
    with pytest.raises(InvalidURI):
        split_target("gw", path, None)
