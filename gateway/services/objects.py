"""Object operations: the PUT, GET, HEAD, DELETE, copy and tagging decisions."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from gateway import checksums
from gateway.backends.base import BackendError
from gateway.backends.registry import BackendRegistry
from gateway.crypto.envelope import SSE_S3, STORED_ALGORITHM, EncryptingStream, Envelope
from gateway.crypto.envelope import from_json as envelope_from_json
from gateway.crypto.format import PartCipher, stored_size
from gateway.errors import (
    AccessDenied,
    BadDigest,
    IncompleteBody,
    InvalidArgument,
    InvalidObjectState,
    InvalidPartNumber,
    InvalidRange,
    InvalidRequest,
    InvalidTag,
    KeyTooLongError,
    MetadataTooLarge,
    MethodNotAllowed,
    MissingContentLength,
    NoSuchKey,
    NoSuchVersion,
    NotModified,
    PreconditionFailed,
    QuotaExceeded,
    S3Error,
    ServiceUnavailable,
)
from gateway.http_dates import http_date
from gateway.placement.model import ObjectFacts, WritePlan
from gateway.placement.tiers import is_archive
from gateway.services.access_policy import object_acl_grants
from gateway.services.context import ByteRange, Conditions, RequestContext
from gateway.services.encryption import EncryptionService, SseRequest
from gateway.services.read_notes import ReadNotes
from gateway.services.reader import SealedVersion, as_bytes, open_encrypted_range, open_range
from gateway.services.replicas import ReplicaWriter, WriteOutcome
from gateway.services.streams import ExpectedDigests, VerifyingStream
from gateway.services.topology import TopologyService
from metadata.access_tiering import LADDER
from metadata.models import BucketRow, CompletedVersion, NewVersion, VersionRow
from metadata.objects import ObjectRepo, VersionNotPending, WriteConditionFailed
from metadata.restores import RestoreRepo, RestoreStatus
from metadata.usage import QuotaExceededError

log = logging.getLogger(__name__)

MAX_KEY_BYTES = 1024
MAX_USER_METADATA_BYTES = 2048
MAX_TAGS = 10


@dataclass(frozen=True, slots=True)
class ObjectAttributes:
    """What a writer says about an object besides its bytes."""

    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    user_metadata: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    storage_class: str = "STANDARD"
    acl: str = "private"


@dataclass(frozen=True, slots=True)
class PutObjectInput:
    key: str
    attributes: ObjectAttributes
    expected: ExpectedDigests
    if_none_match_star: bool = False
    # Conditional write: commit only if the current object's ETag matches.
    if_match: str | None = None
    sse: SseRequest | None = None
    # Whether the request came over TLS (SSE-C needs it).
    secure: bool = False


@dataclass(frozen=True, slots=True)
class GetObjectInput:
    key: str
    version_id: str | None = None
    conditions: Conditions = Conditions()
    range: ByteRange | None = None
    part_number: int | None = None
    # The caller may read only what the object's own ACL makes public.
    public_only: bool = False
    customer_key: bytes | None = None
    secure: bool = False


@dataclass(slots=True)
class GetObjectResult:
    version: VersionRow
    # Inclusive byte range served when the response is partial (206), else None.
    content_range: tuple[int, int] | None
    # Decrypted data comes as the buffers it was opened into (bytearray): no copy.
    body: AsyncIterator[bytes | bytearray] | None
    # For a version of an archive storage class: where its restore stands.
    restore: RestoreStatus | None = None

    @property
    def content_length(self) -> int:
        if self.content_range is None:
            return self.version.size_bytes
        return self.content_range[1] - self.content_range[0] + 1


@dataclass(frozen=True, slots=True)
class DeleteObjectResult:
    version_id: str | None
    delete_marker: bool


@dataclass(frozen=True, slots=True)
class CopySource:
    bucket: BucketRow
    key: str
    version_id: str | None
    conditions: Conditions
    public_only: bool = False
    customer_key: bytes | None = None
    secure: bool = False


@dataclass(frozen=True, slots=True)
class CopyObjectInput:
    key: str
    source: CopySource
    # None keeps the source's attributes (directive COPY); a value replaces them.
    replace_attributes: ObjectAttributes | None
    replace_tags: dict[str, str] | None
    storage_class: str | None = None
    acl: str = "private"
    sse: SseRequest | None = None
    secure: bool = False


def check_key(key: str) -> None:
    if len(key.encode()) > MAX_KEY_BYTES:
        raise KeyTooLongError(Key=key[:64])


def check_attributes(attributes: ObjectAttributes) -> None:
    size = sum(len(k) + len(v) for k, v in attributes.user_metadata.items())
    if size > MAX_USER_METADATA_BYTES:
        raise MetadataTooLarge()
    check_tags(attributes.tags)


def check_tags(tags: dict[str, str], max_tags: int = MAX_TAGS, what: str = "Object") -> None:
    if len(tags) > max_tags:
        raise InvalidTag(f"{what} tags cannot be greater than {max_tags}")
    for key, value in tags.items():
        if not key or len(key) > 128 or len(value) > 256:
            raise InvalidTag("The TagKey or TagValue you have provided is invalid")


def etag_matches(condition: str, etag: str) -> bool:
    wanted = {c.strip().strip('"') for c in condition.split(",")}
    return "*" in wanted or etag.strip('"') in wanted


def _seconds(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def evaluate_conditions(conditions: Conditions, version: VersionRow) -> None:
    """S3's precondition order: If-Match beats If-Unmodified-Since, and If-None-Match
    beats If-Modified-Since (RFC 7232 section 6)."""
    etag, modified = version.etag, _seconds(version.created_at)
    if conditions.if_match is not None:
        if not etag_matches(conditions.if_match, etag):
            raise PreconditionFailed(Condition="If-Match")
    elif conditions.if_unmodified_since and modified > conditions.if_unmodified_since:
        raise PreconditionFailed(Condition="If-Unmodified-Since")
    if conditions.if_none_match is not None:
        if etag_matches(conditions.if_none_match, etag):
            raise NotModified(headers=_not_modified_headers(etag, modified))
    elif conditions.if_modified_since and modified <= conditions.if_modified_since:
        raise NotModified(headers=_not_modified_headers(etag, modified))


def _not_modified_headers(etag: str, modified: datetime) -> dict[str, str]:
    return {"ETag": f'"{etag}"', "Last-Modified": http_date(modified)}


def new_version_id() -> str:
    return uuid.uuid4().hex


def object_backend_key(bucket: BucketRow, version_id: str) -> str:
    # Format constant: gc and scrub find a bucket's bytes by this prefix.
    return f"b{bucket.id}/o/{version_id[:2]}/{version_id}"


READ = "s3:GetObject"


@dataclass(frozen=True, slots=True)
class _Write:
    """A write under way: its pending version, its replicas, its backend key."""

    bucket_id: int
    pk: int
    plan: WritePlan
    key: str


def _facts(
    bucket: BucketRow, key: str, size: int | None, attributes: ObjectAttributes
) -> ObjectFacts:
    return ObjectFacts(bucket.name, key, size, attributes.storage_class, attributes.tags)


class ObjectService:
    def __init__(
        self,
        objects: ObjectRepo,
        backends: BackendRegistry,
        topology: TopologyService,
        writer: ReplicaWriter,
        crypto: EncryptionService,
        restores: RestoreRepo,
        read_notes: ReadNotes,
        *,
        hedge_reads: bool = False,
    ) -> None:
        self._read_notes = read_notes
        self._hedge_reads = hedge_reads
        self._restores = restores
        self._crypto = crypto
        self._objects = objects
        self._backends = backends
        self._topology = topology
        self._writer = writer

    async def put(
        self,
        ctx: RequestContext,
        bucket: BucketRow,
        put: PutObjectInput,
        body: AsyncIterator[bytes],
    ) -> VersionRow:
        check_key(put.key)
        check_attributes(put.attributes)
        facts = _facts(bucket, put.key, put.expected.length, put.attributes)
        sealing = self._sealing(bucket, put, self._topology.requires_encryption(bucket, facts))
        envelope = sealing[0] if sealing else None
        write = await self._begin(bucket, facts, put.attributes, envelope)
        stream = VerifyingStream(body, put.expected)
        stored: AsyncIterator[bytes] = stream
        stored_length = put.expected.length
        encrypting = None
        if sealing is not None and put.expected.length is not None:
            cipher = PartCipher(sealing[1], sealing[0].salt, 0)
            encrypting = EncryptingStream(stream, cipher, put.expected.length)
            stored, stored_length = aiter(encrypting), stored_size(put.expected.length)
        outcome = await self._store(write, stored, stored_length)
        assert stream.result is not None
        digests = stream.result
        envelope = None
        if sealing is not None and encrypting is not None and encrypting.checksum is not None:
            envelope = sealing[0].with_checksums([encrypting.checksum])
        done = CompletedVersion(
            size_bytes=digests.size,
            etag=self._crypto.etag(envelope, digests.md5.hex()),
            checksum_algorithm=digests.checksum_algorithm,
            checksum_type="FULL_OBJECT",
            checksum_value=checksums.encode(digests.checksum),
            stored_on=outcome.stored,
            replicate_to=outcome.failed + write.plan.async_targets,
            encryption=envelope.as_json() if envelope else None,
            stored_bytes=stored_length if envelope else None,
        )
        return await self._commit(
            write.bucket_id, write.pk, done, put.if_none_match_star, write.plan.sync_targets,
            write.key, put.if_match,
        )  # fmt: skip

    async def _begin(
        self,
        bucket: BucketRow,
        facts: ObjectFacts,
        attributes: ObjectAttributes,
        envelope: Envelope | None,
    ) -> _Write:
        """Plan the replicas and record the pending version (reserving quota)."""
        version_id = new_version_id()
        plan = self._topology.plan(bucket, facts)
        key = object_backend_key(bucket, version_id)
        new = _new_version(bucket, facts.key, version_id, attributes, plan.sync_targets, key)
        if envelope is not None:
            new = replace(new, encryption=envelope.as_json())
        try:
            pk = await self._objects.begin_write(new, reserve_bytes=facts.size_bytes or 0)
        except QuotaExceededError as exc:
            raise QuotaExceeded(str(exc)) from None
        return _Write(bucket.id, pk, plan, key)

    async def _store(
        self, write: _Write, body: AsyncIterator[bytes], length: int | None
    ) -> WriteOutcome:
        plan = write.plan
        try:
            return await self._writer.write(plan.sync_targets, plan.quorum, write.key, body, length)
        except BaseException:
            # The writer already discarded what it wrote; only the version is left to fail.
            await asyncio.shield(self._abandon(write.bucket_id, write.pk, (), write.key))
            raise

    def check_kms_key(self, key_id: str | None) -> None:
        self._crypto.check_kms_key(key_id)

    def _sealing(
        self, bucket: BucketRow, put: PutObjectInput, required: bool
    ) -> tuple[Envelope, bytes] | None:
        """The envelope and data key of a write that is to be encrypted, else None."""
        chosen = self._crypto.choose(put.sse, bucket.encryption, put.secure, required)
        if chosen is None:
            return None
        if put.expected.length is None:
            raise MissingContentLength()
        return self._crypto.new_envelope(chosen)

    async def _abandon(self, bucket_id: int, pk: int, targets: tuple[str, ...], key: str) -> None:
        """End the version as failed and remove its bytes, but only when they are the
        writer's: after a commit that raised, the commit may still have landed (the answer
        was lost), and then the bytes are the object's. Whatever stays pending, gc reaps."""
        try:
            theirs = await self._objects.fail_write(bucket_id, pk)
        except Exception:
            log.exception("marking write %s failed deferred to gc", pk)
            return
        if theirs:
            await self._writer.discard(targets, key)

    async def _commit(
        self,
        bucket_id: int,
        pk: int,
        done: CompletedVersion,
        if_none_match_star: bool,
        targets: tuple[str, ...],
        key: str,
        if_match: str | None = None,
    ) -> VersionRow:
        try:
            version = await self._objects.commit_write(
                bucket_id, pk, done, if_none_match_star=if_none_match_star, if_match=if_match
            )
        except WriteConditionFailed as failed:
            await asyncio.shield(self._abandon(bucket_id, pk, targets, key))
            raise write_condition_error(failed) from None
        except VersionNotPending:
            # gc reaped the version while the body still streamed: the deletions it queued
            # may have run before these bytes landed (_abandon removes them).
            await asyncio.shield(self._abandon(bucket_id, pk, targets, key))
            raise ServiceUnavailable("The upload took too long and was reclaimed.") from None
        except BaseException:
            await asyncio.shield(self._abandon(bucket_id, pk, targets, key))
            raise
        if version is None:
            await self._abandon(bucket_id, pk, targets, key)
            raise PreconditionFailed(Condition="If-None-Match")
        return version

    def ordered(self, bucket: BucketRow, version: VersionRow) -> VersionRow:
        """The version with its replicas in the order reads should try them."""
        return replace(
            version, placements=self._topology.order(bucket, version.key, version.placements)
        )

    async def head(self, bucket: BucketRow, get: GetObjectInput) -> GetObjectResult:
        return await self._resolve(bucket, get, with_body=False)

    async def get(self, bucket: BucketRow, get: GetObjectInput) -> GetObjectResult:
        return await self._resolve(bucket, get, with_body=True)

    async def _resolve(
        self, bucket: BucketRow, get: GetObjectInput, *, with_body: bool
    ) -> GetObjectResult:
        check_key(get.key)
        version = await self.current(bucket, get.key, get.version_id, get.public_only)
        # Before conditions, as S3 does: without the key, nothing about the object is told.
        self._crypto.check_read_transport(get.customer_key, get.secure)
        cipher = self._cipher(version, get.customer_key)
        evaluate_conditions(get.conditions, version)
        span = _requested_span(version, get)
        restore = None
        if is_archive(version.storage_class):
            restore = await self._restores.status(version.bucket_id, version.pk)
        body = None
        if with_body:
            if bucket.access_tiering is not None:
                recall = version.storage_class in LADDER[1:]
                self._read_notes.note(version.bucket_id, version.pk, recall)
            first, last = span if span else (0, version.size_bytes - 1)
            body = await self._open(version, cipher, first, last)
        return GetObjectResult(version, span, body, restore)

    async def read_source(self, version: VersionRow, source: CopySource, first: int, last: int
                          ) -> AsyncIterator[bytes]:  # fmt: skip
        """Plaintext bytes [first, last] of a copy's source version."""
        self._crypto.check_read_transport(source.customer_key, source.secure)
        opened = await self._open(version, self._cipher(version, source.customer_key), first, last)
        return _source_failures_unavailable(as_bytes(opened))

    def _cipher(self, version: VersionRow, customer_key: bytes | None) -> SealedVersion | None:
        if version.encryption is None:
            return None
        envelope = envelope_from_json(version.encryption)
        data_key = self._crypto.data_key(envelope, customer_key)
        return SealedVersion(data_key, envelope.salt, envelope.parts)

    def part_cipher(
        self, encryption: dict[str, Any] | None, customer_key: bytes | None, part: int
    ) -> PartCipher | None:
        """The cipher of one part of an encrypted upload (None for a clear one)."""
        if encryption is None:
            return None
        envelope = envelope_from_json(encryption)
        return PartCipher(self._crypto.data_key(envelope, customer_key), envelope.salt, part)

    def seal_upload(
        self, bucket: BucketRow, facts: ObjectFacts, sse: SseRequest | None, secure: bool
    ) -> Envelope | None:
        """The envelope of a new multipart upload that is to be encrypted, else None."""
        required = self._topology.requires_encryption(bucket, facts)
        chosen = self._crypto.choose(sse, bucket.encryption, secure, required)
        return None if chosen is None else self._crypto.new_envelope(chosen)[0]

    async def _open(
        self, version: VersionRow, sealed: SealedVersion | None, first: int, last: int
    ) -> AsyncIterator[bytes | bytearray]:
        version = self._online(version)
        if sealed is None:
            return await open_range(self._backends, version, first, last, hedge=self._hedge_reads)
        return await open_encrypted_range(self._backends, version, sealed, first, last)

    def _online(self, version: VersionRow) -> VersionRow:
        """An archived version is read only from copies off the archive tier (restored)."""
        if not is_archive(version.storage_class):
            return version
        online = self._topology.online(version.placements)
        if version.placements and not online:
            raise InvalidObjectState(
                "The operation is not valid for the object's storage class",
                StorageClass=version.storage_class,
            )
        return replace(version, placements=online)

    async def current(
        self, bucket: BucketRow, key: str, version_id: str | None, public_only: bool = False
    ) -> VersionRow:
        """The version a read addresses; delete markers answer as S3 does."""
        version = await self._objects.get(bucket.id, key, version_id)
        if public_only and (version is None or not object_acl_grants(version.acl, READ)):
            # Whether it exists is not the business of someone who may not read it.
            raise AccessDenied()
        if version is None:
            if version_id is not None:
                raise NoSuchVersion(Key=key, VersionId=version_id)
            raise NoSuchKey(Key=key)
        if version.is_delete_marker:
            headers = {"x-amz-delete-marker": "true"}
            if version_id is not None:
                headers["x-amz-version-id"] = version.visible_version_id
                headers["Last-Modified"] = http_date(version.created_at)
                raise MethodNotAllowed(headers=headers, Method="GET", ResourceType="DeleteMarker")
            raise NoSuchKey(headers=headers, Key=key)
        return self.ordered(bucket, version)

    async def delete(
        self, bucket: BucketRow, key: str, version_id: str | None
    ) -> DeleteObjectResult:
        check_key(key)
        if version_id is not None:
            removed = await self._objects.delete_version(bucket.id, key, version_id)
            marker = bool(removed and removed.is_delete_marker)
            return DeleteObjectResult(version_id, marker)
        created = await self._objects.delete_current(
            bucket.id, key, bucket.versioning, new_version_id()
        )
        if created is None:
            return DeleteObjectResult(None, False)
        return DeleteObjectResult(created.visible_version_id, True)

    async def expire_current(self, bucket: BucketRow, key: str, version_id: str) -> bool:
        """Lifecycle expiration: as DeleteObject without a versionId, but only while
        ``version_id`` is still the current version (False when it no longer is)."""
        return await self._objects.expire_current(
            bucket.id, key, bucket.versioning, version_id, new_version_id()
        )

    async def remove_noncurrent(self, bucket: BucketRow, key: str, version_id: str) -> bool:
        """Lifecycle: delete a noncurrent version for good; never one that is current."""
        removed = await self._objects.delete_version(bucket.id, key, version_id, unless_latest=True)
        return removed is not None

    async def copy(
        self, ctx: RequestContext, bucket: BucketRow, copy: CopyObjectInput
    ) -> tuple[VersionRow, VersionRow]:
        """Copy through the gateway, streamed; returns (source, new version)."""
        src = copy.source
        source = await self.current(src.bucket, src.key, src.version_id, src.public_only)
        evaluate_copy_conditions(src.conditions, source)
        if (
            src.bucket.id == bucket.id
            and src.key == copy.key
            and copy.replace_attributes is None
            and copy.storage_class is None
            and src.version_id is None
            and bucket.versioning != "Enabled"
            and copy.sse is None
        ):
            raise InvalidRequest(
                "This copy request is illegal because it is trying to copy an object to itself"
                " without changing the object's metadata, storage class, website redirect"
                " location or encryption attributes."
            )
        attributes = copy.replace_attributes or _attributes_of(source)
        tags = source.tags if copy.replace_tags is None else copy.replace_tags
        attributes = ObjectAttributes(
            attributes.content_type,
            attributes.headers,
            attributes.user_metadata,
            tags,
            copy.storage_class or attributes.storage_class,
            # The copy's ACL is the request's, never the source's (as in S3).
            copy.acl,
        )
        self._crypto.check_read_transport(src.customer_key, src.secure)
        rewrapped = self._rewrapped(bucket, copy, source, attributes)
        if rewrapped is not None:
            made = await self._copy_ciphertext(bucket, copy.key, attributes, source, rewrapped)
            if made is not None:
                return source, made
        body = await self.read_source(source, src, 0, source.size_bytes - 1)
        # S3 gives the copy the source's checksum algorithm, recomputed over the whole body.
        expected = ExpectedDigests(
            length=source.size_bytes, checksum_algorithm=source.checksum_algorithm
        )
        put = PutObjectInput(copy.key, attributes, expected, sse=copy.sse, secure=copy.secure)
        return source, await self.put(ctx, bucket, put, body)

    def _rewrapped(
        self, bucket: BucketRow, copy: CopyObjectInput, source: VersionRow,
        attributes: ObjectAttributes,
    ) -> Envelope | None:  # fmt: skip
        """The copy's envelope when its bytes can be the source's ciphertext as it lies (the
        same data key, wrapped for the copy), else None: the copy then re-encrypts."""
        if source.encryption is None or source.part_sizes is not None:
            return None
        envelope = envelope_from_json(source.encryption)
        facts = _facts(bucket, copy.key, source.size_bytes, attributes)
        required = self._topology.requires_encryption(bucket, facts)
        chosen = self._crypto.choose(copy.sse, bucket.encryption, copy.secure, required)
        if chosen is None or len(envelope.stored_checksums) != 1:
            return None
        if chosen.mode == SSE_S3 and envelope.mode != SSE_S3:
            # An SSE-S3 ETag is the plaintext's MD5, which only an SSE-S3 source records.
            return None
        data_key = self._crypto.data_key(envelope, copy.source.customer_key)
        return self._crypto.rewrap(envelope, data_key, chosen)

    async def _copy_ciphertext(
        self, bucket: BucketRow, key: str, attributes: ObjectAttributes, source: VersionRow,
        envelope: Envelope,
    ) -> VersionRow | None:  # fmt: skip
        """A copy made of the source's stored bytes, checked against their checksum on the
        way (nothing is decrypted, so nothing else would notice a damaged replica). None
        when the replica read was damaged: decrypting, which fails over chunk by chunk to
        another replica, is then the way to copy."""
        online = self._online(source)
        write = await self._begin(bucket, _facts(bucket, key, source.size_bytes, attributes),
                                  attributes, envelope)  # fmt: skip
        length = stored_size(source.size_bytes)
        expected = ExpectedDigests(
            length=length,
            checksum_algorithm=STORED_ALGORITHM,
            checksum_value=lambda: envelope.stored_checksums[0],
        )
        ciphertext = self._stored_bytes(online, length)
        try:
            outcome = await self._store(write, VerifyingStream(ciphertext, expected), length)
        except (BadDigest, IncompleteBody):
            log.error("a stored copy of %s/%s fails its checksum; copying by decryption",
                      source.bucket_id, source.key)  # fmt: skip
            return None
        done = CompletedVersion(
            size_bytes=source.size_bytes,
            etag=self._crypto.etag(envelope, source.etag),
            checksum_algorithm=source.checksum_algorithm,
            checksum_type=source.checksum_type,
            checksum_value=source.checksum_value,
            stored_on=outcome.stored,
            replicate_to=outcome.failed + write.plan.async_targets,
            encryption=envelope.as_json(),
            stored_bytes=length,
        )
        return await self._commit(
            write.bucket_id, write.pk, done, False, write.plan.sync_targets, write.key
        )

    async def _stored_bytes(self, version: VersionRow, length: int) -> AsyncIterator[bytes]:
        """A single-part version's bytes as stored, opened once the writer pulls (so a
        source that cannot be read fails the write, which then cleans up)."""
        # The stored bytes are ciphertext: the plaintext's size and checksum do not describe
        # them (the caller verifies them against the stored checksum as they pass).
        stored = replace(version, size_bytes=length, part_sizes=None, checksum_algorithm=None)
        async for chunk in await open_range(self._backends, stored, 0, length - 1):
            yield chunk

    async def set_acl(
        self, bucket: BucketRow, key: str, version_id: str | None, acl: str
    ) -> VersionRow:
        version = await self.current(bucket, key, version_id)
        await self._objects.set_acl(version.bucket_id, version.pk, acl)
        return replace(version, acl=acl)

    async def get_tags(self, bucket: BucketRow, key: str, version_id: str | None) -> VersionRow:
        return await self.current(bucket, key, version_id)

    async def put_tags(
        self, bucket: BucketRow, key: str, version_id: str | None, tags: dict[str, str]
    ) -> VersionRow:
        check_tags(tags)
        version = await self.current(bucket, key, version_id)
        await self._objects.set_tags(version.bucket_id, version.pk, tags)
        return version


async def _source_failures_unavailable(stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """A copy source that breaks off mid-read is the same 503 as a GET with no readable
    replica; unwrapped, its BackendError would pass for a failure of a write target."""
    try:
        async for chunk in stream:
            yield chunk
    except BackendError as exc:
        raise ServiceUnavailable("The copy source could not be read.") from exc


def write_condition_error(failed: WriteConditionFailed) -> S3Error:
    """AWS answers a conditional write on a missing key with 404, else 412."""
    if failed.missing:
        return NoSuchKey("The specified key does not exist (If-Match on a write).")
    return PreconditionFailed(Condition="If-Match")


def evaluate_copy_conditions(conditions: Conditions, version: VersionRow) -> None:
    """x-amz-copy-source-if-*: every failure is 412 (never 304), as AWS documents."""
    try:
        evaluate_conditions(conditions, version)
    except NotModified:
        raise PreconditionFailed(Condition="x-amz-copy-source-If-None-Match") from None


def _attributes_of(version: VersionRow) -> ObjectAttributes:
    return ObjectAttributes(
        version.content_type,
        dict(version.headers),
        dict(version.user_metadata),
        dict(version.tags),
        version.storage_class,
    )


def _new_version(
    bucket: BucketRow,
    key: str,
    version_id: str,
    attributes: ObjectAttributes,
    backends: tuple[str, ...],
    backend_key: str,
) -> NewVersion:
    return NewVersion(
        bucket_id=bucket.id,
        key=key,
        version_id=version_id,
        is_null_version=bucket.versioning != "Enabled",
        content_type=attributes.content_type,
        headers=attributes.headers,
        user_metadata=attributes.user_metadata,
        tags=attributes.tags,
        storage_class=attributes.storage_class,
        backends=backends,
        backend_key=backend_key,
        acl=attributes.acl,
    )


def _requested_span(version: VersionRow, get: GetObjectInput) -> tuple[int, int] | None:
    if get.part_number is not None:
        if get.range is not None:
            raise InvalidRequest("Cannot specify both Range header and partNumber query parameter")
        return part_span(version, get.part_number)
    if get.range is None:
        return None
    span = get.range.resolve(version.size_bytes)
    if span is None:
        raise InvalidRange(
            headers={"Content-Range": f"bytes */{version.size_bytes}"},
            ActualObjectSize=str(version.size_bytes),
            RangeRequested=_describe(get.range),
        )
    return span


def _describe(byte_range: ByteRange) -> str:
    if byte_range.suffix is not None:
        return f"bytes=-{byte_range.suffix}"
    last = "" if byte_range.last is None else str(byte_range.last)
    return f"bytes={byte_range.first}-{last}"


def part_span(version: VersionRow, part_number: int) -> tuple[int, int] | None:
    sizes = version.part_sizes or [version.size_bytes]
    if part_number < 1 or part_number > 10_000:
        raise InvalidArgument("Part number must be an integer between 1 and 10000, inclusive")
    if part_number > len(sizes):
        raise InvalidPartNumber()
    if version.part_sizes is None:
        return None  # partNumber=1 of a single-part object is the whole object (200)
    first = sum(sizes[: part_number - 1])
    return first, first + sizes[part_number - 1] - 1
