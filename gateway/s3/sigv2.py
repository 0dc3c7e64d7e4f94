"""AWS Signature Version 2, query-string form only: the presigned URLs that boto3 and the
aws CLI still produce by default for S3 behind a custom endpoint.

Pure functions on plain values, mirroring botocore's ``HmacV1QueryAuth``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote

# The sub-resources that take part in the canonical resource (botocore's QSAOfInterest).
SUBRESOURCES = frozenset(
    {
        "accelerate", "acl", "cors", "defaultObjectAcl", "location", "logging", "partNumber",
        "policy", "requestPayment", "torrent", "versioning", "versionId", "versions",
        "website", "uploads", "uploadId", "response-content-type",
        "response-content-language", "response-expires", "response-cache-control",
        "response-content-disposition", "response-content-encoding", "delete", "lifecycle",
        "tagging", "restore", "storageClass", "notification", "replication", "analytics",
        "metrics", "inventory", "select", "select-type", "object-lock",
    }
)  # fmt: skip


class SigV2Error(Exception):
    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


@dataclass(frozen=True, slots=True)
class PresignedV2:
    access_key: str
    signature: str
    expires_epoch_s: int


def parse_presigned(query: Mapping[str, str]) -> PresignedV2:
    try:
        expires = int(query["Expires"])
        return PresignedV2(query["AWSAccessKeyId"], query["Signature"], expires)
    except (KeyError, ValueError):
        raise SigV2Error(
            "AccessDenied",
            "Query-string authentication requires AWSAccessKeyId, Signature and Expires",
        ) from None


def canonical_resource(raw_path: str, raw_query: str, bucket_prefix: str = "") -> str:
    """``/bucket/key`` as sent, plus the signed sub-resources in name order.

    ``bucket_prefix`` is ``/bucket`` for virtual-hosted-style requests, whose path lacks it.
    """
    pairs = []
    for item in raw_query.split("&") if raw_query else []:
        name, sep, value = item.partition("=")
        if name in SUBRESOURCES:
            pairs.append((name, unquote(value) if sep else None))
    pairs.sort(key=lambda pair: pair[0])
    resource = bucket_prefix + raw_path
    if pairs:
        resource += "?" + "&".join(n if v is None else f"{n}={v}" for n, v in pairs)
    return resource


def string_to_sign(method: str, headers: Mapping[str, str], expires: int, resource: str) -> str:
    """``headers`` has lower-cased names."""
    amz = sorted(
        (name, value.strip()) for name, value in headers.items() if name.startswith("x-amz-")
    )
    amz_lines = "".join(f"{name}:{value}\n" for name, value in amz)
    return (
        f"{method.upper()}\n{headers.get('content-md5', '')}\n"
        f"{headers.get('content-type', '')}\n{expires}\n{amz_lines}{resource}"
    )


def signature(secret_key: str, to_sign: str) -> str:
    digest = hmac.new(secret_key.encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def verify(secret_key: str, presigned: PresignedV2, to_sign: str) -> bool:
    return hmac.compare_digest(signature(secret_key, to_sign), presigned.signature)
