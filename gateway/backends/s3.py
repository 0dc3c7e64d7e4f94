"""A backend on one bucket of any S3-compatible store, through aiobotocore.

One long-lived client per backend, opened by :meth:`S3Backend.start` and held by an
``AsyncExitStack`` (aiobotocore's recommended pattern). Bodies stream both ways; a PUT
holds at most about one part in memory.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import aiohttp
from aiobotocore.config import AioConfig  # type: ignore[import-untyped]
from aiobotocore.session import get_session  # type: ignore[import-untyped]
from botocore.exceptions import BotoCoreError, ClientError

from gateway.backends.base import BackendCapabilities, BackendError, BackendKeyNotFound

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import CompletedPartTypeDef

logger = logging.getLogger(__name__)

# S3 refuses non-final parts below 5 MiB.
MIN_PART_SIZE_BYTES = 5 * 1024 * 1024
READ_CHUNK_BYTES = 1024 * 1024
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
# The ETag of a plain PUT or part upload is the MD5 of the bytes the store received.
_MD5_ETAG = re.compile(r"[0-9a-f]{32}")


class EtagMismatch(BackendError):
    """The store's ETag is not the MD5 of the bytes sent: they were altered on the way."""


class S3Backend:
    """Objects under ``key_prefix`` in ``bucket``. Call :meth:`start` before use."""

    capabilities = BackendCapabilities(ranged_reads=True)

    def __init__(
        self,
        name: str,
        *,
        endpoint_url: str,
        bucket: str,
        access_key: str,
        secret_key: str,
        region: str = "us-east-1",
        key_prefix: str = "",
        part_size_bytes: int = 8 * 1024 * 1024,
        max_pool_connections: int = 32,
        verify_etag: bool = True,
        read_timeout_s: float = 30.0,
    ) -> None:
        if part_size_bytes < MIN_PART_SIZE_BYTES:
            raise ValueError(f"part_size_bytes must be at least {MIN_PART_SIZE_BYTES}")
        self.name = name
        self.bucket = bucket
        self.key_prefix = key_prefix
        self._endpoint_url = endpoint_url
        self._access_key = access_key
        self._secret_key = secret_key
        self._region = region
        self._part_size = part_size_bytes
        self._max_pool_connections = max_pool_connections
        # Off for stores whose ETags are not MD5s (AWS with SSE-KMS or SSE-C by default).
        self._verify_etag = verify_etag
        self._read_timeout_s = read_timeout_s
        self._stack = AsyncExitStack()
        # Multipart uploads listed by earlier sweeps, and when this node first saw them.
        self._uploads_seen: dict[tuple[str, str], float] = {}
        self._client: S3Client | None = None

    async def start(self) -> None:
        """Open the long-lived client. Idempotent."""
        if self._client is not None:
            return
        creator = get_session().create_client(
            "s3",
            endpoint_url=self._endpoint_url,
            region_name=self._region,
            aws_access_key_id=self._access_key,
            aws_secret_access_key=self._secret_key,
            config=self._config(),
        )
        self._client = await self._stack.enter_async_context(creator)

    async def close(self) -> None:
        self._client = None
        await self._stack.aclose()

    async def __aenter__(self) -> S3Backend:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def put(self, key: str, body: AsyncIterator[bytes], size_hint: int | None) -> int:
        if size_hint:
            return await self._put_streamed(key, body, size_hint)
        buffer = bytearray()
        ended = await _fill(body, buffer, self._part_size)
        if ended:
            await self._put_single(key, bytes(buffer))
            return len(buffer)
        return await self._put_multipart(key, body, buffer)

    async def get(
        self, key: str, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        if offset < 0 or (length is not None and length < 0):
            raise BackendError(f"invalid range offset={offset} length={length}")
        if length == 0:
            # S3 has no empty range; still honour the "missing key raises" contract.
            if await self.size(key) is None:
                raise BackendKeyNotFound(f"{self.name}: {key!r}")
            return
        response = await self._get_object(key, offset, length)
        if response is None:
            return  # The range starts past the end: nothing to read.
        # HTTP lets a server ignore Range and send the whole object; rclone instead sends
        # the range with status 200, so Content-Range is the signal, not the status.
        ranged = "ContentRange" in response
        with self._translated(key):
            async with response["Body"] as stream:
                chunks = stream.iter_chunks(READ_CHUNK_BYTES)
                if not ranged and (offset or length is not None):
                    chunks = _trim(chunks, offset, length)
                async for chunk in chunks:
                    yield chunk

    async def delete(self, key: str) -> None:
        with self._translated(key):
            await self._s3.delete_object(Bucket=self.bucket, Key=self._full_key(key))

    async def size(self, key: str) -> int | None:
        try:
            with self._translated(key):
                head = await self._s3.head_object(Bucket=self.bucket, Key=self._full_key(key))
        except BackendKeyNotFound:
            return None
        return head["ContentLength"]

    async def list_keys(self, prefix: str = "") -> AsyncIterator[str]:
        paginator = self._s3.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.bucket, Prefix=self._full_key(prefix))
        with self._translated(prefix):
            async for page in pages:
                for item in page.get("Contents", []):
                    yield item["Key"].removeprefix(self.key_prefix)

    async def sweep_abandoned(self, older_than_s: float) -> int:
        """Abort backend multipart uploads a killed process left behind.

        An upload is aborted only once this node has seen it for ``older_than_s`` and the
        store's own Initiated time agrees: a store with a wrong clock (moto reports 2010)
        or a skewed one cannot make us abort a write in progress.
        """
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than_s)
        now = time.monotonic()
        listed: dict[tuple[str, str], bool] = {}
        paginator = self._s3.get_paginator("list_multipart_uploads")
        with self._translated(self.key_prefix):
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=self.key_prefix):
                for upload in page.get("Uploads", []):
                    listed[(upload["Key"], upload["UploadId"])] = upload["Initiated"] < cutoff
        seen = {k: self._uploads_seen.get(k, now) for k in listed}
        self._uploads_seen = seen
        stale = [k for k, old in listed.items() if old and now - seen[k] >= older_than_s]
        for full_key, upload_id in stale:
            await self._abort(full_key, upload_id)
            self._uploads_seen.pop((full_key, upload_id), None)
        return len(stale)

    @property
    def _s3(self) -> S3Client:
        if self._client is None:
            raise BackendError(f"{self.name}: backend not started")
        return self._client

    def _config(self) -> Any:
        return AioConfig(
            # Streamed bodies cannot be hashed before they are sent: sign UNSIGNED-PAYLOAD
            # (our own digests check every body anyway).
            s3={"addressing_style": "path", "payload_signing_enabled": False},
            # Checksums only where S3 demands them: we hash bodies ourselves, and some
            # stores answer range GETs with full-object checksums that cannot validate.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            # Few retries: the gateway fails over to another replica instead of waiting.
            retries={"mode": "standard", "max_attempts": 2},
            max_pool_connections=self._max_pool_connections,
            # A dead path must fail in seconds so writes and reads move on to other replicas.
            connect_timeout=5,
            # Also bounds how long a write waits for the store's answer once its body is
            # sent: a store that hangs fails the write instead of holding it.
            read_timeout=self._read_timeout_s,
        )

    def _full_key(self, key: str) -> str:
        return self.key_prefix + key

    async def _get_object(self, key: str, offset: int, length: int | None) -> Any:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": self._full_key(key)}
        if offset or length is not None:
            last = "" if length is None else str(offset + length - 1)
            kwargs["Range"] = f"bytes={offset}-{last}"
        try:
            with self._translated(key):
                return await self._s3.get_object(**kwargs)
        except BackendError as exc:
            if _error_code(exc.__cause__) == "InvalidRange":
                return None
            raise

    async def _put_single(self, key: str, data: bytes) -> None:
        with self._translated(key):
            put = await self._s3.put_object(Bucket=self.bucket, Key=self._full_key(key), Body=data)
        self._check_etag(key, put.get("ETag", ""), hashlib.md5(data))

    async def _put_multipart(self, key: str, body: AsyncIterator[bytes], buffer: bytearray) -> int:
        full_key = self._full_key(key)
        with self._translated(key):
            created = await self._s3.create_multipart_upload(Bucket=self.bucket, Key=full_key)
        upload_id = created["UploadId"]
        try:
            with self._translated(key):
                parts, written = await self._upload_parts(full_key, upload_id, body, buffer)
                await self._s3.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=full_key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                )
        except BaseException:
            # Shielded so a cancelled PUT still releases the parts it stored.
            await asyncio.shield(self._abort(full_key, upload_id))
            raise
        return written

    async def _upload_parts(
        self, full_key: str, upload_id: str, body: AsyncIterator[bytes], buffer: bytearray
    ) -> tuple[list[CompletedPartTypeDef], int]:
        parts: list[CompletedPartTypeDef] = []
        written = 0
        while True:
            last = len(buffer) <= self._part_size
            cut = len(buffer) if last else self._part_size
            data = bytes(buffer[:cut])
            del buffer[:cut]
            parts.append(await self._upload_part(full_key, upload_id, len(parts) + 1, data))
            written += len(data)
            if last:
                break
            # Read on only now, so memory stays near one part and parts are cut exactly.
            await _fill(body, buffer, self._part_size)
        return parts, written

    async def _upload_part(
        self, full_key: str, upload_id: str, number: int, data: bytes
    ) -> CompletedPartTypeDef:
        part = await self._s3.upload_part(
            Bucket=self.bucket, Key=full_key, UploadId=upload_id, PartNumber=number, Body=data
        )
        self._check_etag(full_key, part.get("ETag", ""), hashlib.md5(data))
        return {"ETag": part["ETag"], "PartNumber": number}

    async def _put_streamed(self, key: str, body: AsyncIterator[bytes], size: int) -> int:
        """Send ``size`` bytes as they arrive: the caller's pace (a link's bandwidth cap) is
        the pace on the wire, and memory stays O(chunk). botocore cannot retry such a
        request (it would have to rewind); the caller's retries and failover do instead."""
        source = _Source(body)
        try:
            if size <= self._part_size:
                digest = hashlib.md5()
                with self._translated(key):
                    put = await self._s3.put_object(
                        Bucket=self.bucket,
                        Key=self._full_key(key),
                        Body=_StreamBody(_hashed(source.take(size, last=True), digest)),
                        ContentLength=size,
                    )
                self._check_etag(key, put.get("ETag", ""), digest)
            else:
                await self._put_parts_streamed(key, source, size)
        except BackendError:
            # aiohttp reports a failing body as a connection error: raise the body's own.
            if source.error is not None:
                raise source.error from None
            raise
        return size

    async def _put_parts_streamed(self, key: str, source: _Source, size: int) -> None:
        full_key = self._full_key(key)
        with self._translated(key):
            created = await self._s3.create_multipart_upload(Bucket=self.bucket, Key=full_key)
        upload_id = created["UploadId"]
        try:
            with self._translated(key):
                parts: list[CompletedPartTypeDef] = []
                for offset in range(0, size, self._part_size):
                    length = min(self._part_size, size - offset)
                    digest = hashlib.md5()
                    body = source.take(length, last=offset + length == size)
                    part = await self._s3.upload_part(
                        Bucket=self.bucket,
                        Key=full_key,
                        UploadId=upload_id,
                        PartNumber=len(parts) + 1,
                        Body=_StreamBody(_hashed(body, digest)),
                        ContentLength=length,
                    )
                    self._check_etag(full_key, part.get("ETag", ""), digest)
                    parts.append({"ETag": part["ETag"], "PartNumber": len(parts) + 1})
                await self._s3.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=full_key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                )
        except BaseException:
            await asyncio.shield(self._abort(full_key, upload_id))
            raise

    async def _abort(self, full_key: str, upload_id: str) -> None:
        try:
            await self._s3.abort_multipart_upload(
                Bucket=self.bucket, Key=full_key, UploadId=upload_id
            )
        except (BotoCoreError, ClientError, aiohttp.ClientError, TimeoutError):
            # The original failure matters more; a lifecycle rule or gc reaps the upload.
            logger.warning("%s: abort of upload %s failed", self.name, upload_id, exc_info=True)

    def _check_etag(self, key: str, etag: str, sent: Any) -> None:
        """A write whose ETag shows the store got other bytes than we sent has failed (the
        caller discards it): without this, bytes altered in transit would be acknowledged."""
        stored = etag.strip('"')
        if self._verify_etag and _MD5_ETAG.fullmatch(stored) and stored != sent.hexdigest():
            raise EtagMismatch(
                f"{self.name}: {key!r}: the store's ETag {stored} is not the MD5"
                f" {sent.hexdigest()} of the bytes sent"
            )

    @contextmanager
    def _translated(self, key: str) -> Iterator[None]:
        """Turn client and transport errors into the backend's two error types."""
        try:
            yield
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND_CODES:
                raise BackendKeyNotFound(f"{self.name}: {key!r}") from exc
            raise BackendError(f"{self.name}: {key!r}: {exc}") from exc
        except (BotoCoreError, aiohttp.ClientError, TimeoutError) as exc:
            raise BackendError(f"{self.name}: {key!r}: {exc}") from exc
        except asyncio.CancelledError as exc:
            # aiohttp cancels a request's body writer when the store's connection breaks;
            # unless our own task is being cancelled, that is a failed call, not a cancel.
            task = asyncio.current_task()
            if task is None or task.cancelling():
                raise
            raise BackendError(f"{self.name}: {key!r}: the transfer broke off") from exc


class _StreamBody:
    """A request body aiohttp sends as it is produced. botocore and its CRT signer only
    look for ``read`` and ``seek``; with UNSIGNED-PAYLOAD neither is called, and a retry,
    which would rewind, fails instead of sending a consumed stream."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks

    def read(self, size: int = -1) -> bytes:
        raise OSError("a streamed body cannot be read synchronously")

    def seek(self, offset: int, whence: int = 0) -> int:
        raise OSError("a streamed body cannot be rewound")

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks


class _Source:
    """Cuts one body into parts of exact sizes, and keeps the body's own error."""

    def __init__(self, body: AsyncIterator[bytes]) -> None:
        self._body = body
        self._rest = b""
        self.error: BaseException | None = None

    async def take(self, size: int, *, last: bool) -> AsyncIterator[bytes]:
        remaining = size
        while remaining:
            chunk = self._rest or await self._next()
            piece, self._rest = chunk[:remaining], chunk[remaining:]
            remaining -= len(piece)
            if last and not remaining:
                # The body's checks (length, digests) run at its end: they must pass before
                # the last byte goes out and the store commits the object.
                await self._expect_end()
            if piece:
                yield piece

    async def _next(self) -> bytes:
        try:
            return await anext(self._body)
        except StopAsyncIteration:
            self.error = BackendError("the body is shorter than its declared size")
        except BaseException as exc:
            self.error = exc
        raise self.error

    async def _expect_end(self) -> None:
        extra = self._rest
        while not extra:
            try:
                extra = await anext(self._body)
            except StopAsyncIteration:
                return
            except BaseException as exc:
                self.error = exc
                raise
        self.error = BackendError("the body is longer than its declared size")
        raise self.error


async def _hashed(chunks: AsyncIterator[bytes], digest: Any) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        digest.update(chunk)
        yield chunk


async def _fill(body: AsyncIterator[bytes], buffer: bytearray, limit: int) -> bool:
    """Read from ``body`` until ``buffer`` holds more than ``limit`` bytes; True at the end."""
    while len(buffer) <= limit:
        try:
            chunk = await anext(body)
        except StopAsyncIteration:
            return True
        buffer += chunk
    return False


async def _trim(
    chunks: AsyncIterator[bytes], offset: int, length: int | None
) -> AsyncIterator[bytes]:
    skip = offset
    remaining = length
    async for chunk in chunks:
        if skip >= len(chunk):
            skip -= len(chunk)
            continue
        piece = chunk[skip:] if remaining is None else chunk[skip : skip + remaining]
        skip = 0
        if piece:
            yield piece
        if remaining is not None:
            remaining -= len(piece)
            if remaining == 0:
                return


def _error_code(exc: BaseException | None) -> str | None:
    if not isinstance(exc, ClientError):
        return None
    code: str | None = exc.response.get("Error", {}).get("Code")
    return code
