"""Checksums: known vectors, wire encoding, COMPOSITE and FULL_OBJECT multipart values."""

from __future__ import annotations

import base64
import hashlib
import random

import pytest
from awscrt import checksums as crt_checksums

from gateway import checksums

CRCS = ("CRC32", "CRC32C", "CRC64NVME")

# Catalogue check values: the CRC of b"123456789" (reveng.sourceforge.io CRC catalogue).
CHECK_VALUES = {
    "CRC32": 0xCBF43926,
    "CRC32C": 0xE3069283,
    "CRC64NVME": 0xAE8B14860A799888,
}


def _digest(algorithm: str, data: bytes) -> bytes:
    hasher = checksums.new_hasher(algorithm)
    hasher.update(data)
    return hasher.digest()


@pytest.mark.parametrize("algorithm", CRCS)
def test_crc_check_values(algorithm: str) -> None:
    size = 8 if algorithm == "CRC64NVME" else 4
    expected = CHECK_VALUES[algorithm].to_bytes(size, "big")
    assert _digest(algorithm, b"123456789") == expected


@pytest.mark.parametrize("algorithm", checksums.ALGORITHMS)
def test_incremental_equals_one_shot(algorithm: str) -> None:
    data = random.Random(1).randbytes(10_000)
    hasher = checksums.new_hasher(algorithm.lower())
    for start in range(0, len(data), 777):
        hasher.update(data[start : start + 777])
    assert hasher.digest() == _digest(algorithm, data)


def test_sha_hashers_are_hashlib() -> None:
    assert _digest("sha1", b"abc") == hashlib.sha1(b"abc").digest()
    assert _digest("Sha256", b"abc") == hashlib.sha256(b"abc").digest()


def test_empty_digests() -> None:
    assert _digest("CRC32", b"") == b"\x00\x00\x00\x00"
    assert _digest("CRC64NVME", b"") == bytes(8)


def test_unknown_algorithm() -> None:
    with pytest.raises(ValueError, match="unknown checksum algorithm"):
        checksums.new_hasher("MD4")
    with pytest.raises(ValueError, match="unknown checksum algorithm"):
        checksums.header_name("crc16")


@pytest.mark.parametrize("algorithm", checksums.ALGORITHMS)
def test_encode_decode_round_trip(algorithm: str) -> None:
    digest = _digest(algorithm, b"payload")
    assert checksums.decode(checksums.encode(digest), algorithm) == digest


def test_known_wire_value() -> None:
    # From the AWS trailing-headers example: CRC32C of 66560 bytes of "a".
    assert checksums.encode(_digest("CRC32C", b"a" * 66560)) == "sOO8/Q=="


@pytest.mark.parametrize(
    ("value", "algorithm"),
    [
        ("not base64!", "CRC32"),
        ("AAAA", "CRC32"),  # 3 bytes
        ("AAAAAA==", "CRC64NVME"),  # 4 bytes
        (base64.b64encode(bytes(19)).decode(), "SHA1"),
        ("AAAAAA=", "CRC32"),  # bad padding
    ],
)
def test_decode_rejects(value: str, algorithm: str) -> None:
    with pytest.raises(ValueError, match="checksum"):
        checksums.decode(value, algorithm)


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("CRC32", "x-amz-checksum-crc32"),
        ("crc32c", "x-amz-checksum-crc32c"),
        ("CRC64NVME", "x-amz-checksum-crc64nvme"),
        ("SHA1", "x-amz-checksum-sha1"),
        ("sha256", "x-amz-checksum-sha256"),
    ],
)
def test_header_name(algorithm: str, expected: str) -> None:
    assert checksums.header_name(algorithm) == expected


@pytest.mark.parametrize("algorithm", checksums.ALGORITHMS)
def test_composite(algorithm: str) -> None:
    parts = [b"first part", b"second", b""]
    digests = [_digest(algorithm, p) for p in parts]
    expected = checksums.encode(_digest(algorithm, b"".join(digests)))
    assert checksums.composite(algorithm, digests) == f"{expected}-3"


def test_composite_sha256_by_hand() -> None:
    digests = [hashlib.sha256(b"a").digest(), hashlib.sha256(b"b").digest()]
    whole = hashlib.sha256(digests[0] + digests[1]).digest()
    assert checksums.composite("SHA256", digests) == base64.b64encode(whole).decode() + "-2"


def _random_split(rng: random.Random, data: bytes) -> list[bytes]:
    cuts = sorted(rng.randrange(len(data) + 1) for _ in range(rng.randrange(1, 8)))
    bounds = [0, *cuts, len(data)]
    parts = [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    parts.insert(rng.randrange(len(parts) + 1), b"")  # always include a zero-length part
    return parts


@pytest.mark.parametrize("algorithm", CRCS)
@pytest.mark.parametrize("seed", range(12))
def test_combine_full_object_equals_crc_of_whole(algorithm: str, seed: int) -> None:
    rng = random.Random(seed)
    data = rng.randbytes(rng.randrange(0, 50_000))
    parts = _random_split(rng, data)
    combined = checksums.combine_full_object(
        algorithm, [(_digest(algorithm, p), len(p)) for p in parts]
    )
    assert combined == _digest(algorithm, data)


def test_combine_large_lengths_match_reference_implementations() -> None:
    # Part lengths well beyond what the tests hash, checked against awscrt.
    crc1, crc2, length2 = 0x12345678, 0x9ABCDEF0, 5 * 1024**3 + 17
    combined32 = checksums.combine_full_object(
        "CRC32", [(crc1.to_bytes(4, "big"), 1), (crc2.to_bytes(4, "big"), length2)]
    )
    reference = crt_checksums.combine_crc32(crc1, crc2, length2)
    assert int.from_bytes(combined32, "big") == reference
    c64a, c64b = 0x0123456789ABCDEF, 0xFEDCBA9876543210
    combined64 = checksums.combine_full_object(
        "CRC64NVME", [(c64a.to_bytes(8, "big"), 3), (c64b.to_bytes(8, "big"), length2)]
    )
    assert int.from_bytes(combined64, "big") == crt_checksums.combine_crc64nvme(c64a, c64b, length2)


def test_combine_single_part_is_identity() -> None:
    digest = _digest("CRC32C", b"only part")
    assert checksums.combine_full_object("CRC32C", [(digest, 9)]) == digest
    assert checksums.combine_full_object("CRC32C", []) == bytes(4)


def test_combine_rejects_sha_and_bad_digests() -> None:
    with pytest.raises(ValueError, match="cannot be combined"):
        checksums.combine_full_object("SHA256", [(bytes(32), 1)])
    with pytest.raises(ValueError, match="must be 4 bytes"):
        checksums.combine_full_object("CRC32", [(bytes(8), 1)])
