"""What PostgreSQL keeps about an encrypted version (the ``encryption`` jsonb column), and
the encrypting stream that produces the stored bytes."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from gateway import checksums
from gateway.crypto.format import CHUNK, FORMAT_VERSION, PartCipher, chunks, stored_size

SSE_S3 = "AES256"
SSE_KMS = "aws:kms"
SSE_C = "SSE-C"
# Stored bytes are checked against a checksum of the ciphertext: replication and scrub need
# no key to verify a copy.
STORED_ALGORITHM = "CRC64NVME"
CUSTOMER_KEK = "customer"


@dataclass(frozen=True, slots=True)
class Envelope:
    mode: str  # SSE_S3, SSE_KMS or SSE_C
    kek: str  # the key ring key that wraps the data key, or CUSTOMER_KEK
    wrapped_key: str
    salt: bytes
    kms_key_id: str | None = None
    customer_key_hmac: str | None = None
    # CRC64NVME of each stored part, once written.
    stored_checksums: tuple[str, ...] = field(default=())
    # The part number each part was sealed under (empty for a single-part object: part 0).
    parts: tuple[int, ...] = field(default=())

    def as_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "chunk": CHUNK,
            "mode": self.mode,
            "kek": self.kek,
            "wrapped_key": self.wrapped_key,
            "salt": base64.b64encode(self.salt).decode(),
            "kms_key_id": self.kms_key_id,
            "customer_key_hmac": self.customer_key_hmac,
            "stored_checksums": list(self.stored_checksums),
            "parts": list(self.parts),
        }

    def with_checksums(self, stored: Sequence[str], parts: Sequence[int] = ()) -> Envelope:
        return replace(self, stored_checksums=tuple(stored), parts=tuple(parts))


def from_json(raw: Mapping[str, Any]) -> Envelope:
    if raw.get("format") != FORMAT_VERSION or raw.get("chunk") != CHUNK:
        raise ValueError(f"unknown encryption format {raw.get('format')}/{raw.get('chunk')}")
    return Envelope(
        mode=str(raw["mode"]),
        kek=str(raw["kek"]),
        wrapped_key=str(raw["wrapped_key"]),
        salt=base64.b64decode(raw["salt"]),
        kms_key_id=raw.get("kms_key_id"),
        customer_key_hmac=raw.get("customer_key_hmac"),
        stored_checksums=tuple(raw.get("stored_checksums") or ()),
        parts=tuple(int(p) for p in raw.get("parts") or ()),
    )


@dataclass(frozen=True, slots=True)
class StoredSegment:
    """One backend object of a version, as its bytes lie on the backend."""

    key: str
    size: int
    algorithm: str
    checksum: str | None


def stored_segments(
    keys: Sequence[str],
    sizes: Sequence[int],
    plain_checksums: Sequence[str | None],
    algorithm: str | None,
    encryption: Mapping[str, Any] | None,
) -> list[StoredSegment]:
    """What each backend object of a version must be: its plaintext checksum when it is
    stored in clear, else its ciphertext size and checksum."""
    if encryption is None:
        return [
            StoredSegment(k, s, algorithm or STORED_ALGORITHM, c)
            for k, s, c in zip(keys, sizes, plain_checksums, strict=True)
        ]
    stored = list(encryption.get("stored_checksums") or []) + [None] * len(keys)
    return [
        StoredSegment(k, stored_size(s), STORED_ALGORITHM, c)
        for k, s, c in zip(keys, sizes, stored, strict=False)
    ]


class EncryptingStream:
    """Seals a part's plaintext chunk by chunk; ``checksum`` is the ciphertext's CRC64NVME
    once the stream is exhausted."""

    def __init__(self, body: AsyncIterator[bytes], cipher: PartCipher, size: int) -> None:
        self._body = body
        self._cipher = cipher
        self._last_index = chunks(size) - 1
        self._hasher = checksums.new_hasher(STORED_ALGORITHM)
        self.checksum: str | None = None

    def _seal(self, index: int, plaintext: bytes | memoryview) -> bytes:
        sealed = self._cipher.seal(index, plaintext, index == self._last_index)
        self._hasher.update(sealed)
        return sealed

    async def __aiter__(self) -> AsyncIterator[bytes]:
        buffer = bytearray()
        index = 0
        async for piece in self._body:
            # Whole chunks are sealed straight from the piece received: only bytes of a
            # chunk split between pieces are copied, to put them together.
            data: bytes | bytearray = piece
            if buffer:
                buffer += piece
                data = buffer
            # Every whole chunk but one that may be the last: sealed and sent together, one
            # write per piece received rather than per chunk.
            whole = len(data) // CHUNK
            if whole and len(data) == whole * CHUNK and index + whole - 1 == self._last_index:
                whole -= 1
            if whole:
                with memoryview(data) as view:
                    sealed = [
                        self._seal(index + n, view[n * CHUNK : (n + 1) * CHUNK])
                        for n in range(whole)
                    ]
                index += whole
                yield b"".join(sealed)
            if data is buffer:
                del buffer[: whole * CHUNK]
            else:
                buffer += memoryview(piece)[whole * CHUNK :]
        # The body ended: what is left is the last chunk (possibly empty). A body shorter or
        # longer than declared was already refused by the verifying stream underneath.
        yield self._seal(index, bytes(buffer))
        self.checksum = checksums.encode(self._hasher.digest())
