"""A lean SigV4-signed aiohttp S3 client for load generation.

botocore spends about ten times the CPU of a plain aiohttp request on a small request, so
a benchmark driven by boto3 measures boto3. This client signs with UNSIGNED-PAYLOAD (no
body hashing), streams bodies both ways and never keeps a body it reads.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import quote

import aiohttp

from gateway.sigv4 import sign_headers

KIB = 1024
MIB = 1024 * KIB
READ_CHUNK_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class Credentials:
    access_key: str
    secret_key: str
    region: str = "us-east-1"


def sign(
    method: str,
    url: str,
    credentials: Credentials,
    headers: Mapping[str, str] | None = None,
    *,
    now: datetime | None = None,
) -> dict[str, str]:
    """Headers (with Authorization) for ``method url``; the payload is not signed."""
    return sign_headers(
        method,
        url,
        credentials.access_key,
        credentials.secret_key,
        credentials.region,
        headers,
        now=now,
    )


def object_url(endpoint: str, bucket: str, key: str = "", query: str = "") -> str:
    path = f"/{bucket}/{quote(key, safe='/-_.~')}" if key else f"/{bucket}"
    return f"{endpoint}{path}{'?' + query if query else ''}"


async def generated_body(size: int, chunk_bytes: int = MIB) -> AsyncIterator[bytes]:
    """``size`` bytes made on the fly from one reused chunk: O(chunk) memory."""
    chunk = bytes(range(256)) * (chunk_bytes // 256)
    remaining = size
    while remaining > 0:
        piece = chunk if remaining >= len(chunk) else chunk[:remaining]
        remaining -= len(piece)
        yield piece


class S3Error(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}: {body[:300]!r}")
        self.status = status


class LeanS3Client:
    """Path-style requests against one endpoint. Use as an async context manager."""

    def __init__(self, endpoint: str, credentials: Credentials, *, connections: int = 64) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.credentials = credentials
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> LeanS3Client:
        connector = aiohttp.TCPConnector(limit=self._connections)
        timeout = aiohttp.ClientTimeout(total=None, sock_read=300)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=timeout, auto_decompress=False
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "use LeanS3Client as an async context manager"
        return self._session

    async def request(
        self,
        method: str,
        url: str,
        *,
        data: bytes | AsyncIterable[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> bytes:
        """Send one request and return the (small) response body; raise on >= 300."""
        signed = sign(method, url, self.credentials, headers)
        async with self.session.request(method, url, data=data, headers=signed) as response:
            body = await response.read()
            if response.status >= 300:
                raise S3Error(response.status, body)
            return body

    async def create_bucket(self, bucket: str) -> None:
        await self.request("PUT", object_url(self.endpoint, bucket))

    async def put(
        self, bucket: str, key: str, body: bytes | AsyncIterable[bytes], size: int
    ) -> None:
        headers = {"content-length": str(size)}
        await self.request(
            "PUT", object_url(self.endpoint, bucket, key), data=body, headers=headers
        )

    async def get(self, bucket: str, key: str, ttfb_s: list[float] | None = None) -> int:
        """Read the whole object, discarding it; return the byte count.

        With ``ttfb_s``, append the time from sending to the response headers.
        """
        url = object_url(self.endpoint, bucket, key)
        began = time.perf_counter()
        async with self.session.get(url, headers=sign("GET", url, self.credentials)) as response:
            if ttfb_s is not None:
                ttfb_s.append(time.perf_counter() - began)
            if response.status != 200:
                raise S3Error(response.status, await response.read())
            received = 0
            async for chunk in response.content.iter_chunked(READ_CHUNK_BYTES):
                received += len(chunk)
            return received

    async def create_multipart_upload(self, bucket: str, key: str) -> str:
        url = object_url(self.endpoint, bucket, key, "uploads")
        body = await self.request("POST", url)
        return _element(body, "UploadId")

    async def upload_part(
        self, bucket: str, key: str, upload_id: str, number: int, body: bytes
    ) -> str:
        """Upload part ``number``; return its ETag."""
        query = f"partNumber={number}&uploadId={quote(upload_id, safe='')}"
        url = object_url(self.endpoint, bucket, key, query)
        signed = sign("PUT", url, self.credentials, {"content-length": str(len(body))})
        async with self.session.put(url, data=body, headers=signed) as response:
            if response.status != 200:
                raise S3Error(response.status, await response.read())
            return response.headers["ETag"]

    async def complete_multipart_upload(
        self, bucket: str, key: str, upload_id: str, etags: list[str]
    ) -> None:
        parts = "".join(
            f"<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>"
            for n, etag in enumerate(etags, start=1)
        )
        body = f"<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>".encode()
        url = object_url(self.endpoint, bucket, key, f"uploadId={quote(upload_id, safe='')}")
        await self.request("POST", url, data=body, headers={"content-length": str(len(body))})

    async def list_objects_v2(self, bucket: str, query: str) -> bytes:
        return await self.request("GET", object_url(self.endpoint, bucket, query=query))


def _element(body: bytes, name: str) -> str:
    """The text of the first ``<name>`` element of a small XML answer."""
    start = body.index(f"<{name}>".encode()) + len(name) + 2
    return body[start : body.index(f"</{name}>".encode(), start)].decode()


@dataclass(slots=True)
class LoadResult:
    label: str
    ops: int = 0
    bytes: int = 0
    elapsed_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    ttfb_s: list[float] = field(default_factory=list)
    errors: int = 0

    @property
    def ops_per_s(self) -> float:
        return self.ops / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def mib_per_s(self) -> float:
        return self.bytes / MIB / self.elapsed_s if self.elapsed_s else 0.0


async def run_load(
    label: str,
    operation: Callable[[int], Awaitable[int]],
    *,
    concurrency: int,
    duration_s: float,
    result: LoadResult | None = None,
) -> LoadResult:
    """Run ``operation(sequence_number) -> bytes moved`` from ``concurrency`` workers.

    ``result`` lets the operation record more (time to first byte, errors) in it.
    """
    result = result or LoadResult(label)
    counter = iter(range(1 << 62))
    deadline = time.perf_counter() + duration_s

    async def worker() -> None:
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            moved = await operation(next(counter))
            result.latencies_s.append(time.perf_counter() - began)
            result.ops += 1
            result.bytes += moved

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.elapsed_s = time.perf_counter() - began
    return result


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]
