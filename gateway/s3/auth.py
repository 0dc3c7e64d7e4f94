"""Authenticating an S3 request: SigV4 in the header or in a presigned query."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web

from gateway import sigv4
from gateway.errors import AccessDenied, SignatureDoesNotMatch, error_for_code
from gateway.s3 import sigv2
from gateway.services.auth import AuthService
from metadata.models import AccessKeyRow


@dataclass(frozen=True, slots=True)
class Identity:
    key: AccessKeyRow
    signed: sigv4.SignedRequest
    signing_key: bytes

    @property
    def anonymous(self) -> bool:
        return not self.key.access_key_id


# A request with no signature at all: only bucket policies and ACLs can grant it anything.
ANONYMOUS = Identity(
    AccessKeyRow("", "", ""),
    sigv4.SignedRequest(
        credential=sigv4.Credential("", "", "", "s3"),
        amz_date="",
        signed_headers=(),
        signature="",
        payload_hash=sigv4.UNSIGNED_PAYLOAD,
        presigned=False,
        expires_s=None,
    ),
    b"",
)


def lowered_headers(request: web.Request) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        lower = name.lower()
        headers[lower] = f"{headers[lower]},{value}" if lower in headers else value
    return headers


def _parse(request: web.Request, headers: dict[str, str]) -> sigv4.SignedRequest:
    if "authorization" in headers:
        return sigv4.parse_authorization(headers["authorization"], headers)
    return sigv4.parse_presigned(request.query)


def _is_anonymous(request: web.Request, headers: dict[str, str]) -> bool:
    return "authorization" not in headers and not (
        "X-Amz-Algorithm" in request.query or "X-Amz-Credential" in request.query
    )


def _is_presigned_v2(request: web.Request) -> bool:
    return "AWSAccessKeyId" in request.query and "Signature" in request.query


async def _authenticate_v2(
    request: web.Request, auth: AuthService, headers: dict[str, str], domain: str | None
) -> Identity:
    """SigV2 query auth: what boto3 and the aws CLI presign by default for S3."""
    try:
        presigned = sigv2.parse_presigned(request.query)
    except sigv2.SigV2Error as exc:
        raise error_for_code(exc.code)(exc.message) from None
    if datetime.now(UTC).timestamp() > presigned.expires_epoch_s:
        raise AccessDenied("Request has expired")
    key = await auth.access_key(presigned.access_key)
    raw_path, _, raw_query = request.raw_path.partition("?")
    hostname = request.host.rsplit(":", 1)[0]
    prefix = ""
    if domain and hostname.endswith("." + domain):
        prefix = "/" + hostname[: -len(domain) - 1]
    resource = sigv2.canonical_resource(raw_path, raw_query, prefix)
    to_sign = sigv2.string_to_sign(request.method, headers, presigned.expires_epoch_s, resource)
    if not sigv2.verify(key.secret_key, presigned, to_sign):
        raise SignatureDoesNotMatch(AWSAccessKeyId=key.access_key_id, StringToSign=to_sign)
    # The body of a presigned request is never signed, whatever the signature version.
    signed = sigv4.SignedRequest(
        credential=sigv4.Credential(key.access_key_id, "", "", "s3"),
        amz_date="",
        signed_headers=(),
        signature=presigned.signature,
        payload_hash=sigv4.UNSIGNED_PAYLOAD,
        presigned=True,
        expires_s=None,
    )
    return Identity(key, signed, b"")


async def authenticate(
    request: web.Request, auth: AuthService, domain: str | None = None
) -> Identity:
    headers = lowered_headers(request)
    if "authorization" not in headers and _is_presigned_v2(request):
        return await _authenticate_v2(request, auth, headers, domain)
    if _is_anonymous(request, headers):
        return ANONYMOUS
    try:
        signed = _parse(request, headers)
        sigv4.check_freshness(signed, datetime.now(UTC))
    except sigv4.SigV4Error as exc:
        raise error_for_code(exc.code)(exc.message) from None
    key = await auth.access_key(signed.credential.access_key)
    raw_path, _, raw_query = request.raw_path.partition("?")
    canonical = sigv4.canonical_request(
        request.method,
        raw_path,
        raw_query,
        headers,
        signed.signed_headers,
        signed.payload_hash,
        presigned=signed.presigned,
    )
    if not sigv4.verify(key.secret_key, signed, canonical):
        raise SignatureDoesNotMatch(AWSAccessKeyId=key.access_key_id)
    return Identity(key, signed, sigv4.cached_signing_key(key.secret_key, signed.credential))
