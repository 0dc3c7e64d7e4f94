"""ListObjects (V1 and V2) and ListObjectVersions pagination."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from gateway.errors import InvalidArgument
from metadata.listing import ListingRepo, common_prefix, successor
from metadata.models import BucketRow, ListEntry, VersionRow

MAX_KEYS = 1000


@dataclass(frozen=True, slots=True)
class ListObjectsInput:
    prefix: str = ""
    delimiter: str = ""
    max_keys: int = MAX_KEYS
    # Exclusive: entries strictly after this key (start-after, marker).
    after: str = ""
    continuation_token: str | None = None


@dataclass(frozen=True, slots=True)
class ListObjectsResult:
    entries: list[ListEntry]
    is_truncated: bool
    next_token: str | None
    # The last key or common prefix returned (V1 NextMarker).
    last: str | None


@dataclass(frozen=True, slots=True)
class ListVersionsInput:
    prefix: str = ""
    delimiter: str = ""
    max_keys: int = MAX_KEYS
    key_marker: str = ""
    version_id_marker: str = ""


@dataclass(frozen=True, slots=True)
class ListVersionsResult:
    versions: list[VersionRow]
    common_prefixes: list[str]
    is_truncated: bool
    next_key_marker: str | None
    next_version_id_marker: str | None


def encode_token(lower: str) -> str:
    return base64.urlsafe_b64encode(lower.encode()).decode()


def decode_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidArgument(
            "The continuation token provided is incorrect", ArgumentName="continuation-token"
        ) from None


def lower_bound_after(marker: str, prefix: str, delimiter: str) -> str:
    """The inclusive lower bound for entries strictly after ``marker``.

    A common prefix that sorts at or before the marker was already returned (or skipped),
    so the whole prefix is skipped.
    """
    if not marker:
        return ""
    cp = common_prefix(marker, prefix, delimiter) if marker.startswith(prefix) else None
    if cp is not None:
        return successor(cp) or marker + "\x01"
    return marker + "\x01"


def _after_entry(entry: ListEntry) -> str:
    if entry.is_prefix:
        return successor(entry.key) or entry.key + "\x01"
    return entry.key + "\x01"


class ListingService:
    def __init__(self, listing: ListingRepo) -> None:
        self._listing = listing

    async def list_objects(self, bucket: BucketRow, query: ListObjectsInput) -> ListObjectsResult:
        if query.max_keys < 0:
            raise InvalidArgument("max-keys cannot be negative", ArgumentName="max-keys")
        limit = min(query.max_keys, MAX_KEYS)
        if query.continuation_token is not None:
            lower = decode_token(query.continuation_token)
        else:
            lower = lower_bound_after(query.after, query.prefix, query.delimiter)
        if limit == 0:
            return ListObjectsResult([], False, None, None)
        entries = await self._listing.list_current(
            bucket.id, query.prefix, lower, query.delimiter, limit + 1
        )
        truncated = len(entries) > limit
        entries = entries[:limit]
        last = entries[-1] if entries else None
        token = encode_token(_after_entry(last)) if truncated and last else None
        return ListObjectsResult(entries, truncated, token, last.key if last else None)

    async def list_versions(
        self, bucket: BucketRow, query: ListVersionsInput
    ) -> ListVersionsResult:
        limit = min(max(query.max_keys, 0), MAX_KEYS)
        marker_seq = None
        if query.version_id_marker and query.key_marker:
            marker_seq = await self._listing.version_seq(
                bucket.id, query.key_marker, query.version_id_marker
            )
        # Rows are fetched in (key, newest first) order; common prefixes fold many rows.
        fetch = limit * 4 + 1
        rows = await self._listing.list_versions(
            bucket.id, query.prefix, query.key_marker, marker_seq, fetch
        )
        result = _fold_versions(rows, query, limit)
        if not result.is_truncated and len(rows) == fetch:
            # Many versions folded into few prefixes: resume after the last row read.
            last = rows[-1]
            cp = common_prefix(last.key, query.prefix, query.delimiter)
            marker, version_marker = (cp, None) if cp else (last.key, last.visible_version_id)
            return ListVersionsResult(
                result.versions, result.common_prefixes, True, marker, version_marker
            )
        return result


def _fold_versions(
    rows: list[VersionRow], query: ListVersionsInput, limit: int
) -> ListVersionsResult:
    versions: list[VersionRow] = []
    prefixes: list[str] = []
    count = 0
    for row in rows:
        cp = common_prefix(row.key, query.prefix, query.delimiter)
        if cp is not None and cp <= query.key_marker:
            continue
        if cp is not None and prefixes and prefixes[-1] == cp:
            continue
        if count == limit:
            last_key = (
                versions[-1].key
                if versions and (not prefixes or versions[-1].key > prefixes[-1])
                else None
            )
            if last_key is not None:
                return ListVersionsResult(
                    versions, prefixes, True, last_key, versions[-1].visible_version_id
                )
            return ListVersionsResult(versions, prefixes, True, prefixes[-1], None)
        count += 1
        if cp is not None:
            prefixes.append(cp)
        else:
            versions.append(row)
    return ListVersionsResult(versions, prefixes, False, None, None)


def _truncated(versions: list[VersionRow], prefixes: list[str]) -> ListVersionsResult:
    last_version = versions[-1] if versions else None
    if last_version and (not prefixes or last_version.key > prefixes[-1]):
        return ListVersionsResult(
            versions, prefixes, True, last_version.key, last_version.visible_version_id
        )
    return ListVersionsResult(versions, prefixes, True, prefixes[-1], None)
