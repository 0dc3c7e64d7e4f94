"""AWS Signature Version 4 for S3: parse, canonicalise and verify (the S3 edge), and sign
(the S3 driver's lean data path, the benchmarks' load generator).

Pure functions on plain values. The caller passes the method, the raw path exactly as it
arrived on the wire (still percent-encoded, without the query), the raw query string and a
header mapping with lower-cased names. Errors are :class:`SigV4Error` carrying an S3 error
code; the HTTP layer maps the code to its own error class.

References: "Authenticating Requests (AWS Signature Version 4)" in the Amazon S3 API guide,
and botocore's ``S3SigV4Auth`` / ``S3SigV4QueryAuth``, which the tests treat as the authority.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote_to_bytes, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_SHA256_HEX = hashlib.sha256(b"").hexdigest()
MAX_PRESIGNED_EXPIRES_S = 604800  # seven days, the S3 limit
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"

# Headers may carry one value or several (repeated header lines); several are joined by ",".
HeaderValue = str | Sequence[str]

_HEX64 = re.compile(r"[0-9a-f]{64}")
_DATE8 = re.compile(r"[0-9]{8}")
_BASIC_TIME = re.compile(r"[0-9]{8}T[0-9]{6}Z")
# A raw path made only of these is already in canonical form and is used byte for byte.
_CANONICAL_PATH = re.compile(r"(?:[A-Za-z0-9\-._~/]|%[0-9A-F]{2})*")


class SigV4Error(Exception):
    """An authentication failure; ``code`` is the S3 error code to answer with."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


@dataclass(frozen=True)
class Credential:
    access_key: str
    date: str  # YYYYMMDD
    region: str
    service: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


@dataclass(frozen=True)
class SignedRequest:
    """What a request claims about its signature, before verification."""

    credential: Credential
    amz_date: str  # YYYYMMDDTHHMMSSZ
    signed_headers: tuple[str, ...]
    signature: str
    payload_hash: str
    presigned: bool
    expires_s: int | None


# Parsing


def parse_amz_date(value: str) -> datetime:
    """UTC-aware time from x-amz-date basic format or an RFC 7231 ``Date`` header."""
    text = value.strip()
    try:
        return _basic_time(text)
    except ValueError:
        pass
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not an x-amz-date or HTTP date: {value!r}") from exc
    if parsed.tzinfo is None:
        raise ValueError(f"HTTP date without a zone: {value!r}")
    return parsed.astimezone(UTC)


def _basic_time(text: str) -> datetime:
    """``YYYYMMDDTHHMMSSZ`` as UTC. Every signed request parses one (twice), and
    ``strptime`` was a twentieth of a small GET's CPU: the common form is read by slicing,
    anything else by ``strptime``, which accepts exactly what it did before."""
    if _BASIC_TIME.fullmatch(text):
        with contextlib.suppress(ValueError):  # a day or hour out of range: strptime says
            return datetime(
                int(text[0:4]), int(text[4:6]), int(text[6:8]),
                int(text[9:11]), int(text[11:13]), int(text[13:15]), tzinfo=UTC,
            )  # fmt: skip
    return datetime.strptime(text, AMZ_DATE_FORMAT).replace(tzinfo=UTC)


def parse_credential(value: str, error_code: str) -> Credential:
    """``AKID/YYYYMMDD/region/service/aws4_request``; the key itself may contain "/"."""
    pieces = value.strip().rsplit("/", 4)
    if len(pieces) != 5 or pieces[4] != "aws4_request" or not all(pieces[:4]):
        raise SigV4Error(error_code, f"malformed credential: {value!r}")
    access_key, date, region, service = pieces[:4]
    if not _DATE8.fullmatch(date):
        raise SigV4Error(error_code, f"malformed credential date: {date!r}")
    return Credential(access_key, date, region, service)


def parse_authorization(value: str, headers: Mapping[str, str]) -> SignedRequest:
    """Parse an ``Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., ...``."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise SigV4Error("InvalidArgument", f"unsupported authorization type: {algorithm!r}")
    fields = _authorization_fields(rest)
    credential = parse_credential(fields["Credential"], "AuthorizationHeaderMalformed")
    signed_headers = _signed_headers(fields["SignedHeaders"], "AuthorizationHeaderMalformed")
    signature = _signature(fields["Signature"], "AuthorizationHeaderMalformed")
    amz_date = _header_amz_date(headers)
    _check_scope_date(credential, amz_date, "AuthorizationHeaderMalformed")
    payload_hash = headers.get("x-amz-content-sha256")
    if payload_hash is None:
        raise SigV4Error("MissingSecurityHeader", "missing x-amz-content-sha256")
    return SignedRequest(
        credential, amz_date, signed_headers, signature, payload_hash.strip(), False, None
    )


def parse_presigned(query: Mapping[str, str]) -> SignedRequest:
    """Parse the X-Amz-* parameters of a presigned URL (values already percent-decoded)."""
    code = "AuthorizationQueryParametersError"
    names = ("Algorithm", "Credential", "Date", "Expires", "SignedHeaders", "Signature")
    missing = [n for n in names if f"X-Amz-{n}" not in query]
    if missing:
        raise SigV4Error(code, f"missing query parameters: {', '.join(missing)}")
    if query["X-Amz-Algorithm"] != ALGORITHM:
        raise SigV4Error(code, "X-Amz-Algorithm only supports AWS4-HMAC-SHA256")
    credential = parse_credential(query["X-Amz-Credential"], code)
    amz_date = _basic_amz_date(query["X-Amz-Date"], code)
    _check_scope_date(credential, amz_date, code)
    return SignedRequest(
        credential=credential,
        amz_date=amz_date,
        signed_headers=_signed_headers(query["X-Amz-SignedHeaders"], code),
        signature=_signature(query["X-Amz-Signature"], code),
        payload_hash=query.get("X-Amz-Content-Sha256", UNSIGNED_PAYLOAD),
        presigned=True,
        expires_s=_expires(query["X-Amz-Expires"]),
    )


def check_freshness(req: SignedRequest, now: datetime, *, max_skew_s: int = 900) -> None:
    """Reject expired presigned URLs and header-signed requests too far from ``now``."""
    signed_at = parse_amz_date(req.amz_date)
    if req.presigned:
        if signed_at.timestamp() - max_skew_s > now.timestamp():
            raise SigV4Error("AccessDenied", "request is not yet valid")
        if now.timestamp() > signed_at.timestamp() + (req.expires_s or 0):
            raise SigV4Error("AccessDenied", "request has expired")
    elif abs(now.timestamp() - signed_at.timestamp()) > max_skew_s:
        raise SigV4Error(
            "RequestTimeTooSkewed",
            "the difference between the request time and the current time is too large",
        )


def _authorization_fields(rest: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for item in rest.split(","):
        name, sep, value = item.strip().partition("=")
        if sep and name in ("Credential", "SignedHeaders", "Signature"):
            fields[name] = value.strip()
    missing = {"Credential", "SignedHeaders", "Signature"} - fields.keys()
    if missing:
        raise SigV4Error("AuthorizationHeaderMalformed", f"missing {', '.join(sorted(missing))}")
    return fields


def _signed_headers(value: str, code: str) -> tuple[str, ...]:
    names = tuple(value.strip().split(";"))
    if not all(names) or any(n != n.lower() for n in names):
        raise SigV4Error(code, f"malformed SignedHeaders: {value!r}")
    # Signing the host is what binds the signature to this endpoint; AWS requires it.
    if "host" not in names:
        raise SigV4Error("AccessDenied", "the host header must be signed")
    return names


def _signature(value: str, code: str) -> str:
    signature = value.strip()
    if not _HEX64.fullmatch(signature):
        raise SigV4Error(code, "signature must be 64 lower-case hexadecimal characters")
    return signature


def _header_amz_date(headers: Mapping[str, str]) -> str:
    value = headers.get("x-amz-date") or headers.get("date")
    if value is None:
        raise SigV4Error("AccessDenied", "a valid x-amz-date or Date header is required")
    try:
        return parse_amz_date(value).strftime(AMZ_DATE_FORMAT)
    except ValueError as exc:
        raise SigV4Error("AccessDenied", "a valid x-amz-date or Date header is required") from exc


def _basic_amz_date(value: str, code: str) -> str:
    try:
        _basic_time(value)
    except ValueError as exc:
        raise SigV4Error(code, f"X-Amz-Date must be in ISO8601 basic format: {value!r}") from exc
    return value


def _check_scope_date(credential: Credential, amz_date: str, code: str) -> None:
    if amz_date[:8] != credential.date:
        raise SigV4Error(code, "credential date does not match the request date")


def _expires(value: str) -> int:
    code = "AuthorizationQueryParametersError"
    # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
    if not value.isascii() or not value.isdigit():
        raise SigV4Error(code, "X-Amz-Expires must be a non-negative integer")
    digits = value.lstrip("0") or "0"
    # A huge number is simply too large; int() would refuse one of over 4300 digits.
    expires = int(digits) if len(digits) <= 7 else MAX_PRESIGNED_EXPIRES_S + 1
    if not 1 <= expires <= MAX_PRESIGNED_EXPIRES_S:
        raise SigV4Error(code, "X-Amz-Expires must be between 1 and 604800 seconds")
    return expires


# Canonical request


def canonical_request(
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Mapping[str, HeaderValue],
    signed_headers: Sequence[str],
    payload_hash: str,
    *,
    presigned: bool,
) -> str:
    """The SigV4 canonical request as S3 computes it."""
    return "\n".join(
        (
            method.upper(),
            canonical_path(raw_path),
            canonical_query(raw_query, presigned=presigned),
            canonical_headers(headers, signed_headers),
            ";".join(signed_headers),
            payload_hash,
        )
    )


def canonical_path(raw_path: str) -> str:
    """S3 signs the path as sent; it is never normalised (no dot-segment removal).

    Clients that leave reserved characters unencoded on the wire ("!", "'", "(", space ...)
    still sign their encoded form, so such a path is decoded and re-encoded per segment the
    way botocore encodes keys. Segments are split first so an encoded "/" stays encoded.
    """
    if not raw_path:
        return "/"
    if _CANONICAL_PATH.fullmatch(raw_path):
        return raw_path
    return "/".join(quote(unquote_to_bytes(seg), safe="~") for seg in raw_path.split("/"))


def canonical_query(raw_query: str, *, presigned: bool) -> str:
    """Decode and re-encode every name and value, sort, drop X-Amz-Signature if presigned."""
    pairs: list[tuple[str, str]] = []
    for item in raw_query.split("&"):
        if not item:
            continue
        raw_name, _, raw_value = item.partition("=")
        name, value = _reencode(raw_name), _reencode(raw_value)
        if presigned and name == "X-Amz-Signature":
            continue
        pairs.append((name, value))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def _reencode(component: str) -> str:
    # "+" is a space in query strings (form encoding); botocore always sends %20 or %2B.
    return quote(unquote_to_bytes(component.replace("+", " ")), safe="-_.~")


def canonical_headers(headers: Mapping[str, HeaderValue], signed_headers: Sequence[str]) -> str:
    """``name:value\\n`` per signed header, values trimmed and inner whitespace collapsed."""
    lines = []
    for name in signed_headers:
        value = headers.get(name, "")
        values = [value] if isinstance(value, str) else list(value)
        lines.append(f"{name}:{','.join(' '.join(v.split()) for v in values)}\n")
    return "".join(lines)


# Signing


def hmac_hex(key: bytes, msg: str) -> str:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).hexdigest()


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def signing_key(secret_key: str, credential: Credential) -> bytes:
    """The derived key for one access key, day, region and service (safe to cache)."""
    key = _hmac(f"AWS4{secret_key}".encode(), credential.date)
    key = _hmac(key, credential.region)
    key = _hmac(key, credential.service)
    return _hmac(key, "aws4_request")


def string_to_sign(amz_date: str, scope: str, canonical_request: str) -> str:
    digest = hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


def compute_signature(secret_key: str, req: SignedRequest, canonical: str) -> str:
    key = cached_signing_key(secret_key, req.credential)
    return hmac_hex(key, string_to_sign(req.amz_date, req.credential.scope, canonical))


def verify(secret_key: str, req: SignedRequest, canonical: str) -> bool:
    """Constant-time comparison of the claimed and the computed signature."""
    expected = compute_signature(secret_key, req, canonical)
    return hmac.compare_digest(expected, req.signature)


def chunk_string_to_sign(
    amz_date: str, scope: str, previous_signature: str, chunk_sha256_hex: str
) -> str:
    """String to sign for one aws-chunked chunk (STREAMING-AWS4-HMAC-SHA256-PAYLOAD)."""
    return (
        f"{ALGORITHM}-PAYLOAD\n{amz_date}\n{scope}\n{previous_signature}\n"
        f"{EMPTY_SHA256_HEX}\n{chunk_sha256_hex}"
    )


def trailer_string_to_sign(
    amz_date: str, scope: str, previous_signature: str, trailer_bytes: bytes
) -> str:
    """String to sign for the trailer; ``trailer_bytes`` is ``name:value\\n`` per trailer."""
    digest = hashlib.sha256(trailer_bytes).hexdigest()
    return f"{ALGORITHM}-TRAILER\n{amz_date}\n{scope}\n{previous_signature}\n{digest}"


@functools.lru_cache(maxsize=64)
def cached_signing_key(secret_key: str, credential: Credential) -> bytes:
    """:func:`signing_key`, kept: it changes once a day per access key and region."""
    return signing_key(secret_key, credential)


def sign_headers(
    method: str,
    url: str,
    access_key: str,
    secret_key: str,
    region: str,
    headers: Mapping[str, str] | None = None,
    *,
    now: datetime | None = None,
) -> dict[str, str]:
    """Headers (lower-cased, with Authorization) that sign ``method url`` for S3, every
    given header included; the payload is not signed (UNSIGNED-PAYLOAD).

    ``url`` must already be percent-encoded the way it goes on the wire.
    """
    parts = urlsplit(url)
    amz_date = (now or datetime.now(UTC)).strftime(AMZ_DATE_FORMAT)
    credential = Credential(access_key, amz_date[:8], region, "s3")
    signed = {k.lower(): v for k, v in (headers or {}).items()}
    signed.update(
        {"host": parts.netloc, "x-amz-date": amz_date, "x-amz-content-sha256": UNSIGNED_PAYLOAD}
    )
    names = sorted(signed)
    canonical = canonical_request(
        method, parts.path or "/", parts.query, signed, names, UNSIGNED_PAYLOAD, presigned=False
    )
    to_sign = string_to_sign(amz_date, credential.scope, canonical)
    signature = hmac_hex(cached_signing_key(secret_key, credential), to_sign)
    signed["authorization"] = (
        f"{ALGORITHM} Credential={access_key}/{credential.scope},"
        f" SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return signed
