"""The x-amz-server-side-encryption* headers: parsed into an SseRequest, and rendered on
responses from a version's envelope."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any

from gateway.crypto.envelope import SSE_C, SSE_KMS, SSE_S3
from gateway.crypto.keyring import KEY_BYTES
from gateway.errors import InvalidArgument, NotImplementedError_
from gateway.services.encryption import SseRequest

SSE = "x-amz-server-side-encryption"
KMS_KEY = "x-amz-server-side-encryption-aws-kms-key-id"
CUSTOMER = "x-amz-server-side-encryption-customer-"
COPY_CUSTOMER = "x-amz-copy-source-server-side-encryption-customer-"


def customer_key(headers: Mapping[str, str], prefix: str = CUSTOMER) -> SseRequest | None:
    """The SSE-C key of a request (or of its copy source), checked against its MD5."""
    algorithm = headers.get(prefix + "algorithm")
    key_b64 = headers.get(prefix + "key")
    md5_b64 = headers.get(prefix + "key-MD5")
    if algorithm is None and key_b64 is None and md5_b64 is None:
        return None
    if algorithm != "AES256":
        raise InvalidArgument(
            "The encryption algorithm specified is not valid.", ArgumentName=prefix + "algorithm"
        )
    try:
        key = base64.b64decode(key_b64 or "", validate=True)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise InvalidArgument(
            "The secret key was invalid for the specified algorithm.", ArgumentName=prefix + "key"
        )
    if md5_b64 != base64.b64encode(hashlib.md5(key).digest()).decode():
        raise InvalidArgument(
            "The calculated MD5 hash of the key did not match the hash that was provided.",
            ArgumentName=prefix + "key-MD5",
        )
    return SseRequest(SSE_C, customer_key=key, customer_key_md5=md5_b64)


def sse_request(headers: Mapping[str, str]) -> SseRequest | None:
    """What a write asks for: SSE-S3, SSE-KMS, SSE-C or nothing."""
    customer = customer_key(headers)
    mode = headers.get(SSE)
    if customer is not None:
        if mode is not None:
            raise InvalidArgument(
                "Server Side Encryption with Customer provided key is incompatible with the"
                " encryption method specified",
                ArgumentName=SSE,
            )
        return customer
    if mode is None:
        if KMS_KEY in headers:
            raise InvalidArgument(
                f"{KMS_KEY} is only valid with {SSE}: aws:kms", ArgumentName=KMS_KEY
            )
        return None
    if mode == "aws:kms:dsse":
        raise NotImplementedError_("Dual-layer SSE-KMS is not supported by Skybridge.")
    if mode not in (SSE_S3, SSE_KMS):
        raise InvalidArgument(
            "The encryption method specified is not supported", ArgumentName=SSE,
            ArgumentValue=mode,
        )  # fmt: skip
    if mode == SSE_S3 and KMS_KEY in headers:
        raise InvalidArgument(f"{KMS_KEY} is only valid with aws:kms", ArgumentName=KMS_KEY)
    return SseRequest(mode, kms_key_id=headers.get(KMS_KEY) if mode == SSE_KMS else None)


def read_key(headers: Mapping[str, str], prefix: str = CUSTOMER) -> bytes | None:
    """The customer key a read presents (GET, HEAD, a copy's source), if any."""
    parsed = customer_key(headers, prefix)
    return parsed.customer_key if parsed else None


def response_headers(
    encryption: Mapping[str, Any] | None, request_headers: Mapping[str, str]
) -> dict[str, str]:
    """The SSE headers AWS returns for a version with this envelope."""
    if encryption is None:
        return {}
    mode = encryption.get("mode")
    if mode == SSE_C:
        # The key's MD5 is echoed from the request (the key was checked; nothing is stored).
        headers = {CUSTOMER + "algorithm": "AES256"}
        md5 = request_headers.get(CUSTOMER + "key-MD5")
        if md5:
            headers[CUSTOMER + "key-MD5"] = md5
        return headers
    if mode == SSE_KMS:
        return {SSE: SSE_KMS, KMS_KEY: str(encryption.get("kms_key_id"))}
    return {SSE: SSE_S3}
