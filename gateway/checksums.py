"""Object checksums as S3 names them: streaming hashers, wire encoding, multipart combination.

Pure: standard library plus ``crc32c`` and ``awscrt`` for the fast CRC kernels. The CRC
combination for FULL_OBJECT multipart checksums is pure Python GF(2) arithmetic, generic over
the polynomial and width, so it needs no native support.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import crc32c
from awscrt import checksums as crt_checksums

# Upper-case names exactly as sent in x-amz-checksum-algorithm.
ALGORITHMS: tuple[str, ...] = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")


class Hasher(Protocol):
    """A running digest. ``digest()`` returns raw bytes (big-endian for CRCs)."""

    def update(self, data: bytes) -> None: ...

    def digest(self) -> bytes: ...


@dataclass(frozen=True)
class _CrcSpec:
    """A reflected CRC whose init and xorout are all ones (true of all three S3 CRCs)."""

    width: int
    reflected_poly: int
    kernel: Callable[[bytes, int], int]

    @property
    def size(self) -> int:
        return self.width // 8


_CRCS: dict[str, _CrcSpec] = {
    "CRC32": _CrcSpec(32, 0xEDB88320, lambda data, crc: zlib.crc32(data, crc)),
    "CRC32C": _CrcSpec(32, 0x82F63B78, lambda data, crc: int(crc32c.crc32c(data, crc))),
    "CRC64NVME": _CrcSpec(
        64, 0x9A6C9329AC4BC9B5, lambda data, crc: int(crt_checksums.crc64nvme(data, crc))
    ),
}

_DIGEST_SIZES: dict[str, int] = {
    "CRC32": 4,
    "CRC32C": 4,
    "CRC64NVME": 8,
    "SHA1": 20,
    "SHA256": 32,
}


class _CrcHasher:
    def __init__(self, spec: _CrcSpec) -> None:
        self._spec = spec
        self._crc = 0

    def update(self, data: bytes) -> None:
        self._crc = self._spec.kernel(data, self._crc)

    def digest(self) -> bytes:
        return self._crc.to_bytes(self._spec.size, "big")


def _normalise(algorithm: str) -> str:
    name = algorithm.upper()
    if name not in _DIGEST_SIZES:
        raise ValueError(f"unknown checksum algorithm: {algorithm!r}")
    return name


def new_hasher(algorithm: str) -> Hasher:
    """A fresh hasher for ``algorithm`` (case-insensitive); ValueError if unknown."""
    name = _normalise(algorithm)
    if name in _CRCS:
        return _CrcHasher(_CRCS[name])
    return hashlib.new(name.lower())


def digest_size(algorithm: str) -> int:
    """Length in bytes of the raw digest of ``algorithm``."""
    return _DIGEST_SIZES[_normalise(algorithm)]


def encode(digest: bytes) -> str:
    """The wire form of a digest: standard base64, as in x-amz-checksum-* headers."""
    return base64.b64encode(digest).decode("ascii")


def decode(value: str, algorithm: str) -> bytes:
    """Raw digest from its wire form; ValueError if not base64 or the wrong length."""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"checksum is not valid base64: {value!r}") from exc
    if len(raw) != digest_size(algorithm):
        raise ValueError(f"{algorithm} checksum must be {digest_size(algorithm)} bytes")
    return raw


def header_name(algorithm: str) -> str:
    """The request/response header carrying ``algorithm``, e.g. ``x-amz-checksum-crc32``."""
    return f"x-amz-checksum-{_normalise(algorithm).lower()}"


def composite(algorithm: str, part_digests: Sequence[bytes]) -> str:
    """AWS COMPOSITE multipart checksum: base64(hash(concat(part digests))) + "-N"."""
    hasher = new_hasher(algorithm)
    for part in part_digests:
        hasher.update(part)
    return f"{encode(hasher.digest())}-{len(part_digests)}"


def combine_full_object(algorithm: str, parts: Sequence[tuple[bytes, int]]) -> bytes:
    """FULL_OBJECT checksum: the CRC of the concatenated parts from (part CRC, part length).

    Only CRCs combine this way; ValueError for SHA algorithms.
    """
    name = _normalise(algorithm)
    if name not in _CRCS:
        raise ValueError(f"{algorithm} cannot be combined as a full-object checksum")
    spec = _CRCS[name]
    # With init == xorout the CRC of the empty message is 0, the identity of the fold.
    crc = 0
    for digest, length in parts:
        if len(digest) != spec.size:
            raise ValueError(f"{name} part digest must be {spec.size} bytes")
        crc = _crc_combine(spec, crc, int.from_bytes(digest, "big"), length)
    return crc.to_bytes(spec.size, "big")


# GF(2) polynomial arithmetic after zlib's crc32_combine (multmodp / x2nmodp), in the
# reflected bit order, so bit (width - 1) is x^0.


def _multmodp(spec: _CrcSpec, a: int, b: int) -> int:
    """a * b modulo the CRC polynomial."""
    product = 0
    mask = 1 << (spec.width - 1)
    while a:
        if a & mask:
            product ^= b
            a ^= mask
        mask >>= 1
        b = (b >> 1) ^ spec.reflected_poly if b & 1 else b >> 1
    return product


def _x8nmodp(spec: _CrcSpec, length: int) -> int:
    """x^(8 * length) modulo the CRC polynomial: the operator for ``length`` zero bytes."""
    result = 1 << (spec.width - 1)  # x^0
    square = 1 << (spec.width - 9)  # x^8: the operator for one zero byte
    n = length
    while n:
        if n & 1:
            result = _multmodp(spec, square, result)
        square = _multmodp(spec, square, square)
        n >>= 1
    return result


def _crc_combine(spec: _CrcSpec, crc1: int, crc2: int, length2: int) -> int:
    """CRC of A||B from CRC(A), CRC(B) and len(B); valid because init == xorout."""
    return _multmodp(spec, _x8nmodp(spec, length2), crc1) ^ crc2
