"""SigV4 verification against botocore as the oracle: every request botocore signs (header
or presigned, any key, query and header values) verifies, and any change to a signed part
of it does not; the parsers refuse arbitrary input only with SigV4Error."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote, urlsplit

from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given
from hypothesis import strategies as st

from gateway import sigv4
from gateway.sigv4 import SigV4Error

HOST = "127.0.0.1:9000"
ACCESS_KEY, SECRET_KEY = "AKFUZZ", "fuzz-secret"
METHODS = ("GET", "PUT", "POST", "DELETE", "HEAD")


@dataclass(frozen=True)
class Request:
    """What the gateway sees of a request: the wire path and query, lower-cased headers."""

    method: str
    path: str
    query: str
    headers: dict[str, str]


_KEY_CHARS = st.characters(codec="utf-8", exclude_categories=["Cs"])
keys = st.text(_KEY_CHARS, min_size=1, max_size=40)
_PARAM_NAME = st.text(_KEY_CHARS, min_size=1, max_size=12).filter(
    lambda n: not n.lower().startswith("x-amz-")
)
params = st.dictionaries(_PARAM_NAME, st.text(_KEY_CHARS, max_size=20), max_size=4)
# Header values as they travel in HTTP/1.1: visible ASCII, spaces and tabs inside.
_HEADER_VALUE = st.text(st.sampled_from("ab Z09-_.:/;=,\"'\t ~!"), max_size=30)
headers = st.dictionaries(
    st.from_regex(r"x-amz-meta-[a-z0-9]{1,10}", fullmatch=True), _HEADER_VALUE, max_size=4
)
bodies = st.binary(max_size=64)


def _url(bucket: str, key: str) -> str:
    return f"http://{HOST}/{bucket}/{quote(key, safe='/~')}"


def _seen(prepared_url: str, method: str, sent: dict[str, str]) -> Request:
    parts = urlsplit(prepared_url)
    lowered = {name.lower(): value for name, value in sent.items()}
    return Request(method, parts.path, parts.query, {"host": HOST, **lowered})


def header_signed(method: str, key: str, query: dict[str, str], extra: dict[str, str],
                  body: bytes) -> Request:  # fmt: skip
    request = AWSRequest(method, _url("bucket", key), headers=dict(extra), data=body,
                         params=query)  # fmt: skip
    S3SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(request)
    prepared = request.prepare()
    return _seen(prepared.url, method, dict(prepared.headers.items()))


def presigned(method: str, key: str, query: dict[str, str], expires: int) -> Request:
    request = AWSRequest(method, _url("bucket", key), params=query)
    S3SigV4QueryAuth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1",
                     expires=expires).add_auth(request)  # fmt: skip
    prepared = request.prepare()
    return _seen(prepared.url, method, {})


def accepted(request: Request, secret: str = SECRET_KEY) -> bool:
    """The gateway's verdict, as gateway.s3.auth reaches it (parse, canonicalise, verify)."""
    if "authorization" in request.headers:
        signed = sigv4.parse_authorization(request.headers["authorization"], request.headers)
    else:
        signed = sigv4.parse_presigned(dict(parse_qsl(request.query, keep_blank_values=True)))
    canonical = sigv4.canonical_request(
        request.method, request.path, request.query, request.headers, signed.signed_headers,
        signed.payload_hash, presigned=signed.presigned,
    )  # fmt: skip
    return sigv4.verify(secret, signed, canonical)


def refused(request: Request, secret: str = SECRET_KEY) -> bool:
    try:
        return not accepted(request, secret)
    except SigV4Error:
        return True


@given(st.sampled_from(METHODS), keys, params, headers, bodies)
def test_botocore_header_signatures_verify(
    method: str, key: str, query: dict[str, str], extra: dict[str, str], body: bytes
) -> None:
    request = header_signed(method, key, query, extra, body)
    assert accepted(request), request
    assert request.headers["x-amz-content-sha256"] == hashlib.sha256(body).hexdigest()


@given(st.sampled_from(METHODS), keys, params, st.integers(1, sigv4.MAX_PRESIGNED_EXPIRES_S))
def test_botocore_presigned_urls_verify(
    method: str, key: str, query: dict[str, str], expires: int
) -> None:
    request = presigned(method, key, query, expires)
    assert accepted(request), request
    signed = sigv4.parse_presigned(dict(parse_qsl(request.query)))
    assert signed.expires_s == expires


def _mutations(request: Request, other_key: str) -> dict[str, Request]:
    """One change to each signed part of ``request`` (each keeps the rest as it was)."""
    first_char = request.path[len("/bucket/") :][:1]
    changed = {
        "method": replace(request, method="PATCH"),
        "key": replace(request, path=_url("bucket", other_key)[len(f"http://{HOST}") :]),
        "bucket": replace(request, path="/bucketz" + request.path[len("/bucket") :]),
        "query": replace(request, query=request.query + "&added=1"),
        "secret": request,  # verified with another secret below
    }
    if first_char:
        changed["path-case"] = replace(request, path=request.path.replace(
            "/bucket/" + first_char, "/bucket/" + first_char.swapcase(), 1))  # fmt: skip
    for name in request.headers:
        if name in ("host", "x-amz-date", "x-amz-content-sha256") or name.startswith("x-amz-m"):
            value = request.headers[name]
            changed[f"header {name}"] = replace(
                request,
                headers={**request.headers, name: value[:-1] + ("0" if value[-1:] != "0" else "1")},
            )
    return changed


@given(st.sampled_from(METHODS), keys, keys, params, headers, bodies)
def test_any_change_to_a_signed_part_is_refused(
    method: str, key: str, other_key: str, query: dict[str, str], extra: dict[str, str],
    body: bytes,
) -> None:  # fmt: skip
    request = header_signed(method, key, query, extra, body)
    for what, mutated in _mutations(request, other_key).items():
        if mutated == request and what != "secret":
            continue  # the change was a no-op (e.g. a key equal to the other one)
        secret = SECRET_KEY + "x" if what == "secret" else SECRET_KEY
        assert refused(mutated, secret), what


@given(st.sampled_from(METHODS), keys, keys, params, st.integers(1, 3600))
def test_any_change_to_a_presigned_url_is_refused(
    method: str, key: str, other_key: str, query: dict[str, str], expires: int
) -> None:
    request = presigned(method, key, query, expires)
    for what, mutated in _mutations(request, other_key).items():
        if mutated == request and what != "secret":
            continue
        secret = SECRET_KEY + "x" if what == "secret" else SECRET_KEY
        assert refused(mutated, secret), what
    longer = request.query.replace(f"X-Amz-Expires={expires}", f"X-Amz-Expires={expires + 1}")
    assert refused(replace(request, query=longer))


# Arbitrary input: only SigV4Error, never anything else.

_ALPHABET = st.sampled_from(
    list("AWS4-HMAC-SHA256 Credential=/,;SignedHeaders=hostSignature=0123456789abcdefT Z")
    + ["²", "٣", "\x00", "é", "aws4_request", "20260101", "20260101T000000Z", "%", "+"]
)
text = st.lists(_ALPHABET, max_size=40).map("".join)
# Numbers as str.isdigit() sees them: superscripts and other scripts' digits too.
digit_like = st.one_of(
    st.integers().map(str), st.text(st.characters(categories=["Nd", "No"]), min_size=1, max_size=8)
)
_PRESIGN_NAMES = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
                  "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Content-Sha256")  # fmt: skip


@given(text, st.dictionaries(st.sampled_from(["x-amz-date", "date", "x-amz-content-sha256"]), text))
def test_parse_authorization_refuses_only_with_sigv4_errors(
    value: str, header_values: dict[str, str]
) -> None:
    try:
        signed = sigv4.parse_authorization(value, header_values)
    except SigV4Error:
        return
    _fresh_or_refused(signed)


_VALID_PRESIGN = {
    "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
    "X-Amz-Credential": f"{ACCESS_KEY}/20260101/us-east-1/s3/aws4_request",
    "X-Amz-Date": "20260101T000000Z",
    "X-Amz-Expires": "3600",
    "X-Amz-SignedHeaders": "host",
    "X-Amz-Signature": "0" * 64,
    "X-Amz-Content-Sha256": sigv4.UNSIGNED_PAYLOAD,
}
_JUNK = st.one_of(st.none(), text, st.text(max_size=12), digit_like)  # None: left out


@st.composite
def presign_queries(draw: st.DrawFn) -> dict[str, str]:
    """A valid query with one or two parameters junk or missing: the later checks run."""
    query = dict(_VALID_PRESIGN)
    for name in draw(st.sets(st.sampled_from(sorted(query)), min_size=1, max_size=2)):
        value = draw(_JUNK)
        if value is None:
            del query[name]
        else:
            query[name] = value
    return query


@given(presign_queries())
def test_parse_presigned_refuses_only_with_sigv4_errors(query: dict[str, str]) -> None:
    try:
        signed = sigv4.parse_presigned(query)
    except SigV4Error:
        return
    assert signed.expires_s is not None
    assert 1 <= signed.expires_s <= sigv4.MAX_PRESIGNED_EXPIRES_S
    _fresh_or_refused(signed)


def _fresh_or_refused(signed: sigv4.SignedRequest) -> None:
    refusal = None
    try:
        sigv4.check_freshness(signed, datetime.now(UTC))
    except SigV4Error as error:
        refusal = error.code
    assert refusal in (None, "AccessDenied", "RequestTimeTooSkewed")


@given(st.text(max_size=60), st.text(max_size=60), st.booleans())
def test_canonicalisation_never_fails(path: str, query: str, is_presigned: bool) -> None:
    sigv4.canonical_path(path)
    sigv4.canonical_query(query, presigned=is_presigned)


def _strptime_or_none(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, sigv4.AMZ_DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def _parsed_or_none(text: str) -> datetime | None:
    try:
        return sigv4.parse_amz_date(text)
    except ValueError:
        return None


# Mostly the 16-character basic form, with digits where digits belong but any value: the
# sliced fast path must agree with strptime on all of them, in and out of range.
_BASIC_SHAPED = st.builds(
    lambda date, time, t, z: f"{date}{t}{time}{z}",
    st.from_regex(r"[0-9]{8}", fullmatch=True),
    st.from_regex(r"[0-9]{6}", fullmatch=True),
    st.sampled_from("TT t"),
    st.sampled_from("ZZ z"),
)


@given(st.one_of(_BASIC_SHAPED, st.text(st.sampled_from("0123456789TZ "), max_size=18)))
def test_basic_dates_parse_as_strptime_does(text: str) -> None:
    expected = _strptime_or_none(text.strip())
    if expected is not None:
        assert _parsed_or_none(text) == expected
    else:
        # Not the basic form: only an HTTP date may still parse, never a different time.
        parsed = _parsed_or_none(text)
        assert parsed is None or not sigv4._BASIC_TIME.fullmatch(text.strip())
