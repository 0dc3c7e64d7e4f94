"""The aws-chunked decoder against a reference encoder written here from the AWS spec
("Signature Calculations for the Authorization Header: Transferring Payload in Multiple
Chunks", and its trailer variant): any chunking, any trailers, any transport pieces."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from random import Random

from hypothesis import given
from hypothesis import strategies as st

from gateway.s3.chunked import AwsChunkedDecoder, ChunkedError, ChunkSigner
from tests.fuzz import profiles
from tests.fuzz.drive import collect, pieces_of

AMZ_DATE = "20260101T000000Z"
SCOPE = "20260101/us-east-1/s3/aws4_request"
SEED = "a" * 64
EMPTY = hashlib.sha256(b"").hexdigest()
KEY = hashlib.sha256(b"any signing key").digest()


def _hmac_hex(message: str) -> str:
    return hmac.new(KEY, message.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Mode:
    signed: bool
    trailer: bool


MODES = [Mode(True, False), Mode(True, True), Mode(False, True)]


def encode(chunks: list[bytes], trailers: dict[str, str], mode: Mode) -> bytes:
    """The wire form of ``chunks`` (a final empty chunk is added) and ``trailers``."""
    out, previous = bytearray(), SEED
    for data in [*chunks, b""]:
        line = f"{len(data):x}"
        if mode.signed:
            digest = hashlib.sha256(data).hexdigest()
            previous = _hmac_hex(
                f"AWS4-HMAC-SHA256-PAYLOAD\n{AMZ_DATE}\n{SCOPE}\n{previous}\n{EMPTY}\n{digest}"
            )
            line += f";chunk-signature={previous}"
        out += line.encode() + b"\r\n" + data + (b"\r\n" if data else b"")
    if mode.trailer:
        canonical = "".join(f"{name}:{value}\n" for name, value in trailers.items())
        out += canonical.replace("\n", "\r\n").encode()
        if mode.signed:
            digest = hashlib.sha256(canonical.encode()).hexdigest()
            signature = _hmac_hex(
                f"AWS4-HMAC-SHA256-TRAILER\n{AMZ_DATE}\n{SCOPE}\n{previous}\n{digest}"
            )
            out += f"x-amz-trailer-signature:{signature}\r\n".encode()
    return bytes(out + b"\r\n")


def decode(
    body: bytes, cuts: list[int], mode: Mode
) -> tuple[bytes, Exception | None, dict[str, str]]:
    signer = ChunkSigner(KEY, AMZ_DATE, SCOPE, SEED) if mode.signed else None
    decoder = AwsChunkedDecoder(pieces_of(body, cuts), signer=signer, expect_trailer=mode.trailer)
    pieces, error = collect(decoder, (ChunkedError,))
    payload = b"".join(pieces)
    if error is None:
        assert decoder.decoded_length == len(payload)
    return payload, error, decoder.trailers


_NAME = st.from_regex(r"[a-z][a-z0-9-]{0,24}", fullmatch=True).filter(
    lambda n: n != "x-amz-trailer-signature"
)
_VALUE = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40).map(
    lambda v: v.strip()
)
trailers = st.dictionaries(_NAME, _VALUE, max_size=4)
chunk_lists = st.lists(st.binary(min_size=1, max_size=300), max_size=8)
cut_lists = st.lists(st.integers(min_value=0, max_value=4000), max_size=12)
modes = st.sampled_from(MODES)


@given(chunk_lists, trailers, cut_lists, modes)
def test_decodes_what_the_reference_encodes(
    chunks: list[bytes], sent: dict[str, str], cuts: list[int], mode: Mode
) -> None:
    sent = sent if mode.trailer else {}
    payload, error, received = decode(encode(chunks, sent, mode), cuts, mode)
    assert error is None
    assert payload == b"".join(chunks)
    assert received == sent


@given(chunk_lists, trailers, cut_lists, st.sampled_from(MODES[:2]), st.randoms())
def test_a_corrupted_byte_of_a_signed_body_is_refused(
    chunks: list[bytes], sent: dict[str, str], cuts: list[int], mode: Mode, rng: Random
) -> None:
    """No single-byte change is accepted unless it changes nothing that was signed (the
    letter case of a hex size or of a trailer name); nothing unverified is ever released."""
    sent = sent if mode.trailer else {}
    body = encode(chunks, sent, mode)
    original = b"".join(chunks)
    for _ in range(profiles.batch()):
        at = rng.randrange(len(body))
        byte = rng.choice([b for b in (rng.randrange(256), body[at] ^ 0x20, body[at] ^ 1)
                           if b != body[at]])  # fmt: skip
        corrupted = body[:at] + bytes([byte]) + body[at + 1 :]
        payload, error, received = decode(corrupted, cuts, mode)
        if error is None:
            assert (payload, received) == (original, sent)
            assert corrupted.lower() == body.lower()
        else:
            assert original.startswith(payload)
    profiles.fed(profiles.batch())


@given(chunk_lists, trailers, cut_lists, modes, st.randoms())
def test_a_truncated_body_is_incomplete(
    chunks: list[bytes], sent: dict[str, str], cuts: list[int], mode: Mode, rng: Random
) -> None:
    sent = sent if mode.trailer else {}
    body = encode(chunks, sent, mode)
    for _ in range(profiles.batch()):
        payload, error, _ = decode(body[: rng.randrange(len(body))], cuts, mode)
        assert isinstance(error, ChunkedError)
        assert error.code == "IncompleteBody"
        assert b"".join(chunks).startswith(payload)
    profiles.fed(profiles.batch())


_FRAMING = st.sampled_from(
    [b"\r\n", b"0", b"a", b";", b"=", b":", b"chunk-signature=", b"x-amz-trailer-signature:"]
)
junk = st.lists(st.one_of(_FRAMING, st.binary(max_size=20)), max_size=30).map(b"".join)


@given(junk, cut_lists, modes)
def test_any_bytes_decode_or_fail_with_an_s3_code(body: bytes, cuts: list[int], mode: Mode) -> None:
    payload, error, _ = decode(body, cuts, mode)
    if error is not None:
        assert isinstance(error, ChunkedError)
        assert error.code in ("IncompleteBody", "SignatureDoesNotMatch", "InvalidArgument",
                              "InvalidRequest")  # fmt: skip
    else:
        assert len(payload) <= len(body)
