"""Row values returned by the repositories."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple


@dataclass(frozen=True, slots=True)
class AccessKeyRow:
    access_key_id: str
    secret_key: str
    tenant: str
    user_name: str | None = None
    status: str = "active"


@dataclass(frozen=True, slots=True)
class BucketRow:
    id: int
    name: str
    owner_access_key: str
    location: str
    backend: str
    versioning: str
    created_at: datetime
    tags: dict[str, str] | None = None
    cors: list[dict[str, Any]] | None = None
    placement_policy: str | None = None
    # Tenants own buckets: every access key of the tenant may use them.
    tenant: str = "root"
    # A canned ACL, and the bucket policy document (both grant access to others).
    acl: str = "private"
    policy: dict[str, Any] | None = None
    # Default encryption: {"SSEAlgorithm": "AES256" | "aws:kms", "KMSMasterKeyID": ...}.
    encryption: dict[str, Any] | None = None
    # The lifecycle configuration's canonical document (gateway/lifecycle/rules.py).
    lifecycle: dict[str, Any] | None = None
    # Access-based tiering: {"warm_after_days": N, "cold_after_days": M or None}.
    access_tiering: dict[str, Any] | None = None
    # Placement policies attached to key prefixes: {prefix: policy}.
    prefix_policies: dict[str, str] = field(default_factory=dict)

    def policy_for_key(self, key: str) -> str | None:
        """The policy attached to the longest prefix ``key`` starts with, else the bucket's
        (None: the default policy). The SQL twin is ``metadata.buckets.EFFECTIVE_POLICY``."""
        matching = [prefix for prefix in self.prefix_policies if key.startswith(prefix)]
        if not matching:
            return self.placement_policy
        return self.prefix_policies[max(matching, key=len)]


@dataclass(frozen=True, slots=True)
class PlacementRow:
    backend: str
    backend_key: str
    segment_keys: list[str] | None
    state: str
    size_bytes: int


@dataclass(frozen=True, slots=True)
class VersionRow:
    pk: int
    seq: int
    bucket_id: int
    key: str
    version_id: str
    is_null_version: bool
    state: str
    is_latest: bool
    is_delete_marker: bool
    size_bytes: int
    etag: str
    content_type: str | None
    headers: dict[str, str]
    user_metadata: dict[str, str]
    tags: dict[str, str]
    storage_class: str
    checksum_algorithm: str | None
    checksum_type: str | None
    checksum_value: str | None
    part_sizes: list[int] | None
    part_checksums: list[str] | None
    created_at: datetime
    placements: list[PlacementRow] = field(default_factory=list)
    acl: str = "private"
    # The envelope of an encrypted version (gateway/crypto/envelope.py), else None.
    encryption: dict[str, Any] | None = None

    @property
    def visible_version_id(self) -> str:
        return "null" if self.is_null_version else self.version_id


@dataclass(frozen=True, slots=True)
class NewVersion:
    """Everything a writer knows about a version before its bytes are stored."""

    bucket_id: int
    key: str
    version_id: str
    is_null_version: bool
    content_type: str | None
    headers: dict[str, str]
    user_metadata: dict[str, str]
    tags: dict[str, str]
    storage_class: str
    # The synchronous targets; the same backend key is used on each.
    backends: tuple[str, ...]
    backend_key: str
    acl: str = "private"
    encryption: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class CompletedVersion:
    """What is known once the bytes are stored and verified."""

    size_bytes: int
    etag: str
    checksum_algorithm: str | None
    checksum_type: str | None
    checksum_value: str | None
    part_sizes: list[int] | None = None
    part_checksums: list[str] | None = None
    segment_keys: list[str] | None = None
    # Targets that hold the bytes; None means every pending placement succeeded.
    stored_on: tuple[str, ...] | None = None
    # Targets the replication worker fills in later (failed sync and async targets).
    replicate_to: tuple[str, ...] = ()
    # Set for an encrypted version: its envelope with the stored parts' checksums, and the
    # bytes it takes on each backend.
    encryption: dict[str, Any] | None = None
    stored_bytes: int | None = None


class ListedObject(NamedTuple):
    """The columns a listing shows; lean on purpose, a page holds a thousand of them (a
    named tuple: built from a row at half the cost of a frozen dataclass)."""

    key: str
    size_bytes: int
    etag: str
    last_modified: str  # ISO 8601 in UTC, whole seconds, as a listing shows it
    storage_class: str
    checksum_algorithm: str | None
    checksum_type: str | None


class ListEntry(NamedTuple):
    key: str
    is_prefix: bool
    version: ListedObject | None


@dataclass(frozen=True, slots=True)
class UploadRow:
    pk: int
    upload_id: str
    bucket_id: int
    key: str
    backend: str
    state: str
    content_type: str | None
    headers: dict[str, str]
    user_metadata: dict[str, str]
    tags: dict[str, str]
    storage_class: str
    checksum_algorithm: str | None
    checksum_type: str | None
    owner_access_key: str
    initiated_at: datetime
    acl: str = "private"
    encryption: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class PartRow:
    part_number: int
    size_bytes: int
    etag: str
    checksum_value: str | None
    backend_key: str
    created_at: datetime
    # Backends that hold this part's bytes (under backend_key on each).
    backends: list[str] = field(default_factory=list)
    # CRC64NVME of the stored bytes when the part is encrypted.
    stored_checksum: str | None = None


@dataclass(frozen=True, slots=True)
class DeletionRow:
    id: int
    bucket_id: int
    backend: str
    backend_key: str
