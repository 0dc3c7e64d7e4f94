"""A minimal SigV4 client for requests boto3 will not send: hand-made bodies, skewed clocks,
broken chunk signatures, short bodies, bare ``Expect: 100-continue`` exchanges.

Signing reuses the gateway's pure :mod:`gateway.sigv4` functions; those are checked
against botocore in ``tests/test_sigv4.py``, so a request signed here is one botocore would
sign the same way.
"""

from __future__ import annotations

import hashlib
import http.client
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

from gateway import sigv4

REGION = "us-east-1"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
UNSIGNED_PAYLOAD = sigv4.UNSIGNED_PAYLOAD
TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Credentials:
    endpoint: str  # http://host:port
    access_key: str
    secret_key: str

    @property
    def host(self) -> str:
        return urlsplit(self.endpoint).netloc

    @property
    def address(self) -> tuple[str, int]:
        parts = urlsplit(self.endpoint)
        assert parts.hostname is not None
        assert parts.port is not None
        return parts.hostname, parts.port


@dataclass(frozen=True)
class Signed:
    """A signed request, ready to send: headers include Authorization."""

    method: str
    target: str  # path plus "?query", exactly as sent
    headers: dict[str, str]
    signature: str
    amz_date: str
    credential: sigv4.Credential
    signing_key: bytes


@dataclass
class Response:
    status: int
    reason: str
    headers: dict[str, str]  # lower-cased names
    body: bytes = field(default=b"")

    def error_code(self) -> str | None:
        start = self.body.find(b"<Code>")
        if start < 0:
            return None
        return self.body[start + 6 : self.body.index(b"</Code>")].decode()


def object_path(bucket: str, key: str | None = None) -> str:
    """The path as botocore sends it: each key segment percent-encoded, "/" kept."""
    return f"/{bucket}" if key is None else f"/{bucket}/{quote(key, safe='/~')}"


def sign(
    creds: Credentials,
    method: str,
    path: str,
    *,
    query: str = "",
    headers: Mapping[str, str] | None = None,
    payload_hash: str = sigv4.EMPTY_SHA256_HEX,
    now: datetime | None = None,
    secret_key: str | None = None,
) -> Signed:
    """Sign with the Authorization header; every given header is signed along with host."""
    moment = now or datetime.now(UTC)
    amz_date = moment.strftime(sigv4.AMZ_DATE_FORMAT)
    credential = sigv4.Credential(creds.access_key, amz_date[:8], REGION, "s3")
    all_headers = {
        "host": creds.host,
        "x-amz-date": amz_date,
        "x-amz-content-sha256": payload_hash,
        **{name.lower(): value for name, value in (headers or {}).items()},
    }
    signed_names = sorted(all_headers)
    canonical = sigv4.canonical_request(
        method, path, query, all_headers, signed_names, payload_hash, presigned=False
    )
    key = sigv4.signing_key(secret_key or creds.secret_key, credential)
    signature = sigv4.hmac_hex(key, sigv4.string_to_sign(amz_date, credential.scope, canonical))
    all_headers["authorization"] = (
        f"{sigv4.ALGORITHM} Credential={creds.access_key}/{credential.scope}, "
        f"SignedHeaders={';'.join(signed_names)}, Signature={signature}"
    )
    target = f"{path}?{query}" if query else path
    return Signed(method, target, all_headers, signature, amz_date, credential, key)


def sign_payload(
    creds: Credentials,
    method: str,
    path: str,
    body: bytes,
    *,
    query: str = "",
    headers: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> Signed:
    """Sign a plain (not aws-chunked) body with its real SHA-256."""
    payload_hash = hashlib.sha256(body).hexdigest()
    return sign(
        creds, method, path, query=query, headers=headers, payload_hash=payload_hash, now=now
    )


def send(
    creds: Credentials, signed: Signed, body: bytes = b"", *, transfer_chunked: bool = False
) -> Response:
    """Send with http.client, which adds Content-Length unless the headers carry one.

    ``transfer_chunked`` sends the body with ``Transfer-Encoding: chunked`` and no length, in
    pieces, as SDKs do over https.
    """
    host, port = creds.address
    conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT_S)
    try:
        if transfer_chunked:
            pieces = [body[i : i + 8192] for i in range(0, len(body), 8192)]
            headers = {**signed.headers, "transfer-encoding": "chunked"}
            conn.request(
                signed.method,
                signed.target,
                body=iter(pieces),
                headers=headers,
                encode_chunked=True,
            )
        else:
            conn.request(signed.method, signed.target, body=body or None, headers=signed.headers)
        answer = conn.getresponse()
        data = answer.read()
        headers = {name.lower(): value for name, value in answer.getheaders()}
        return Response(answer.status, answer.reason, headers, data)
    finally:
        conn.close()


def request(
    creds: Credentials,
    method: str,
    path: str,
    body: bytes = b"",
    *,
    query: str = "",
    headers: Mapping[str, str] | None = None,
) -> Response:
    return send(creds, sign_payload(creds, method, path, body, query=query, headers=headers), body)


# aws-chunked bodies


def encode_chunked(
    chunks: Sequence[bytes],
    signed: Signed | None,
    trailers: Mapping[str, str] | None = None,
) -> bytes:
    """aws-chunked framing; chunk (and trailer) signatures chain from ``signed``'s seed."""
    out = bytearray()
    previous = signed.signature if signed else ""
    for data in [*chunks, b""]:
        header = f"{len(data):x}"
        if signed is not None:
            to_sign = sigv4.chunk_string_to_sign(
                signed.amz_date, signed.credential.scope, previous, hashlib.sha256(data).hexdigest()
            )
            previous = sigv4.hmac_hex(signed.signing_key, to_sign)
            header += f";chunk-signature={previous}"
        out += f"{header}\r\n".encode() + data + (b"\r\n" if data else b"")
    for name, value in (trailers or {}).items():
        out += f"{name}:{value}\r\n".encode()
    if signed is not None and trailers is not None:
        canonical = "".join(f"{n}:{v}\n" for n, v in trailers.items()).encode()
        to_sign = sigv4.trailer_string_to_sign(
            signed.amz_date, signed.credential.scope, previous, canonical
        )
        signature = sigv4.hmac_hex(signed.signing_key, to_sign)
        out += f"x-amz-trailer-signature:{signature}\r\n".encode()
    return bytes(out + b"\r\n")


def chunked_headers(decoded_length: int, trailer: str | None = None) -> dict[str, str]:
    headers = {
        "content-encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(decoded_length),
    }
    if trailer is not None:
        headers["x-amz-trailer"] = trailer
    return headers


# Raw sockets


def connect(creds: Credentials) -> socket.socket:
    sock = socket.create_connection(creds.address, timeout=TIMEOUT_S)
    sock.settimeout(TIMEOUT_S)
    return sock


def head_bytes(signed: Signed, extra: Mapping[str, str] | None = None) -> bytes:
    """The request line and headers, ending with the blank line."""
    lines = [f"{signed.method} {signed.target} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in {**signed.headers, **(extra or {})}.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class RawReader:
    """Reads HTTP/1.1 responses off a raw socket, interim ``100 Continue`` included."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = bytearray()

    def _fill(self) -> bool:
        data = self._sock.recv(65536)
        self._buffer += data
        return bool(data)

    def read_head(self) -> Response | None:
        """The next status line and headers, or None when the peer closed first."""
        while b"\r\n\r\n" not in self._buffer:
            if not self._fill():
                return None
        end = self._buffer.index(b"\r\n\r\n")
        head = self._buffer[:end].decode("latin-1").split("\r\n")
        del self._buffer[: end + 4]
        _, status, *reason = head[0].split(" ", 2)
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return Response(int(status), reason[0] if reason else "", headers)

    def read_body(self, response: Response) -> Response:
        length = int(response.headers.get("content-length", "0"))
        while len(self._buffer) < length:
            if not self._fill():
                break
        response.body = bytes(self._buffer[:length])
        del self._buffer[:length]
        return response

    def read_response(self) -> Response | None:
        head = self.read_head()
        return None if head is None else self.read_body(head)
