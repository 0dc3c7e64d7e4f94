"""Multipart uploads: parts are stored as segments; completion commits them as one version."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from gateway import checksums
from gateway.backends.base import BackendError
from gateway.backends.registry import BackendRegistry
from gateway.crypto.envelope import EncryptingStream
from gateway.crypto.envelope import from_json as envelope_from_json
from gateway.crypto.format import PartCipher, stored_size
from gateway.errors import (
    EntityTooSmall,
    InvalidArgument,
    InvalidPart,
    InvalidPartOrder,
    InvalidRequest,
    MalformedXML,
    MissingContentLength,
    NoSuchUpload,
    PreconditionFailed,
    QuotaExceeded,
    ServiceUnavailable,
)
from gateway.placement.model import ObjectFacts
from gateway.services.context import RequestContext
from gateway.services.encryption import SseRequest
from gateway.services.objects import (
    CopySource,
    ObjectAttributes,
    ObjectService,
    check_attributes,
    check_key,
    evaluate_copy_conditions,
    new_version_id,
    object_backend_key,
    write_condition_error,
)
from gateway.services.replicas import ReplicaWriter
from gateway.services.streams import ExpectedDigests, VerifyingStream
from gateway.services.topology import TopologyService
from metadata.deletions import DeletionRepo
from metadata.models import (
    BucketRow,
    CompletedVersion,
    NewVersion,
    PartRow,
    UploadRow,
    VersionRow,
)
from metadata.multipart import MultipartRepo
from metadata.objects import WriteConditionFailed
from metadata.usage import QuotaExceededError

log = logging.getLogger(__name__)

MIN_PART_SIZE_BYTES = 5 * 1024 * 1024
MAX_PART_NUMBER = 10_000
MAX_PART_SIZE_BYTES = 5 * 1024**3


@dataclass(frozen=True, slots=True)
class CreateUploadInput:
    key: str
    attributes: ObjectAttributes
    checksum_algorithm: str | None
    checksum_type: str | None
    sse: SseRequest | None = None
    secure: bool = False


@dataclass(frozen=True, slots=True)
class CompletedPartInput:
    part_number: int
    etag: str
    checksum: str | None = None


@dataclass(frozen=True, slots=True)
class CompleteUploadInput:
    key: str
    upload_id: str
    parts: list[CompletedPartInput]
    if_none_match_star: bool = False
    if_match: str | None = None


@dataclass(frozen=True, slots=True)
class PartResult:
    etag: str
    checksum_algorithm: str | None
    checksum: str | None
    # The upload's envelope, for the SSE response headers.
    encryption: dict[str, Any] | None = None


def check_part_number(part_number: int) -> None:
    if not 1 <= part_number <= MAX_PART_NUMBER:
        raise InvalidArgument(
            "Part number must be an integer between 1 and 10000, inclusive",
            ArgumentName="partNumber",
            ArgumentValue=str(part_number),
        )


def multipart_etag(part_md5s: list[bytes]) -> str:
    return f"{hashlib.md5(b''.join(part_md5s)).hexdigest()}-{len(part_md5s)}"


class MultipartService:
    def __init__(
        self,
        uploads: MultipartRepo,
        deletions: DeletionRepo,
        objects: ObjectService,
        backends: BackendRegistry,
        topology: TopologyService,
        writer: ReplicaWriter,
        *,
        part_grace_s: float,
    ) -> None:
        self._uploads = uploads
        self._deletions = deletions
        self._objects = objects
        self._backends = backends
        self._topology = topology
        self._writer = writer
        # A part write that outlives this is presumed dead and its bytes reclaimed.
        self._part_grace_s = part_grace_s

    async def create(
        self, ctx: RequestContext, bucket: BucketRow, create: CreateUploadInput
    ) -> UploadRow:
        check_key(create.key)
        check_attributes(create.attributes)
        facts = ObjectFacts(bucket.name, create.key, None, create.attributes.storage_class,
                            create.attributes.tags)  # fmt: skip
        envelope = self._objects.seal_upload(bucket, facts, create.sse, create.secure)
        algorithm = create.checksum_algorithm.upper() if create.checksum_algorithm else None
        if algorithm is not None and algorithm not in checksums.ALGORITHMS:
            raise InvalidRequest("Checksum algorithm provided is unsupported.")
        checksum_type = _checksum_type(algorithm, create.checksum_type)
        attrs = create.attributes
        upload = UploadRow(
            pk=0,
            upload_id=uuid.uuid4().hex,
            bucket_id=bucket.id,
            key=create.key,
            backend=bucket.backend,
            state="open",
            content_type=attrs.content_type,
            headers=attrs.headers,
            user_metadata=attrs.user_metadata,
            tags=attrs.tags,
            storage_class=attrs.storage_class,
            checksum_algorithm=algorithm,
            checksum_type=checksum_type,
            owner_access_key=ctx.access_key,
            initiated_at=datetime.now(UTC),
            acl=attrs.acl,
            encryption=envelope.as_json() if envelope else None,
        )
        await self._uploads.create(upload)
        return upload

    async def upload(self, bucket: BucketRow, key: str, upload_id: str) -> UploadRow:
        check_key(key)
        upload = await self._uploads.get_open(bucket.id, key, upload_id)
        if upload is None:
            raise NoSuchUpload(UploadId=upload_id)
        return upload

    async def upload_part(
        self,
        bucket: BucketRow,
        key: str,
        upload_id: str,
        part_number: int,
        expected: ExpectedDigests,
        body: AsyncIterator[bytes],
        customer_key: bytes | None = None,
    ) -> PartResult:
        check_part_number(part_number)
        upload = await self.upload(bucket, key, upload_id)
        cipher = self._objects.part_cipher(upload.encryption, customer_key, part_number)
        claimed = expected.checksum_algorithm.upper() if expected.checksum_algorithm else None
        if upload.checksum_algorithm and claimed and claimed != upload.checksum_algorithm:
            raise InvalidRequest(
                "Checksum Type mismatch occurred, expected checksum Type:"
                f" {upload.checksum_algorithm.lower()}, actual checksum Type: {claimed.lower()}"
            )
        algorithm = claimed or upload.checksum_algorithm
        stream = VerifyingStream(
            body,
            ExpectedDigests(
                expected.length,
                expected.md5,
                expected.sha256_hex,
                algorithm,
                expected.checksum_value,
            ),
            default_algorithm=algorithm or "CRC64NVME",
        )
        if upload.checksum_algorithm is None and algorithm not in (None, "CRC64NVME"):
            # The client's checksum (boto3 sends CRC32 by default) is verified by the inner
            # stream; the part stores CRC64NVME, which completion combines for the object.
            stream = VerifyingStream(
                stream, ExpectedDigests(expected.length), default_algorithm="CRC64NVME"
            )
        return await self._store_part(bucket, upload, part_number, stream, expected.length, cipher)

    async def _store_part(
        self,
        bucket: BucketRow,
        upload: UploadRow,
        part_number: int,
        stream: VerifyingStream,
        size: int | None,
        cipher: PartCipher | None = None,
    ) -> PartResult:
        facts = ObjectFacts(bucket.name, upload.key, None, upload.storage_class, upload.tags)
        stored: AsyncIterator[bytes] = stream
        stored_length = size
        encrypting = None
        if cipher is not None:
            if size is None:
                raise MissingContentLength()
            encrypting = EncryptingStream(stream, cipher, size)
            stored, stored_length = aiter(encrypting), stored_size(size)
        plan = self._topology.plan(bucket, facts)
        key = f"b{upload.bucket_id}/mpu/{upload.upload_id}/{part_number}-{uuid.uuid4().hex[:12]}"
        try:
            intents = await self._deletions.add_part_intents(
                bucket.id, list(plan.sync_targets), key, self._part_grace_s, size or 0
            )
        except QuotaExceededError as exc:
            raise QuotaExceeded(str(exc)) from None
        try:
            outcome = await self._writer.write(
                plan.sync_targets, plan.quorum, key, stored, stored_length
            )
        except BaseException:
            # gc deletes what is left and gives the reservation back.
            await asyncio.shield(self._deletions.expedite(bucket.id, intents))
            raise
        assert stream.result is not None
        result = stream.result
        checksum = checksums.encode(result.checksum)
        part = PartRow(
            part_number,
            result.size,
            result.md5.hex(),
            checksum,
            key,
            datetime.now(UTC),
            list(outcome.stored),
            encrypting.checksum if encrypting else None,
        )
        if not await self._uploads.put_part(upload.bucket_id, upload.pk, part, intents):
            await self._deletions.expedite(upload.bucket_id, intents)
            raise NoSuchUpload(UploadId=upload.upload_id)
        shown = upload.checksum_algorithm and result.checksum_algorithm
        return PartResult(
            part.etag,
            result.checksum_algorithm if shown else None,
            checksum if shown else None,
            upload.encryption,
        )

    async def upload_part_copy(
        self,
        ctx: RequestContext,
        bucket: BucketRow,
        key: str,
        upload_id: str,
        part_number: int,
        source: CopySource,
        source_range: tuple[int, int] | None,
        customer_key: bytes | None = None,
    ) -> tuple[VersionRow, PartResult]:
        check_part_number(part_number)
        upload = await self.upload(bucket, key, upload_id)
        cipher = self._objects.part_cipher(upload.encryption, customer_key, part_number)
        version = await self._objects.current(
            source.bucket, source.key, source.version_id, source.public_only
        )
        evaluate_copy_conditions(source.conditions, version)
        first, last = source_range or (0, version.size_bytes - 1)
        if source_range is not None and (last >= version.size_bytes or first > last):
            raise InvalidArgument(
                "The x-amz-copy-source-range value must be of the form bytes=first-last where"
                " first and last are the zero-based offsets of the first and last bytes to copy",
                ArgumentName="x-amz-copy-source-range",
            )
        body = await self._objects.read_source(version, source, first, last)
        algorithm = upload.checksum_algorithm or "CRC64NVME"
        stream = VerifyingStream(
            body, ExpectedDigests(length=last - first + 1), default_algorithm=algorithm
        )
        return version, await self._store_part(
            bucket, upload, part_number, stream, last - first + 1, cipher
        )

    async def complete(
        self, ctx: RequestContext, bucket: BucketRow, complete: CompleteUploadInput
    ) -> VersionRow:
        upload = await self.upload(bucket, complete.key, complete.upload_id)
        stored = {p.part_number: p for p in await self._uploads.parts(upload.bucket_id, upload.pk)}
        chosen = _check_parts(complete.parts, stored)
        holders = await self._assemble(upload, chosen)
        facts = ObjectFacts(
            bucket.name, upload.key, sum(p.size_bytes for p in chosen), upload.storage_class,
            upload.tags,
        )  # fmt: skip
        plan = self._topology.plan(bucket, facts)
        wanted = plan.sync_targets + plan.async_targets
        version_id = new_version_id()
        new = NewVersion(
            bucket_id=bucket.id,
            key=upload.key,
            version_id=version_id,
            is_null_version=bucket.versioning != "Enabled",
            content_type=upload.content_type,
            headers=upload.headers,
            user_metadata=upload.user_metadata,
            tags=upload.tags,
            storage_class=upload.storage_class,
            acl=upload.acl,
            backends=holders,
            backend_key=object_backend_key(bucket, version_id),
        )
        done = replace(
            _completed_version(upload, chosen),
            stored_on=holders,
            replicate_to=tuple(t for t in wanted if t not in holders),
            **_sealed_completion(upload, chosen),
        )
        try:
            outcome = await self._uploads.complete(
                upload.pk,
                [p.part_number for p in chosen],
                new,
                done,
                if_none_match_star=complete.if_none_match_star,
                if_match=complete.if_match,
            )
        except QuotaExceededError as exc:
            raise QuotaExceeded(str(exc)) from None
        except WriteConditionFailed as failed:
            # Rolled back whole: the upload stays open and can be completed again.
            raise write_condition_error(failed) from None
        if outcome is False:
            raise NoSuchUpload(UploadId=complete.upload_id)
        if outcome is None:
            raise PreconditionFailed(Condition="If-None-Match")
        assert isinstance(outcome, VersionRow)
        return outcome

    async def _assemble(self, upload: UploadRow, parts: list[PartRow]) -> tuple[str, ...]:
        """Backends that hold every part. When failures scattered the parts so that no
        backend holds them all, the backend holding most gets copies of the rest."""
        common = set.intersection(*(set(p.backends) for p in parts))
        if common:
            return tuple(sorted(common))
        counts: dict[str, int] = {}
        for part in parts:
            for backend in part.backends:
                counts[backend] = counts.get(backend, 0) + 1
        if not counts:
            raise ServiceUnavailable("No backend holds the parts of this upload.")
        best = max(sorted(counts), key=lambda b: counts[b])
        for part in parts:
            if best not in part.backends:
                await self._copy_part(part, best, _stored_part_size(upload, part))
                await self._uploads.add_part_backend(
                    upload.bucket_id, upload.pk, part.part_number, best
                )
        return (best,)

    async def _copy_part(self, part: PartRow, target: str, size: int) -> None:
        for source in part.backends:
            try:
                body = self._backends.get(source).get(part.backend_key)
                await self._backends.get(target).put(part.backend_key, body, size)
                return
            except BackendError as exc:
                log.warning("copying part %s from %s failed: %s", part.backend_key, source, exc)
        raise ServiceUnavailable("The parts of this upload cannot be brought together now.")

    async def abort(self, bucket: BucketRow, key: str, upload_id: str) -> None:
        upload = await self.upload(bucket, key, upload_id)
        if not await self._uploads.finish(upload.bucket_id, upload.pk, "aborted", []):
            raise NoSuchUpload(UploadId=upload_id)

    async def list_parts(
        self, bucket: BucketRow, key: str, upload_id: str, marker: int, max_parts: int
    ) -> tuple[UploadRow, list[PartRow], bool]:
        upload = await self.upload(bucket, key, upload_id)
        limit = min(max(max_parts, 0), 1000)
        parts = await self._uploads.parts(
            upload.bucket_id, upload.pk, after=marker, limit=limit + 1
        )
        return upload, parts[:limit], len(parts) > limit

    async def list_uploads(
        self, bucket: BucketRow, prefix: str, key_marker: str, upload_id_marker: str, limit: int
    ) -> tuple[list[UploadRow], bool]:
        limit = min(max(limit, 0), 1000)
        rows = await self._uploads.list_open(
            bucket.id, prefix, key_marker, upload_id_marker, limit + 1
        )
        return rows[:limit], len(rows) > limit


def _stored_part_size(upload: UploadRow, part: PartRow) -> int:
    return part.size_bytes if upload.encryption is None else stored_size(part.size_bytes)


def _sealed_completion(upload: UploadRow, parts: list[PartRow]) -> dict[str, Any]:
    """For an encrypted upload: the version's envelope and the bytes each replica takes."""
    if upload.encryption is None:
        return {}
    envelope = envelope_from_json(upload.encryption).with_checksums(
        [p.stored_checksum or "" for p in parts], [p.part_number for p in parts]
    )
    return {
        "encryption": envelope.as_json(),
        "stored_bytes": sum(stored_size(p.size_bytes) for p in parts),
    }


def _checksum_type(algorithm: str | None, requested: str | None) -> str | None:
    if algorithm is None:
        return None
    kind = (requested or ("FULL_OBJECT" if algorithm == "CRC64NVME" else "COMPOSITE")).upper()
    if kind not in ("COMPOSITE", "FULL_OBJECT"):
        raise InvalidRequest("The checksum type you specified is not valid.")
    if kind == "FULL_OBJECT" and algorithm in ("SHA1", "SHA256"):
        raise InvalidRequest(
            f"The FULL_OBJECT checksum type cannot be used with the {algorithm.lower()}"
            " checksum algorithm."
        )
    if kind == "COMPOSITE" and algorithm == "CRC64NVME":
        raise InvalidRequest(
            "The COMPOSITE checksum type cannot be used with the crc64nvme checksum algorithm."
        )
    return kind


def _check_parts(requested: list[CompletedPartInput], stored: dict[int, PartRow]) -> list[PartRow]:
    if not requested:
        raise MalformedXML()
    chosen: list[PartRow] = []
    previous = 0
    for item in requested:
        if item.part_number <= previous:
            raise InvalidPartOrder()
        previous = item.part_number
        part = stored.get(item.part_number)
        if part is None or part.etag != item.etag.strip().strip('"'):
            raise InvalidPart(PartNumber=str(item.part_number), ETag=item.etag)
        if item.checksum is not None and part.checksum_value != item.checksum:
            raise InvalidPart(PartNumber=str(item.part_number), ETag=item.etag)
        chosen.append(part)
    for part in chosen[:-1]:
        if part.size_bytes < MIN_PART_SIZE_BYTES:
            raise EntityTooSmall(
                ProposedSize=str(part.size_bytes), MinSizeAllowed=str(MIN_PART_SIZE_BYTES)
            )
    return chosen


def _completed_version(upload: UploadRow, parts: list[PartRow]) -> CompletedVersion:
    size = sum(p.size_bytes for p in parts)
    etag = multipart_etag([bytes.fromhex(p.etag) for p in parts])
    algorithm, kind, value = upload.checksum_algorithm, upload.checksum_type, None
    digests = [checksums.decode(p.checksum_value or "", algorithm or "CRC64NVME") for p in parts]
    if algorithm is not None and kind == "COMPOSITE":
        value = checksums.composite(algorithm, digests)
    elif algorithm is not None:
        combined = checksums.combine_full_object(
            algorithm, [(d, p.size_bytes) for d, p in zip(digests, parts, strict=True)]
        )
        value = checksums.encode(combined)
    else:
        # No algorithm requested: the parts carry CRC64NVME, which combines for free.
        combined = checksums.combine_full_object(
            "CRC64NVME", [(d, p.size_bytes) for d, p in zip(digests, parts, strict=True)]
        )
        algorithm, kind, value = "CRC64NVME", "FULL_OBJECT", checksums.encode(combined)
    return CompletedVersion(
        size_bytes=size,
        etag=etag,
        checksum_algorithm=algorithm,
        checksum_type=kind,
        checksum_value=value,
        part_sizes=[p.size_bytes for p in parts],
        part_checksums=[p.checksum_value or "" for p in parts],
        segment_keys=[p.backend_key for p in parts],
    )
