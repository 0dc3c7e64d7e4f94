"""Authenticating an S3 request: SigV4 in the header or in a presigned query."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web

from gateway.errors import AccessDenied, InvalidRequest, SignatureDoesNotMatch, error_for_code
from gateway.s3 import sigv4
from gateway.services.auth import AuthService
from metadata.models import AccessKeyRow


@dataclass(frozen=True, slots=True)
class Identity:
    key: AccessKeyRow
    signed: sigv4.SignedRequest
    signing_key: bytes


def lowered_headers(request: web.Request) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        lower = name.lower()
        headers[lower] = f"{headers[lower]},{value}" if lower in headers else value
    return headers


def _parse(request: web.Request, headers: dict[str, str]) -> sigv4.SignedRequest:
    if "authorization" in headers:
        return sigv4.parse_authorization(headers["authorization"], headers)
    if "X-Amz-Algorithm" in request.query or "X-Amz-Credential" in request.query:
        return sigv4.parse_presigned(request.query)
    if "AWSAccessKeyId" in request.query and "Signature" in request.query:
        # SigV2 presigned URLs (boto3 default in us-east-1): what S3 says in V4-only regions.
        raise InvalidRequest(
            "The authorization mechanism you have provided is not supported. "
            "Please use AWS4-HMAC-SHA256."
        )
    # Anonymous access is never granted.
    raise AccessDenied()


async def authenticate(request: web.Request, auth: AuthService) -> Identity:
    headers = lowered_headers(request)
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
    return Identity(key, signed, sigv4.signing_key(key.secret_key, signed.credential))
