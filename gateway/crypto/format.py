"""The encrypted object format (version 1). Format constants: changing any of them makes
stored objects unreadable; a new format gets a new version byte.

Each object version (or multipart upload) has its own random 256-bit data key and a random
16-byte salt. Part ``p`` (0 for a single-part object) is sealed with its own key,
HKDF-SHA256(data key, salt, "skybridge part" || p). Its plaintext is cut into chunks of
``CHUNK`` bytes (the last may be shorter; an empty part is one empty chunk), each sealed
with AES-256-GCM under a 12-byte nonce made of ``p`` and the chunk index, with associated
data binding the format version, the salt, ``p``, the index and whether it is the last
chunk. Chunks therefore cannot be reordered, truncated, or moved between parts or objects
without the GCM tag failing. A stored part is the concatenation of ``ciphertext || tag`` of
its chunks: ``stored_size(n) = n + TAG * chunks(n)``, so a plaintext range maps to a stored
range by arithmetic alone and a ranged read fetches and opens only the chunks it needs.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

FORMAT_VERSION = 1
CHUNK = 64 * 1024
TAG = 16
SEALED_CHUNK = CHUNK + TAG


class ChunkTampered(Exception):
    """A chunk failed authentication: it was altered, moved or truncated."""


def chunks(size: int) -> int:
    """How many chunks a part of ``size`` plaintext bytes has (an empty part has one)."""
    return max(1, -(-size // CHUNK))


def stored_size(size: int) -> int:
    return size + TAG * chunks(size)


def chunk_range(first: int, last: int) -> tuple[int, int]:
    """The chunks holding plaintext bytes ``first``..``last`` (inclusive)."""
    return first // CHUNK, last // CHUNK


def stored_span(first_chunk: int, last_chunk: int, size: int) -> tuple[int, int]:
    """The stored byte range (start, length) of chunks ``first_chunk``..``last_chunk``."""
    start = first_chunk * SEALED_CHUNK
    end = min((last_chunk + 1) * SEALED_CHUNK, stored_size(size))
    return start, end - start


def part_key(data_key: bytes, salt: bytes, part: int) -> bytes:
    info = b"skybridge part" + struct.pack(">I", part)
    return HKDF(hashes.SHA256(), 32, salt, info).derive(data_key)


# A chunk's nonce is the part number and the chunk index (">IQ"); its associated data the
# format version, salt, part, index and last-chunk flag (">B16sIQ?"). Each splits into a
# head fixed per part and the index (and flag), so the head is packed once per part.
_INDEX = struct.Struct(">Q")
_LAST = (b"\x00", b"\x01")


class PartCipher:
    """Seals and opens the chunks of one part."""

    def __init__(self, data_key: bytes, salt: bytes, part: int) -> None:
        self._aead = AESGCM(part_key(data_key, salt, part))
        self._part = part
        self._nonce_head = struct.pack(">I", part)
        self._aad_head = struct.pack(">B16sI", FORMAT_VERSION, salt, part)

    def _nonce_and_aad(self, index: int, last: bool) -> tuple[bytes, bytes]:
        counter = _INDEX.pack(index)
        return self._nonce_head + counter, self._aad_head + counter + _LAST[last]

    def _tampered(self, index: int) -> ChunkTampered:
        return ChunkTampered(f"chunk {index} of part {self._part} is not authentic")

    def seal(self, index: int, plaintext: bytes | memoryview, last: bool) -> bytes:
        nonce, aad = self._nonce_and_aad(index, last)
        return self._aead.encrypt(nonce, plaintext, aad)

    def open_batch_into(
        self, index: int, batch: Sequence[memoryview], final: int, out: memoryview
    ) -> tuple[int, int, ChunkTampered | None]:
        """Open consecutive sealed chunks, the first being chunk ``index`` of a part whose
        last chunk is ``final``, back to back into ``out`` (no copy of the results). Stops
        at the first that fails: (plaintext bytes opened, the next index, the failure or
        None). The hot loop of an encrypted GET: ``_nonce_and_aad`` inlined, names looked up
        once per batch."""
        decrypt, pack, last = self._aead.decrypt_into, _INDEX.pack, _LAST
        nonce_head, aad_head = self._nonce_head, self._aad_head
        at = 0
        for sealed in batch:
            end = at + len(sealed) - TAG
            counter = pack(index)
            try:
                decrypt(nonce_head + counter, sealed, aad_head + counter + last[index == final],
                        out[at:end])  # fmt: skip
            except InvalidTag:
                return at, index, self._tampered(index)
            at = end
            index += 1
        return at, index, None

    def open(self, index: int, sealed: bytes | memoryview, last: bool) -> bytes:
        nonce, aad = self._nonce_and_aad(index, last)
        try:
            return self._aead.decrypt(nonce, sealed, aad)
        except InvalidTag:
            raise self._tampered(index) from None
