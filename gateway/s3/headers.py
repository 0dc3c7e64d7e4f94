"""Parsing request headers into typed values, and rendering object headers."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl, quote

from multidict import CIMultiDictProxy

from gateway import checksums
from gateway.errors import InvalidArgument, InvalidStorageClass, InvalidTag, NotImplementedError_
from gateway.http_dates import http_date
from gateway.s3.router import decode_name
from gateway.services.context import ByteRange, Conditions
from gateway.services.objects import ObjectAttributes
from metadata.models import VersionRow
from metadata.restores import RestoreStatus

# Standard headers stored with an object and returned on GET/HEAD.
STORED_HEADERS = (
    "Cache-Control",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Expires",
    "x-amz-website-redirect-location",
)
STORAGE_CLASSES = frozenset(
    {
        "STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING",
        "GLACIER", "DEEP_ARCHIVE", "GLACIER_IR", "OUTPOSTS", "SNOW", "EXPRESS_ONEZONE",
    }
)  # fmt: skip
# ASCII digits: \d would also take other scripts' digits, which RFC 9110 does not.
_RANGE = re.compile(r"^bytes=([0-9]*)-([0-9]*)$")
META_PREFIX = "x-amz-meta-"


def parse_http_date(value: str | None) -> datetime | None:
    """RFC 7231 dates; an unparseable date is ignored, as S3 ignores it."""
    if not value:
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None


def conditions(headers: Mapping[str, str], prefix: str = "") -> Conditions:
    return Conditions(
        if_match=headers.get(f"{prefix}If-Match"),
        if_none_match=headers.get(f"{prefix}If-None-Match"),
        if_modified_since=parse_http_date(headers.get(f"{prefix}If-Modified-Since")),
        if_unmodified_since=parse_http_date(headers.get(f"{prefix}If-Unmodified-Since")),
    )


def byte_range(value: str | None) -> ByteRange | None:
    """A single byte range; anything S3 would ignore (multiple ranges, junk) is ignored."""
    if not value:
        return None
    match = _RANGE.match(value.strip())
    if not match or (not match.group(1) and not match.group(2)):
        return None
    first, last = match.group(1), match.group(2)
    if not first:
        return ByteRange(None, None, suffix=int(last))
    if last and int(last) < int(first):
        return None
    return ByteRange(int(first), int(last) if last else None)


def tagging(value: str | None) -> dict[str, str]:
    """The x-amz-tagging header: URL query encoding."""
    if not value:
        return {}
    pairs = parse_qsl(value, keep_blank_values=True)
    tags = dict(pairs)
    if len(tags) != len(pairs):
        raise InvalidArgument("Cannot provide multiple Tags with the same key")
    if any(not _storable(text) for pair in pairs for text in pair):
        raise InvalidTag("The TagKey or TagValue you have provided is invalid")
    return tags


def _storable(text: str) -> bool:
    """UTF-8 text PostgreSQL can store: aiohttp hands a header's non-UTF-8 bytes over as
    surrogates, and neither text nor jsonb can hold NUL."""
    return "\x00" not in text and not any("\ud800" <= c <= "\udfff" for c in text)


def _stored_text(name: str, value: str) -> str:
    if not _storable(name) or not _storable(value):
        raise InvalidArgument(f"Header {name} must be UTF-8 text without NUL.", ArgumentName=name)
    return value


def _without_aws_chunked(stored: dict[str, str]) -> dict[str, str]:
    # aws-chunked is the upload's framing, not the object's encoding: S3 does not store it.
    codings = [c.strip() for c in stored.get("Content-Encoding", "").split(",")]
    kept = [c for c in codings if c and c.lower() != "aws-chunked"]
    stored.pop("Content-Encoding", None)
    return {**stored, "Content-Encoding": ",".join(kept)} if kept else stored


def attributes(headers: CIMultiDictProxy[str]) -> ObjectAttributes:
    stored = _without_aws_chunked(
        {name: _stored_text(name, headers[name]) for name in STORED_HEADERS if name in headers}
    )
    metadata = {
        name.lower()[len(META_PREFIX) :]: _stored_text(name, value)
        for name, value in headers.items()
        if name.lower().startswith(META_PREFIX)
    }
    content_type = headers.get("Content-Type")
    storage_class = headers.get("x-amz-storage-class", "STANDARD")
    if storage_class not in STORAGE_CLASSES:
        raise InvalidStorageClass(StorageClassRequested=storage_class)
    return ObjectAttributes(
        content_type=None if content_type is None else _stored_text("Content-Type", content_type),
        headers=stored,
        user_metadata=metadata,
        tags=tagging(headers.get("x-amz-tagging")),
        storage_class=storage_class,
        acl=canned_acl(headers),
    )


# The owner always has full control: these say nothing more than "private" does here.
_OWNER_ONLY_ACLS = frozenset({"private", "bucket-owner-full-control", "bucket-owner-read"})
_GRANT_HEADERS = ("x-amz-grant-read", "x-amz-grant-write", "x-amz-grant-read-acp",
                  "x-amz-grant-write-acp", "x-amz-grant-full-control")  # fmt: skip


def canned_acl(headers: Mapping[str, str], default: str = "private") -> str:
    """The canned ACL of ``x-amz-acl``; explicit grants are not supported."""
    if any(name in headers for name in _GRANT_HEADERS):
        raise NotImplementedError_("Skybridge supports canned ACLs only, not x-amz-grant-*.")
    value = headers.get("x-amz-acl")
    if value is None:
        return default
    if value in _OWNER_ONLY_ACLS:
        return "private"
    if value in ("public-read", "public-read-write"):
        return value
    if value in ("authenticated-read", "aws-exec-read", "log-delivery-write"):
        raise NotImplementedError_(f"The canned ACL {value} is not supported by Skybridge.")
    raise InvalidArgument(None, ArgumentName="x-amz-acl", ArgumentValue=value)


def copy_source(value: str) -> tuple[str, str, str | None]:
    """(bucket, key, versionId) of x-amz-copy-source."""
    path, _, query = value.partition("?")
    path = decode_name(path).lstrip("/")
    bucket, _, key = path.partition("/")
    if not bucket or not key:
        raise InvalidArgument(
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
            ArgumentName="x-amz-copy-source",
        )
    version_id = dict(parse_qsl(query)).get("versionId") if query else None
    return bucket, key, version_id


def copy_range(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    match = _RANGE.match(value.strip())
    if not match or not match.group(1) or not match.group(2):
        raise InvalidArgument(
            "The x-amz-copy-source-range value must be of the form bytes=first-last",
            ArgumentName="x-amz-copy-source-range",
        )
    return int(match.group(1)), int(match.group(2))


def int_param(query: Mapping[str, str], name: str, default: int) -> int:
    value = query.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise InvalidArgument(
            f"Provided {name} not an integer or within integer range", ArgumentName=name
        ) from None


def object_headers(version: VersionRow, checksum_mode: bool) -> dict[str, str]:
    headers = {
        "ETag": f'"{version.etag}"',
        "Last-Modified": http_date(version.created_at),
        "Content-Type": version.content_type or "binary/octet-stream",
        "Accept-Ranges": "bytes",
    }
    headers.update(version.headers)
    for name, value in version.user_metadata.items():
        headers[META_PREFIX + name] = value
    if not version.is_null_version:
        headers["x-amz-version-id"] = version.version_id
    if version.storage_class != "STANDARD":
        headers["x-amz-storage-class"] = version.storage_class
    if version.tags:
        headers["x-amz-tagging-count"] = str(len(version.tags))
    if version.part_sizes:
        headers["x-amz-mp-parts-count"] = str(len(version.part_sizes))
    if checksum_mode and version.checksum_algorithm and version.checksum_value:
        headers[checksums.header_name(version.checksum_algorithm)] = version.checksum_value
        if version.checksum_type:
            headers["x-amz-checksum-type"] = version.checksum_type
    return headers


def restore_header(status: RestoreStatus | None) -> dict[str, str]:
    """``x-amz-restore`` of an archived version with a restore in progress or done."""
    if status is None or (not status.ongoing and status.expires_at is None):
        return {}
    if status.ongoing:
        return {"x-amz-restore": 'ongoing-request="true"'}
    assert status.expires_at is not None
    expiry = http_date(status.expires_at)
    return {"x-amz-restore": f'ongoing-request="false", expiry-date="{expiry}"'}


RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}


def response_overrides(query: Mapping[str, str]) -> dict[str, str]:
    return {header: query[name] for name, header in RESPONSE_OVERRIDES.items() if name in query}


def url_encode_key(key: str) -> str:
    return quote(key, safe="/")


def check_version_id(value: str | None) -> str | None:
    if value is None:
        return None
    if value == "" or len(value) > 1024:
        raise InvalidArgument("Invalid version id specified", ArgumentName="versionId")
    return value


def reject_unknown_encoding(value: str | None) -> None:
    if value is not None and value not in ("url",):
        raise InvalidArgument(
            "Invalid Encoding Method specified in Request", ArgumentName="encoding-type"
        )
