"""aws-chunked decoding: AWS examples, botocore's encoder, awkward splits, hostile input."""

from __future__ import annotations

import hashlib
import io
import random
from collections.abc import Iterable, Sequence

import pytest
from botocore.httpchecksum import AwsChunkedWrapper, Crc32Checksum

from gateway import checksums, sigv4
from gateway.s3.chunked import AwsChunkedDecoder, ChunkedError, ChunkSigner

DOC_SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
DOC_DATE = "20130524T000000Z"
DOC_CREDENTIAL = sigv4.Credential("AKIAIOSFODNN7EXAMPLE", "20130524", "us-east-1", "s3")


def _signer(seed: str = "5" * 64) -> ChunkSigner:
    return ChunkSigner(
        signing_key=sigv4.signing_key(DOC_SECRET_KEY, DOC_CREDENTIAL),
        amz_date=DOC_DATE,
        scope=DOC_CREDENTIAL.scope,
        seed_signature=seed,
    )


class _Pieces:
    """An async source yielding the given pieces (a class, so nothing needs finalising)."""

    def __init__(self, pieces: Iterable[bytes]) -> None:
        self._pieces = iter(pieces)

    def __aiter__(self) -> _Pieces:
        return self

    async def __anext__(self) -> bytes:
        try:
            return next(self._pieces)
        except StopIteration:
            raise StopAsyncIteration from None


def _split(body: bytes, cuts: Sequence[int]) -> list[bytes]:
    bounds = [0, *sorted(cuts), len(body)]
    return [body[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def _random_cuts(rng: random.Random, body: bytes) -> list[int]:
    return [rng.randrange(len(body) + 1) for _ in range(rng.randrange(1, 40))]


def _bytewise(body: bytes) -> list[bytes]:
    return [body[i : i + 1] for i in range(len(body))]


def _encode(
    chunks: Sequence[bytes],
    signer: ChunkSigner | None,
    trailers: dict[str, str] | None = None,
) -> bytes:
    """Test-only aws-chunked encoder, signing with the sigv4 chunk functions."""
    out = bytearray()
    previous = signer.seed_signature if signer else ""
    for data in [*chunks, b""]:
        header = f"{len(data):x}"
        if signer:
            chunk_hash = hashlib.sha256(data).hexdigest()
            to_sign = sigv4.chunk_string_to_sign(
                signer.amz_date, signer.scope, previous, chunk_hash
            )
            previous = sigv4.hmac_hex(signer.signing_key, to_sign)
            header += f";chunk-signature={previous}"
        out += f"{header}\r\n".encode() + data + (b"\r\n" if data else b"")
    for name, value in (trailers or {}).items():
        out += f"{name}:{value}\r\n".encode()
    if signer and trailers is not None:
        canonical = "".join(f"{n}:{v}\n" for n, v in trailers.items()).encode()
        to_sign = sigv4.trailer_string_to_sign(signer.amz_date, signer.scope, previous, canonical)
        out += f"x-amz-trailer-signature:{sigv4.hmac_hex(signer.signing_key, to_sign)}\r\n".encode()
    return bytes(out + b"\r\n")


async def _drain(decoder: AwsChunkedDecoder, into: bytearray) -> None:
    async for piece in decoder:
        into += piece


async def _decode(
    pieces: Iterable[bytes], signer: ChunkSigner | None, *, expect_trailer: bool
) -> tuple[bytes, AwsChunkedDecoder]:
    decoder = AwsChunkedDecoder(_Pieces(pieces), signer=signer, expect_trailer=expect_trailer)
    out = bytearray()
    async for piece in decoder:
        out += piece
    assert decoder.decoded_length == len(out)
    return bytes(out), decoder


async def _decode_error(
    body: bytes, signer: ChunkSigner | None, *, expect_trailer: bool = False
) -> str:
    with pytest.raises(ChunkedError) as info:
        await _decode([body], signer, expect_trailer=expect_trailer)
    return info.value.code


# AWS documentation examples


AWS_EXAMPLE_SIGNATURES = (
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
)
AWS_TRAILER_EXAMPLE_SIGNATURES = (
    "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
    "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
    "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
)


def _aws_example_body(signatures: Sequence[str]) -> bytes:
    body = bytearray()
    for size, signature in zip((65536, 1024, 0), signatures, strict=True):
        body += f"{size:x};chunk-signature={signature}\r\n".encode()
        body += b"a" * size + (b"\r\n" if size else b"")
    return bytes(body)


@pytest.mark.parametrize("split", ["whole", "bytewise", "random"])
async def test_aws_example_chunked_upload(split: str) -> None:
    # "Signature Calculations for the Authorization Header: Transferring Payload in
    # Multiple Chunks": 66560 bytes of "a" as 65536 + 1024 + 0.
    body = _aws_example_body(AWS_EXAMPLE_SIGNATURES) + b"\r\n"
    assert len(body) == 66824  # the example's Content-Length
    pieces = {
        "whole": [body],
        "bytewise": _bytewise(body),
        "random": _split(body, _random_cuts(random.Random(7), body)),
    }[split]
    seed = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
    data, decoder = await _decode(pieces, _signer(seed), expect_trailer=False)
    assert data == b"a" * 66560
    assert decoder.trailers == {}


async def test_aws_example_with_trailer() -> None:
    # "Signature calculations for trailing headers (chunked uploads)".
    body = (
        _aws_example_body(AWS_TRAILER_EXAMPLE_SIGNATURES)
        + b"x-amz-checksum-crc32c:sOO8/Q==\r\n"
        + b"x-amz-trailer-signature:"
        + b"d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n\r\n"
    )
    seed = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"
    for pieces in ([body], _split(body, _random_cuts(random.Random(3), body))):
        data, decoder = await _decode(pieces, _signer(seed), expect_trailer=True)
        assert data == b"a" * 66560
        assert decoder.trailers == {"x-amz-checksum-crc32c": "sOO8/Q=="}
    tampered = body.replace(b"sOO8/Q==", b"sOO8/Q=A")
    assert await _decode_error(tampered, _signer(seed), expect_trailer=True) == (
        "SignatureDoesNotMatch"
    )


# Round trips at every awkward boundary


SMALL_CHUNKS = [b"hello", b"\r\n\r\n", b"0;x", b"world!"]


@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
@pytest.mark.parametrize("with_trailer", [True, False], ids=["trailer", "no-trailer"])
async def test_every_two_piece_split(signed: bool, with_trailer: bool) -> None:
    signer = _signer() if signed else None
    trailers = {"x-amz-checksum-crc32": "NSRBwg=="} if with_trailer else None
    body = _encode(SMALL_CHUNKS, signer, trailers)
    expected = b"".join(SMALL_CHUNKS)
    for cut in range(len(body) + 1):
        data, decoder = await _decode(_split(body, [cut]), signer, expect_trailer=with_trailer)
        assert data == expected
        assert decoder.trailers == (trailers or {})


@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
async def test_bytewise_and_random_splits(signed: bool) -> None:
    rng = random.Random(11)
    signer = _signer() if signed else None
    chunks = [rng.randbytes(rng.randrange(1, 3000)) for _ in range(6)]
    trailers = {"x-amz-checksum-sha256": "x" * 44, "x-amz-meta-extra": "v"}
    body = _encode(chunks, signer, trailers)
    splits = [_bytewise(body)] + [_split(body, _random_cuts(rng, body)) for _ in range(20)]
    for pieces in splits:
        data, decoder = await _decode(pieces, signer, expect_trailer=True)
        assert data == b"".join(chunks)
        assert decoder.trailers == trailers


async def test_empty_payload() -> None:
    for signer in (_signer(), None):
        data, decoder = await _decode([_encode([], signer, {})], signer, expect_trailer=True)
        assert data == b""
        assert decoder.decoded_length == 0


@pytest.mark.parametrize("seed", range(5))
async def test_botocore_unsigned_trailer_encoding(seed: int) -> None:
    rng = random.Random(seed)
    payload = rng.randbytes(rng.randrange(0, 200_000))
    wrapper = AwsChunkedWrapper(
        io.BytesIO(payload),
        checksum_cls=Crc32Checksum,
        checksum_name="x-amz-checksum-crc32",
        chunk_size=rng.choice([1, 1000, 65536]) if payload else 1024,
    )
    body = wrapper.read()
    data, decoder = await _decode(_split(body, _random_cuts(rng, body)), None, expect_trailer=True)
    assert data == payload
    received = checksums.decode(decoder.trailers["x-amz-checksum-crc32"], "CRC32")
    hasher = checksums.new_hasher("CRC32")
    hasher.update(data)
    assert received == hasher.digest()


async def test_unsigned_chunk_is_streamed_not_buffered() -> None:
    payload = random.Random(5).randbytes(1024 * 1024)
    body = _encode([payload], None, {})
    pieces = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    decoder = AwsChunkedDecoder(_Pieces(pieces), signer=None, expect_trailer=True)
    sizes = [len(piece) async for piece in decoder]
    assert sum(sizes) == len(payload)
    assert max(sizes) <= 65536


# Signature failures


async def test_flipped_data_byte_is_rejected_before_yielding() -> None:
    signer = _signer()
    body = bytearray(_encode([b"A" * 100, b"B" * 100], signer))
    body[body.index(b"B") + 5] ^= 0x01
    decoder = AwsChunkedDecoder(_Pieces([bytes(body)]), signer=signer, expect_trailer=False)
    received = bytearray()
    with pytest.raises(ChunkedError) as info:
        await _drain(decoder, received)
    assert info.value.code == "SignatureDoesNotMatch"
    assert received == b"A" * 100  # the first chunk was genuine; nothing of the second


async def test_flipped_signature_and_wrong_seed() -> None:
    signer = _signer()
    body = _encode([b"data"], signer)
    sig_at = body.index(b"chunk-signature=") + len(b"chunk-signature=")
    flipped = body[:sig_at] + (b"1" if body[sig_at : sig_at + 1] != b"1" else b"2")
    flipped += body[sig_at + 1 :]
    assert await _decode_error(flipped, signer) == "SignatureDoesNotMatch"
    assert await _decode_error(body, _signer("6" * 64)) == "SignatureDoesNotMatch"


async def test_final_chunk_signature_is_checked() -> None:
    signer = _signer()
    body = _encode([b"data"], signer)
    last = body.rindex(b"chunk-signature=") + len(b"chunk-signature=")
    tampered = body[:last] + b"0" * 64 + body[last + 64 :]
    assert await _decode_error(tampered, signer) == "SignatureDoesNotMatch"


async def test_reordered_chunks_are_rejected() -> None:
    signer = _signer()
    first = _encode([b"one"], signer)
    second = _encode([b"two"], signer)
    # Both are validly signed from the same seed; splicing breaks the chain.
    spliced = first[: first.index(b"0;")] + second
    assert await _decode_error(spliced, signer) == "SignatureDoesNotMatch"


async def test_trailer_signature_required_and_checked() -> None:
    signer = _signer()
    trailers = {"x-amz-checksum-crc32": "NSRBwg=="}
    body = _encode([b"abc"], signer, trailers)
    tampered = body.replace(b"NSRBwg==", b"AAAAAA==")
    assert await _decode_error(tampered, signer, expect_trailer=True) == "SignatureDoesNotMatch"
    unsigned_trailer = _encode([b"abc"], None, trailers)
    # Same framing but with chunk signatures and no trailer signature line.
    without = body[: body.index(b"x-amz-trailer-signature")] + b"\r\n"
    assert await _decode_error(without, signer, expect_trailer=True) == "SignatureDoesNotMatch"
    data, _ = await _decode([unsigned_trailer], None, expect_trailer=True)
    assert data == b"abc"


# Truncation and malformed framing


@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
async def test_every_truncation_is_incomplete(signed: bool) -> None:
    signer = _signer() if signed else None
    body = _encode([b"hello", b"world"], signer, {"x-amz-checksum-crc32": "NSRBwg=="})
    for cut in range(len(body)):
        code = await _decode_error(body[:cut], signer, expect_trailer=True)
        assert code == "IncompleteBody", cut


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"zz\r\nhello\r\n0\r\n\r\n", "InvalidArgument"),
        (b"\r\n", "InvalidArgument"),
        (b"-5\r\nhello\r\n0\r\n\r\n", "InvalidArgument"),
        (b"11111111111111111\r\n", "InvalidArgument"),  # 17 hex digits
        (b"5\r\nhelloXX0\r\n\r\n", "InvalidArgument"),
        (b"3\r\nabc\r\n0\r\nno-colon-here\r\n\r\n", "InvalidArgument"),
        (b"3\r\nabc\r\n0\r\n:value\r\n\r\n", "InvalidArgument"),
        (b"3\r\nabc\r\n0\r\na:1\r\na:2\r\n\r\n", "InvalidArgument"),
    ],
)
async def test_malformed_unsigned(body: bytes, code: str) -> None:
    assert await _decode_error(body, None, expect_trailer=True) == code


async def test_trailer_not_declared() -> None:
    body = b"3\r\nabc\r\n0\r\nx-amz-checksum-crc32:NSRBwg==\r\n\r\n"
    assert await _decode_error(body, None, expect_trailer=False) == "InvalidRequest"


@pytest.mark.parametrize(
    "header",
    [b"3", b"3;chunk-signature=abc", b"3;chunk-signature=" + b"A" * 64, b"3;sig=" + b"a" * 64],
)
async def test_signed_chunk_needs_signature(header: bytes) -> None:
    body = header + b"\r\nabc\r\n0\r\n\r\n"
    assert await _decode_error(body, _signer()) == "InvalidArgument"


async def test_signed_chunk_size_is_bounded() -> None:
    body = b"7fffffff;chunk-signature=" + b"a" * 64 + b"\r\n" + b"x" * 100
    decoder = AwsChunkedDecoder(
        _Pieces([body]), signer=_signer(), expect_trailer=False, max_signed_chunk_bytes=1024
    )
    with pytest.raises(ChunkedError) as info:
        await _drain(decoder, bytearray())
    assert info.value.code == "InvalidArgument"


class _Endless:
    """A hostile source that never ends; counts how much the decoder pulled."""

    def __init__(self, prefix: bytes, piece: bytes) -> None:
        self.prefix = prefix
        self.piece = piece
        self.pulled = 0

    def __aiter__(self) -> _Endless:
        return self

    async def __anext__(self) -> bytes:
        if self.prefix:
            self.prefix, prefix = b"", self.prefix
            return prefix
        self.pulled += len(self.piece)
        return self.piece


@pytest.mark.parametrize("prefix", [b"", b"3\r\nabc\r\n0\r\n"], ids=["header", "trailer"])
async def test_endless_line_is_bounded(prefix: bytes) -> None:
    source = _Endless(prefix, b"1")
    decoder = AwsChunkedDecoder(
        source,
        signer=None,
        expect_trailer=True,
        max_chunk_header_bytes=256,
    )
    with pytest.raises(ChunkedError) as info:
        await _drain(decoder, bytearray())
    assert info.value.code == "InvalidArgument"
    assert source.pulled <= 300


async def test_long_line_in_one_piece_is_rejected() -> None:
    body = b"3\r\nabc\r\n0\r\nx-amz-meta-big:" + b"v" * 10_000 + b"\r\n\r\n"
    assert await _decode_error(body, None, expect_trailer=True) == "InvalidArgument"


async def test_too_many_trailer_lines() -> None:
    lines = b"".join(b"x-amz-meta-%d:v\r\n" % i for i in range(100))
    body = b"3\r\nabc\r\n0\r\n" + lines + b"\r\n"
    assert await _decode_error(body, None, expect_trailer=True) == "InvalidArgument"
