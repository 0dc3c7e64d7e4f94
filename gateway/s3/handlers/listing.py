"""ListObjects, ListObjectsV2 and ListObjectVersions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web

from gateway.s3 import headers as h
from gateway.s3 import xml
from gateway.s3.call import S3Call, xml_response
from gateway.services.listing import (
    MAX_KEYS,
    ListObjectsInput,
    ListObjectsResult,
    ListVersionsInput,
)
from metadata.models import ListedObject, VersionRow

Encoder = Callable[[str], str]


def _encoder(call: S3Call) -> tuple[Encoder, str | None]:
    encoding = call.request.query.get("encoding-type")
    h.reject_unknown_encoding(encoding)
    if encoding == "url":
        return h.url_encode_key, "url"
    return (lambda s: s), None


def _owner(call: S3Call) -> dict[str, str]:
    return {"ID": call.bucket.owner_access_key, "DisplayName": call.bucket.owner_access_key}


def _content(listed: ListedObject, encode: Encoder, owner_xml: str) -> xml.Raw:
    # Rendered by hand: a page holds a thousand of these and generic rendering dominates.
    checksum = ""
    if listed.checksum_algorithm:
        checksum = f"<ChecksumAlgorithm>{listed.checksum_algorithm}</ChecksumAlgorithm>"
        if listed.checksum_type:
            checksum += f"<ChecksumType>{listed.checksum_type}</ChecksumType>"
    return xml.Raw(
        f"<Contents><Key>{escape(encode(listed.key))}</Key>"
        f"<LastModified>{listed.last_modified}</LastModified>"
        f"<ETag>&quot;{escape(listed.etag)}&quot;</ETag>{checksum}"
        f"<Size>{listed.size_bytes}</Size><StorageClass>{listed.storage_class}</StorageClass>"
        f"{owner_xml}</Contents>"
    )


def _contents(
    call: S3Call, result: ListObjectsResult, encode: Encoder, owner: bool
) -> tuple[list[xml.Raw], list[dict[str, str]]]:
    contents: list[xml.Raw] = []
    prefixes: list[dict[str, str]] = []
    owner_xml = ""
    if owner:
        who = escape(call.bucket.owner_access_key)
        owner_xml = f"<Owner><ID>{who}</ID><DisplayName>{who}</DisplayName></Owner>"
    for entry in result.entries:
        if entry.is_prefix or entry.version is None:
            prefixes.append({"Prefix": encode(entry.key)})
        else:
            contents.append(_content(entry.version, encode, owner_xml))
    return contents, prefixes


async def list_objects_v2(call: S3Call) -> web.StreamResponse:
    query = call.request.query
    encode, encoding = _encoder(call)
    max_keys = h.int_param(query, "max-keys", MAX_KEYS)
    token = query.get("continuation-token")
    result = await call.services.listing.list_objects(
        call.bucket,
        ListObjectsInput(
            prefix=query.get("prefix", ""),
            delimiter=query.get("delimiter", ""),
            max_keys=max_keys,
            after=query.get("start-after", ""),
            continuation_token=token,
        ),
    )
    contents, prefixes = _contents(call, result, encode, query.get("fetch-owner") == "true")
    body: dict[str, Any] = {
        "Name": call.bucket.name,
        "Prefix": encode(query.get("prefix", "")),
        "Delimiter": encode(query["delimiter"]) if query.get("delimiter") else None,
        "MaxKeys": max_keys,
        "EncodingType": encoding,
        "KeyCount": len(contents) + len(prefixes),
        "IsTruncated": result.is_truncated,
        "ContinuationToken": token,
        "NextContinuationToken": result.next_token,
        "StartAfter": encode(query["start-after"]) if query.get("start-after") else None,
        "Contents": contents,
        "CommonPrefixes": prefixes,
    }
    return xml_response(xml.render("ListBucketResult", body))


async def list_objects(call: S3Call) -> web.StreamResponse:
    query = call.request.query
    encode, encoding = _encoder(call)
    max_keys = h.int_param(query, "max-keys", MAX_KEYS)
    marker = query.get("marker", "")
    delimiter = query.get("delimiter", "")
    result = await call.services.listing.list_objects(
        call.bucket,
        ListObjectsInput(
            prefix=query.get("prefix", ""), delimiter=delimiter, max_keys=max_keys, after=marker
        ),
    )
    contents, prefixes = _contents(call, result, encode, owner=True)
    next_marker = result.last if result.is_truncated and delimiter else None
    body: dict[str, Any] = {
        "Name": call.bucket.name,
        "Prefix": encode(query.get("prefix", "")),
        "Marker": encode(marker),
        "NextMarker": encode(next_marker) if next_marker else None,
        "MaxKeys": max_keys,
        "Delimiter": encode(delimiter) if delimiter else None,
        "EncodingType": encoding,
        "IsTruncated": result.is_truncated,
        "Contents": contents,
        "CommonPrefixes": prefixes,
    }
    return xml_response(xml.render("ListBucketResult", body))


def _version_entry(call: S3Call, version: VersionRow, encode: Encoder) -> tuple[str, Any]:
    common: dict[str, Any] = {
        "Key": encode(version.key),
        "VersionId": version.visible_version_id,
        "IsLatest": version.is_latest,
        "LastModified": xml.iso_time(version.created_at),
    }
    if version.is_delete_marker:
        common["Owner"] = _owner(call)
        return "DeleteMarker", common
    common.update(
        {
            "ETag": f'"{version.etag}"',
            "ChecksumAlgorithm": version.checksum_algorithm,
            "ChecksumType": version.checksum_type,
            "Size": version.size_bytes,
            "StorageClass": version.storage_class,
            "Owner": _owner(call),
        }
    )
    return "Version", common


async def list_object_versions(call: S3Call) -> web.StreamResponse:
    query = call.request.query
    encode, encoding = _encoder(call)
    max_keys = h.int_param(query, "max-keys", MAX_KEYS)
    request = ListVersionsInput(
        prefix=query.get("prefix", ""),
        delimiter=query.get("delimiter", ""),
        max_keys=max_keys,
        key_marker=query.get("key-marker", ""),
        version_id_marker=query.get("version-id-marker", ""),
    )
    result = await call.services.listing.list_versions(call.bucket, request)
    entries = xml.Sequence_(_version_entry(call, v, encode) for v in result.versions)
    body: dict[str, Any] = {
        "Name": call.bucket.name,
        "Prefix": encode(request.prefix),
        "KeyMarker": encode(request.key_marker),
        "VersionIdMarker": request.version_id_marker,
        "NextKeyMarker": encode(result.next_key_marker) if result.next_key_marker else None,
        "NextVersionIdMarker": result.next_version_id_marker,
        "MaxKeys": max_keys,
        "Delimiter": encode(request.delimiter) if request.delimiter else None,
        "EncodingType": encoding,
        "IsTruncated": result.is_truncated,
        "_entries": entries,
        "CommonPrefixes": [{"Prefix": encode(p)} for p in result.common_prefixes],
    }
    return xml_response(xml.render("ListVersionsResult", body))
