"""Which writes are encrypted and with what key, and the data keys of stored versions.

Precedence for a write: what the request asks for, else the bucket's default encryption,
else SSE-S3 when the gateway encrypts at rest everywhere, else nothing.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from typing import Any

from gateway.crypto.envelope import CUSTOMER_KEK, SSE_C, SSE_KMS, SSE_S3, Envelope
from gateway.crypto.keyring import (
    KeyRing,
    KeyRingError,
    customer_key_hmac,
    unwrap,
    wrap,
)
from gateway.errors import (
    AccessDenied,
    InternalError,
    InvalidRequest,
    KMSNotFoundException,
)

SALT_BYTES = 16


@dataclass(frozen=True, slots=True)
class SseRequest:
    """What a request says about encryption (its x-amz-server-side-encryption* headers)."""

    mode: str  # SSE_S3, SSE_KMS or SSE_C
    kms_key_id: str | None = None
    customer_key: bytes | None = None
    customer_key_md5: str | None = None


class EncryptionService:
    def __init__(
        self, keyring: KeyRing, *, everywhere: bool = False, allow_sse_c_over_http: bool = False
    ) -> None:
        self._keyring = keyring
        self._everywhere = everywhere
        self._allow_plain_sse_c = allow_sse_c_over_http

    def check_transport(self, request: SseRequest | None, secure: bool) -> None:
        customer = request is not None and request.mode == SSE_C
        if customer and not (secure or self._allow_plain_sse_c):
            raise InvalidRequest(
                "Requests specifying Server Side Encryption with Customer provided keys must be"
                " made over a secure connection."
            )

    def check_read_transport(self, customer_key: bytes | None, secure: bool) -> None:
        if customer_key is not None:
            self.check_transport(SseRequest(SSE_C, customer_key=customer_key), secure)

    def choose(
        self,
        requested: SseRequest | None,
        bucket_default: dict[str, Any] | None,
        secure: bool,
        required: bool = False,
    ) -> SseRequest | None:
        """``required``: the placement policy puts a replica where only ciphertext may go."""
        self.check_transport(requested, secure)
        if requested is not None:
            return requested
        if bucket_default is not None:
            return SseRequest(
                str(bucket_default.get("SSEAlgorithm", SSE_S3)),
                bucket_default.get("KMSMasterKeyID"),
            )
        return SseRequest(SSE_S3) if self._everywhere or required else None

    def check_kms_key(self, key_id: str | None) -> None:
        if key_id is not None and key_id not in self._keyring.keys:
            raise KMSNotFoundException(f"Invalid keyId {key_id}")

    def new_envelope(self, request: SseRequest) -> tuple[Envelope, bytes]:
        """A fresh data key for one version (or upload), and its envelope."""
        data_key = os.urandom(32)
        return self._wrapped(request, data_key, os.urandom(SALT_BYTES)), data_key

    def rewrap(self, envelope: Envelope, data_key: bytes, request: SseRequest) -> Envelope:
        """``envelope`` (whose data key is ``data_key``) wrapped as ``request`` asks instead:
        the same stored bytes open under another key, so a copy needs no re-encryption."""
        wrapped = self._wrapped(request, data_key, envelope.salt)
        return wrapped.with_checksums(envelope.stored_checksums, envelope.parts)

    def _wrapped(self, request: SseRequest, data_key: bytes, salt: bytes) -> Envelope:
        if request.mode == SSE_C:
            assert request.customer_key is not None, "the edge parsed the customer key"
            wrapped = wrap(request.customer_key, data_key)
            hmac_value = customer_key_hmac(salt, request.customer_key)
            return Envelope(SSE_C, CUSTOMER_KEK, wrapped, salt, None, hmac_value)
        kms_key = request.kms_key_id if request.mode == SSE_KMS else None
        self.check_kms_key(kms_key)
        kek, wrapped = self._keyring.wrap(data_key, kms_key)
        kms_id = (kms_key or kek) if request.mode == SSE_KMS else None
        return Envelope(request.mode, kek, wrapped, salt, kms_id)

    def data_key(self, envelope: Envelope, customer_key: bytes | None) -> bytes:
        """The version's data key; for SSE-C only with the right customer key."""
        if envelope.mode == SSE_C:
            if customer_key is None:
                raise InvalidRequest(
                    "The object was stored using a form of Server Side Encryption. The correct"
                    " parameters must be provided to retrieve the object."
                )
            expected = envelope.customer_key_hmac or ""
            if not secrets.compare_digest(customer_key_hmac(envelope.salt, customer_key), expected):
                raise AccessDenied(
                    "Requests specifying Server Side Encryption with Customer provided keys must"
                    " provide the correct secret key."
                )
            return unwrap(customer_key, envelope.wrapped_key)
        try:
            return self._keyring.unwrap(envelope.kek, envelope.wrapped_key)
        except KeyRingError as exc:
            # The key ring lost a key that stored data still needs: an operator error.
            raise InternalError(f"The data key cannot be unwrapped: {exc}") from None

    def etag(self, envelope: Envelope | None, md5_hex: str) -> str:
        """As AWS: the plaintext MD5 for SSE-S3 and clear objects, not an MD5 otherwise."""
        if envelope is None or envelope.mode == SSE_S3:
            return md5_hex
        return hashlib.md5(secrets.token_bytes(16)).hexdigest()
