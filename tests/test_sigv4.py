"""SigV4 verification against botocore's signer and the AWS documentation examples."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.utils import percent_encode

from gateway.s3 import sigv4
from gateway.s3.sigv4 import Credential, SigV4Error

ACCESS_KEY = "AKIDSKYBRIDGETEST"
SECRET_KEY = "s3cr3t/Key+With=Odd/Chars"
DOC_ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
DOC_SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
DOC_DATE = "20130524T000000Z"

SPECIAL_KEYS = [
    "plain.txt",
    "dir/sub dir/file with spaces.txt",
    "unicode/żółw-日本語-é.bin",
    "sym+plus=equals%percent~tilde",
    "bang!quote'paren(star)*",
    "semi;colon,comma:at@dollar$amp&hash#q?",
    "a//double//slash/./dot/../dotdot",
]


@dataclass(frozen=True)
class Wire:
    """A request as the gateway sees it: raw path, raw query, lower-cased headers."""

    method: str
    path: str
    query: str
    headers: dict[str, str]


class _CapturingAuth(S3SigV4Auth):  # type: ignore[misc]
    """botocore's header signer, keeping its canonical request for comparison."""

    canonical: str = ""

    def canonical_request(self, request: Any) -> str:
        self.canonical = str(super().canonical_request(request))
        return self.canonical


class _CapturingQueryAuth(S3SigV4QueryAuth):  # type: ignore[misc]
    canonical: str = ""

    def canonical_request(self, request: Any) -> str:
        self.canonical = str(super().canonical_request(request))
        return self.canonical


class _S3Config:
    def __init__(self, sign_payload: bool) -> None:
        self.s3 = {"payload_signing_enabled": sign_payload}


def _wire(request: Any) -> Wire:
    parts = urlsplit(request.url)
    headers = {name.lower(): str(value) for name, value in request.headers.items()}
    headers.setdefault("host", parts.netloc)
    return Wire(request.method, parts.path, parts.query, headers)


def _header_signed(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    sign_payload: bool = True,
) -> tuple[Wire, str]:
    request = AWSRequest(method=method, url=url, headers=headers or {}, data=body)
    request.context["client_config"] = _S3Config(sign_payload)
    auth = _CapturingAuth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1")
    auth.add_auth(request)
    return _wire(request), auth.canonical


def _presigned(method: str, url: str, expires: int = 3600) -> tuple[Wire, str]:
    request = AWSRequest(method=method, url=url)
    auth = _CapturingQueryAuth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "eu-west-3", expires)
    auth.add_auth(request)
    return _wire(request), auth.canonical


def _canonical(wire: Wire, signed: sigv4.SignedRequest) -> str:
    return sigv4.canonical_request(
        wire.method,
        wire.path,
        wire.query,
        wire.headers,
        signed.signed_headers,
        signed.payload_hash,
        presigned=signed.presigned,
    )


def _verify_header(wire: Wire, secret: str = SECRET_KEY) -> bool:
    signed = sigv4.parse_authorization(wire.headers["authorization"], wire.headers)
    return sigv4.verify(secret, signed, _canonical(wire, signed))


def _verify_presigned(wire: Wire) -> bool:
    signed = sigv4.parse_presigned(dict(parse_qsl(wire.query, keep_blank_values=True)))
    return sigv4.verify(SECRET_KEY, signed, _canonical(wire, signed))


def _object_url(host: str, path_prefix: str, key: str, query: str = "") -> str:
    # botocore's REST serializer encodes keys this way before signing.
    url = f"https://{host}{path_prefix}/{percent_encode(key, safe='/~')}"
    return f"{url}?{query}" if query else url


# botocore is the authority


@pytest.mark.parametrize("key", SPECIAL_KEYS)
@pytest.mark.parametrize(
    ("host", "prefix"),
    [("bucket.s3.us-east-1.amazonaws.com", ""), ("localhost:9000", "/bucket")],
    ids=["virtual-host", "path-style"],
)
def test_header_signature_matches_botocore(key: str, host: str, prefix: str) -> None:
    wire, botocore_canonical = _header_signed("GET", _object_url(host, prefix, key))
    signed = sigv4.parse_authorization(wire.headers["authorization"], wire.headers)
    assert _canonical(wire, signed) == botocore_canonical
    assert _verify_header(wire)


@pytest.mark.parametrize(
    "query",
    [
        "uploads",
        "tagging",
        "list-type=2&prefix=a%2Fb&delimiter=%2F",
        "uploadId=abc%2Bdef&partNumber=3",
        "prefix=%E6%97%A5%20x&max-keys=5&encoding-type=url",
        "versionId=&acl",
    ],
)
def test_query_strings_match_botocore(query: str) -> None:
    wire, botocore_canonical = _header_signed(
        "GET", _object_url("localhost:9000", "/bucket", "k", query)
    )
    signed = sigv4.parse_authorization(wire.headers["authorization"], wire.headers)
    assert _canonical(wire, signed) == botocore_canonical
    assert _verify_header(wire)


def test_put_with_hex_payload_hash_and_extra_headers() -> None:
    body = b"hello, skybridge"
    headers = {
        "Content-Type": "text/plain",
        "x-amz-meta-note": "  spaced    out   value ",
        "x-amz-storage-class": "STANDARD_IA",
    }
    wire, _ = _header_signed(
        "PUT", _object_url("localhost:9000", "/bucket", "k"), headers=headers, body=body
    )
    assert wire.headers["x-amz-content-sha256"] == hashlib.sha256(body).hexdigest()
    assert _verify_header(wire)


def test_unsigned_payload() -> None:
    wire, _ = _header_signed(
        "PUT",
        _object_url("bucket.s3.amazonaws.com", "", "big.bin"),
        headers={"Content-MD5": "XrY7u+Ae7tCTyyK7j1rNww=="},
        body=b"x",
        sign_payload=False,
    )
    assert wire.headers["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"
    assert _verify_header(wire)


def test_unencoded_reserved_characters_on_the_wire() -> None:
    # Some clients send !'()* and UTF-8 raw while signing their encoded form.
    key = "bang!quote'paren(star)*/żółw"
    wire, _ = _header_signed("GET", _object_url("localhost:9000", "/bucket", key))
    raw = Wire(wire.method, f"/bucket/{key}", wire.query, wire.headers)
    assert _verify_header(raw)


@pytest.mark.parametrize("method", ["GET", "PUT"])
@pytest.mark.parametrize("key", SPECIAL_KEYS[:5])
def test_presigned_matches_botocore(method: str, key: str) -> None:
    wire, botocore_canonical = _presigned(method, _object_url("localhost:9000", "/bucket", key))
    signed = sigv4.parse_presigned(dict(parse_qsl(wire.query, keep_blank_values=True)))
    assert signed.presigned
    assert signed.expires_s == 3600
    assert signed.payload_hash == "UNSIGNED-PAYLOAD"
    assert _canonical(wire, signed) == botocore_canonical
    assert _verify_presigned(wire)


def test_presigned_with_operation_query() -> None:
    url = _object_url("localhost:9000", "/bucket", "k", "uploadId=xyz&partNumber=7")
    wire, _ = _presigned("PUT", url, expires=604800)
    assert _verify_presigned(wire)


# Tampering is detected


def _replace_once(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


def test_tampered_header_request_fails() -> None:
    url = _object_url("localhost:9000", "/bucket", "dir/key.txt", "list-type=2&prefix=a%2Fb")
    wire, _ = _header_signed("GET", url, headers={"Range": "bytes=0-9"})
    assert _verify_header(wire)
    tampered_headers = {**wire.headers, "range": "bytes=0-99"}
    tampered_hash = {**wire.headers, "x-amz-content-sha256": "UNSIGNED-PAYLOAD"}
    variants = [
        Wire("PUT", wire.path, wire.query, wire.headers),
        Wire(wire.method, _replace_once(wire.path, "key", "kez"), wire.query, wire.headers),
        Wire(wire.method, wire.path, _replace_once(wire.query, "a%2Fb", "a%2Fc"), wire.headers),
        Wire(wire.method, wire.path, wire.query, tampered_headers),
        Wire(wire.method, wire.path, wire.query, tampered_hash),
    ]
    for variant in variants:
        assert not _verify_header(variant)
    assert not _verify_header(wire, secret=SECRET_KEY + "x")


def test_tampered_presigned_request_fails() -> None:
    wire, _ = _presigned("GET", _object_url("localhost:9000", "/bucket", "key"))
    expires = _replace_once(wire.query, "X-Amz-Expires=3600", "X-Amz-Expires=3601")
    assert not _verify_presigned(Wire(wire.method, wire.path, expires, wire.headers))
    path = _replace_once(wire.path, "key", "kez")
    assert not _verify_presigned(Wire(wire.method, path, wire.query, wire.headers))
    assert not _verify_presigned(Wire("PUT", wire.path, wire.query, wire.headers))


# AWS documentation examples ("Examples: Signature Calculations", S3 API reference)


def _doc_verify(method: str, path: str, query: str, headers: dict[str, str], sig: str) -> None:
    scope = "20130524/us-east-1/s3/aws4_request"
    signed_headers = ";".join(sorted(headers))
    authorization = (
        f"AWS4-HMAC-SHA256 Credential={DOC_ACCESS_KEY}/{scope},"
        f"SignedHeaders={signed_headers},Signature={sig}"
    )
    signed = sigv4.parse_authorization(authorization, headers)
    canonical = sigv4.canonical_request(
        method, path, query, headers, signed.signed_headers, signed.payload_hash, presigned=False
    )
    assert sigv4.compute_signature(DOC_SECRET_KEY, signed, canonical) == sig


def test_aws_example_get_object() -> None:
    headers = {
        "host": "examplebucket.s3.amazonaws.com",
        "range": "bytes=0-9",
        "x-amz-content-sha256": sigv4.EMPTY_SHA256_HEX,
        "x-amz-date": DOC_DATE,
    }
    sig = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    _doc_verify("GET", "/test.txt", "", headers, sig)


def test_aws_example_get_bucket_lifecycle() -> None:
    headers = {
        "host": "examplebucket.s3.amazonaws.com",
        "x-amz-content-sha256": sigv4.EMPTY_SHA256_HEX,
        "x-amz-date": DOC_DATE,
    }
    sig = "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"
    _doc_verify("GET", "/", "lifecycle", headers, sig)


def test_aws_example_streaming_seed_signature() -> None:
    headers = {
        "content-encoding": "aws-chunked",
        "content-length": "66824",
        "host": "s3.amazonaws.com",
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "x-amz-date": DOC_DATE,
        "x-amz-decoded-content-length": "66560",
        "x-amz-storage-class": "REDUCED_REDUNDANCY",
    }
    sig = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
    _doc_verify("PUT", "/examplebucket/chunkObject.txt", "", headers, sig)


def test_aws_example_chunk_signatures() -> None:
    credential = Credential(DOC_ACCESS_KEY, "20130524", "us-east-1", "s3")
    key = sigv4.signing_key(DOC_SECRET_KEY, credential)
    previous = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
    expected = [
        (65536, "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"),
        (1024, "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"),
        (0, "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"),
    ]
    for size, signature in expected:
        chunk_hash = hashlib.sha256(b"a" * size).hexdigest()
        to_sign = sigv4.chunk_string_to_sign(DOC_DATE, credential.scope, previous, chunk_hash)
        previous = sigv4.hmac_hex(key, to_sign)
        assert previous == signature


def test_aws_example_trailer_signature() -> None:
    # "Signature calculations for trailing headers (chunked uploads)": the final 0-byte
    # chunk's signature seeds the trailer signature.
    credential = Credential(DOC_ACCESS_KEY, "20130524", "us-east-1", "s3")
    key = sigv4.signing_key(DOC_SECRET_KEY, credential)
    final_chunk = "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992"
    trailer = b"x-amz-checksum-crc32c:sOO8/Q==\n"
    to_sign = sigv4.trailer_string_to_sign(DOC_DATE, credential.scope, final_chunk, trailer)
    assert sigv4.hmac_hex(key, to_sign) == (
        "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435"
    )


# Parsing


def test_parse_authorization_tolerates_spacing_and_order() -> None:
    headers = {"x-amz-date": DOC_DATE, "x-amz-content-sha256": "UNSIGNED-PAYLOAD"}
    value = (
        "AWS4-HMAC-SHA256 Signature=" + "a" * 64 + " ,  SignedHeaders=host;x-amz-date ,"
        f"Credential={DOC_ACCESS_KEY}/20130524/us-east-1/s3/aws4_request"
    )
    signed = sigv4.parse_authorization(value, headers)
    assert signed.credential == Credential(DOC_ACCESS_KEY, "20130524", "us-east-1", "s3")
    assert signed.credential.scope == "20130524/us-east-1/s3/aws4_request"
    assert signed.signed_headers == ("host", "x-amz-date")
    assert signed.amz_date == DOC_DATE
    assert not signed.presigned
    assert signed.expires_s is None


def test_parse_authorization_uses_date_header() -> None:
    headers = {"date": "Fri, 24 May 2013 00:00:00 GMT", "x-amz-content-sha256": "x"}
    value = (
        f"AWS4-HMAC-SHA256 Credential={DOC_ACCESS_KEY}/20130524/us-east-1/s3/aws4_request,"
        "SignedHeaders=date;host,Signature=" + "b" * 64
    )
    assert sigv4.parse_authorization(value, headers).amz_date == DOC_DATE


_GOOD_CREDENTIAL = f"Credential={DOC_ACCESS_KEY}/20130524/us-east-1/s3/aws4_request"
_GOOD_AUTH = f"AWS4-HMAC-SHA256 {_GOOD_CREDENTIAL},SignedHeaders=host,Signature={'c' * 64}"
_GOOD_HEADERS = {"x-amz-date": DOC_DATE, "x-amz-content-sha256": "UNSIGNED-PAYLOAD"}


@pytest.mark.parametrize(
    ("value", "headers", "code"),
    [
        ("AWS4-HMAC-SHA1 x", _GOOD_HEADERS, "InvalidArgument"),
        ("AWS4-HMAC-SHA256 SignedHeaders=host", _GOOD_HEADERS, "AuthorizationHeaderMalformed"),
        (
            _GOOD_AUTH.replace("aws4_request", "aws5_request"),
            _GOOD_HEADERS,
            "AuthorizationHeaderMalformed",
        ),
        (_GOOD_AUTH.replace("20130524", "2013052"), _GOOD_HEADERS, "AuthorizationHeaderMalformed"),
        (_GOOD_AUTH.replace("c" * 64, "C" * 64), _GOOD_HEADERS, "AuthorizationHeaderMalformed"),
        (_GOOD_AUTH.replace("=host,", "=x-amz-date,"), _GOOD_HEADERS, "AccessDenied"),
        (_GOOD_AUTH, {"x-amz-content-sha256": "x"}, "AccessDenied"),
        (_GOOD_AUTH, {"x-amz-date": "yesterday", "x-amz-content-sha256": "x"}, "AccessDenied"),
        (
            _GOOD_AUTH,
            {"x-amz-date": "20130525T000000Z", "x-amz-content-sha256": "x"},
            "AuthorizationHeaderMalformed",
        ),
        (_GOOD_AUTH, {"x-amz-date": DOC_DATE}, "MissingSecurityHeader"),
    ],
)
def test_parse_authorization_errors(value: str, headers: dict[str, str], code: str) -> None:
    with pytest.raises(SigV4Error) as info:
        sigv4.parse_authorization(value, headers)
    assert info.value.code == code


def _presign_query(**overrides: str) -> dict[str, str]:
    query = {
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": f"{DOC_ACCESS_KEY}/20130524/us-east-1/s3/aws4_request",
        "X-Amz-Date": DOC_DATE,
        "X-Amz-Expires": "86400",
        "X-Amz-SignedHeaders": "host",
        "X-Amz-Signature": "d" * 64,
    }
    query.update(overrides)
    return {k: v for k, v in query.items() if v != "-"}


@pytest.mark.parametrize(
    "overrides",
    [
        {"X-Amz-Expires": "0"},
        {"X-Amz-Expires": "604801"},
        {"X-Amz-Expires": "-5"},
        {"X-Amz-Expires": "soon"},
        {"X-Amz-Expires": "\u00b2"},  # "²": str.isdigit() but not int()
        {"X-Amz-Expires": "9" * 5000},  # beyond int()'s digit limit
        {"X-Amz-Algorithm": "AWS4-HMAC-SHA512"},
        {"X-Amz-Signature": "-"},
        {"X-Amz-Date": "2013-05-24"},
        {"X-Amz-Credential": "AKID/20130524/us-east-1/s3"},
    ],
)
def test_parse_presigned_errors(overrides: dict[str, str]) -> None:
    with pytest.raises(SigV4Error) as info:
        sigv4.parse_presigned(_presign_query(**overrides))
    assert info.value.code == "AuthorizationQueryParametersError"


def test_parse_presigned_bounds_and_payload_hash() -> None:
    assert sigv4.parse_presigned(_presign_query(**{"X-Amz-Expires": "1"})).expires_s == 1
    assert sigv4.parse_presigned(_presign_query(**{"X-Amz-Expires": "604800"})).expires_s == 604800
    given = sigv4.parse_presigned(_presign_query(**{"X-Amz-Content-Sha256": "e" * 64}))
    assert given.payload_hash == "e" * 64


def test_check_freshness() -> None:
    signed_at = datetime(2013, 5, 24, tzinfo=UTC)
    presigned = sigv4.parse_presigned(_presign_query(**{"X-Amz-Expires": "60"}))
    sigv4.check_freshness(presigned, signed_at + timedelta(seconds=60))
    with pytest.raises(SigV4Error):
        sigv4.check_freshness(presigned, signed_at + timedelta(seconds=61))
    header = sigv4.parse_authorization(_GOOD_AUTH, _GOOD_HEADERS)
    sigv4.check_freshness(header, signed_at - timedelta(minutes=14))
    with pytest.raises(SigV4Error) as info:
        sigv4.check_freshness(header, signed_at + timedelta(minutes=16))
    assert info.value.code == "RequestTimeTooSkewed"


def test_parse_amz_date_formats() -> None:
    expected = datetime(2013, 5, 24, 1, 2, 3, tzinfo=UTC)
    assert sigv4.parse_amz_date("20130524T010203Z") == expected
    assert sigv4.parse_amz_date("Fri, 24 May 2013 01:02:03 GMT") == expected
    assert sigv4.parse_amz_date("20130524T010203Z").tzinfo is not None
    with pytest.raises(ValueError, match="not an x-amz-date"):
        sigv4.parse_amz_date("2013-05-24 01:02:03")


# Canonical forms


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", ""),
        ("uploads", "uploads="),
        ("b=2&a=1&a=0", "a=0&a=1&b=2"),
        ("prefix=a/b", "prefix=a%2Fb"),
        ("prefix=a%2fb", "prefix=a%2Fb"),
        ("q=a+b", "q=a%20b"),
        ("q=a%2Bb", "q=a%2Bb"),
        ("x=%7E~&y=%E6%97%A5", "x=~~&y=%E6%97%A5"),
        ("X-Amz-Signature=abc&X-Amz-Date=1", "X-Amz-Date=1"),
    ],
)
def test_canonical_query(raw: str, expected: str) -> None:
    assert sigv4.canonical_query(raw, presigned=True) == expected


def test_canonical_query_keeps_signature_when_not_presigned() -> None:
    assert sigv4.canonical_query("X-Amz-Signature=abc", presigned=False) == "X-Amz-Signature=abc"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", "/"),
        ("/b/k%20ey", "/b/k%20ey"),
        ("/b/a b", "/b/a%20b"),
        ("/b/a%2Fb c", "/b/a%2Fb%20c"),
        ("/b/x!'()*", "/b/x%21%27%28%29%2A"),
        ("/b/./../x", "/b/./../x"),
        ("/b/ż", "/b/%C5%BC"),
    ],
)
def test_canonical_path(raw: str, expected: str) -> None:
    assert sigv4.canonical_path(raw) == expected


def test_canonical_headers_trim_and_join() -> None:
    headers: dict[str, str | list[str]] = {"a": "  x   y  ", "b": ["1", " 2  3 "], "host": "h"}
    assert sigv4.canonical_headers(headers, ["a", "b", "host"]) == "a:x y\nb:1,2 3\nhost:h\n"
