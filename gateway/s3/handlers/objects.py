"""Object operations: PUT, GET, HEAD, DELETE, DeleteObjects, copy, tagging."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from gateway import checksums
from gateway.errors import InvalidArgument, MalformedXML, NotImplementedError_, S3Error
from gateway.s3 import actions, sse, xml
from gateway.s3 import headers as h
from gateway.s3.body import read_small_body, request_body
from gateway.s3.call import S3Call, empty_response, xml_response
from gateway.s3.handlers.buckets import parse_tag_set, render_tag_set
from gateway.services.access import Access, authorize
from gateway.services.objects import (
    CopyObjectInput,
    CopySource,
    GetObjectInput,
    GetObjectResult,
    PutObjectInput,
)
from metadata.models import VersionRow

log = logging.getLogger(__name__)
MAX_DELETE_OBJECTS = 1000
MAX_DELETE_BODY_BYTES = 2 * 1024 * 1024


class StreamAborted(Exception):
    """The body failed after the status line was sent; only closing the connection is left."""


def _if_none_match_star(call: S3Call) -> bool:
    value = call.request.headers.get("If-None-Match")
    if value is None:
        return False
    if value.strip() != "*":
        raise NotImplementedError_("If-None-Match on a write only supports '*'.")
    return True


def _write_headers(version: VersionRow, client_algorithm: str | None) -> dict[str, str]:
    headers = {"ETag": f'"{version.etag}"'}
    if not version.is_null_version:
        headers["x-amz-version-id"] = version.version_id
    algorithm = version.checksum_algorithm
    if algorithm and version.checksum_value and (client_algorithm or algorithm == "CRC64NVME"):
        headers[checksums.header_name(algorithm)] = version.checksum_value
        headers["x-amz-checksum-type"] = version.checksum_type or "FULL_OBJECT"
    return headers


async def put_object(call: S3Call) -> web.StreamResponse:
    body, expected = request_body(call.request, call.identity)
    put = PutObjectInput(
        call.key,
        h.attributes(call.request.headers),
        expected,
        _if_none_match_star(call),
        call.request.headers.get("If-Match"),
        sse=sse.sse_request(call.request.headers),
        secure=call.request.secure,
    )
    version = await call.services.objects.put(call.ctx, call.bucket, put, body)
    headers = _write_headers(version, expected.checksum_algorithm)
    headers.update(sse.response_headers(version.encryption, call.request.headers))
    return empty_response(headers=headers)


def _get_input(call: S3Call) -> GetObjectInput:
    query = call.request.query
    part = query.get("partNumber")
    part_number = h.int_param(query, "partNumber", 0) if part is not None else None
    return GetObjectInput(
        key=call.key,
        version_id=h.check_version_id(query.get("versionId")),
        conditions=h.conditions(call.request.headers),
        range=h.byte_range(call.request.headers.get("Range")),
        part_number=part_number,
        public_only=call.access is Access.IF_OBJECT_PUBLIC,
        customer_key=sse.read_key(call.request.headers),
        secure=call.request.secure,
    )


def _read_headers(call: S3Call, result: GetObjectResult) -> tuple[int, dict[str, str]]:
    checksum_mode = call.request.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED"
    version = result.version
    headers = h.object_headers(version, checksum_mode and result.content_range is None)
    headers.update(h.response_overrides(call.request.query))
    headers.update(h.restore_header(result.restore))
    headers.update(sse.response_headers(version.encryption, call.request.headers))
    if result.content_range is None:
        return 200, headers
    first, last = result.content_range
    headers["Content-Range"] = f"bytes {first}-{last}/{version.size_bytes}"
    return 206, headers


async def get_object(call: S3Call) -> web.StreamResponse:
    result = await call.services.objects.get(call.bucket, _get_input(call))
    status, headers = _read_headers(call, result)
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = result.content_length
    await response.prepare(call.request)
    assert result.body is not None
    try:
        async for chunk in result.body:
            await response.write(chunk)
    except (S3Error, OSError, Exception) as exc:
        log.warning("GET %s/%s aborted mid-stream: %s", call.bucket.name, call.key, exc)
        raise StreamAborted() from exc
    await response.write_eof()
    return response


async def head_object(call: S3Call) -> web.StreamResponse:
    result = await call.services.objects.head(call.bucket, _get_input(call))
    status, headers = _read_headers(call, result)
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = result.content_length
    return response


async def delete_object(call: S3Call) -> web.StreamResponse:
    version_id = h.check_version_id(call.request.query.get("versionId"))
    result = await call.services.objects.delete(call.bucket, call.key, version_id)
    headers = {}
    if result.version_id is not None:
        headers["x-amz-version-id"] = result.version_id
    if result.delete_marker:
        headers["x-amz-delete-marker"] = "true"
    return empty_response(204, headers)


def _delete_targets(doc: dict[str, Any]) -> tuple[list[tuple[str, str | None]], bool]:
    objects = xml.as_list(doc.get("Object"))
    if not objects or len(objects) > MAX_DELETE_OBJECTS:
        raise MalformedXML()
    targets = []
    for item in objects:
        if not isinstance(item, dict) or not isinstance(item.get("Key"), str):
            raise MalformedXML()
        version = item.get("VersionId")
        targets.append((item["Key"], version if isinstance(version, str) else None))
    quiet = str(doc.get("Quiet", "false")).strip().lower() == "true"
    return targets, quiet


async def delete_objects(call: S3Call) -> web.StreamResponse:
    data = await read_small_body(call.request, call.identity, MAX_DELETE_BODY_BYTES)
    targets, quiet = _delete_targets(xml.parse(data, "Delete"))
    deleted: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for key, version_id in targets:
        try:
            authorize(call.ctx, call.bucket, actions.versioned("s3:DeleteObject", version_id),
                      key, None)  # fmt: skip
            result = await call.services.objects.delete(call.bucket, key, version_id)
        except S3Error as exc:
            errors.append(
                {"Key": key, "VersionId": version_id, "Code": exc.code, "Message": exc.message}
            )
            continue
        if quiet:
            continue
        entry: dict[str, Any] = {"Key": key, "VersionId": version_id}
        if result.delete_marker:
            entry["DeleteMarker"] = True
            entry["DeleteMarkerVersionId"] = result.version_id
        deleted.append(entry)
    return xml_response(xml.render("DeleteResult", {"Deleted": deleted, "Error": errors}))


async def copy_source(call: S3Call) -> CopySource:
    bucket_name, key, version_id = h.copy_source(call.request.headers["x-amz-copy-source"])
    read = actions.versioned("s3:GetObject", version_id)
    bucket, access = await call.services.buckets.resolve(call.ctx, bucket_name, read, key)
    return CopySource(
        bucket,
        key,
        version_id,
        h.conditions(call.request.headers, "x-amz-copy-source-"),
        public_only=access is Access.IF_OBJECT_PUBLIC,
        customer_key=sse.read_key(call.request.headers, sse.COPY_CUSTOMER),
        secure=call.request.secure,
    )


def _directive(call: S3Call, name: str) -> bool:
    """True for REPLACE, False for COPY."""
    value = call.request.headers.get(name, "COPY").upper()
    if value not in ("COPY", "REPLACE"):
        raise InvalidArgument(f"Unknown {name}", ArgumentName=name, ArgumentValue=value)
    return value == "REPLACE"


async def copy_object(call: S3Call) -> web.StreamResponse:
    source = await copy_source(call)
    request_headers = call.request.headers
    attributes = h.attributes(request_headers)
    copy = CopyObjectInput(
        key=call.key,
        source=source,
        replace_attributes=attributes if _directive(call, "x-amz-metadata-directive") else None,
        replace_tags=attributes.tags if _directive(call, "x-amz-tagging-directive") else None,
        storage_class=request_headers.get("x-amz-storage-class"),
        acl=attributes.acl,
        sse=sse.sse_request(request_headers),
        secure=call.request.secure,
    )
    source_version, version = await call.services.objects.copy(call.ctx, call.bucket, copy)
    headers = {}
    if not source_version.is_null_version:
        headers["x-amz-copy-source-version-id"] = source_version.version_id
    if not version.is_null_version:
        headers["x-amz-version-id"] = version.version_id
    headers.update(sse.response_headers(version.encryption, call.request.headers))
    body = {"LastModified": xml.iso_time(version.created_at), "ETag": f'"{version.etag}"'}
    if version.checksum_algorithm and version.checksum_value:
        body[f"Checksum{version.checksum_algorithm}"] = version.checksum_value
        body["ChecksumType"] = version.checksum_type or "FULL_OBJECT"
    return xml_response(xml.render("CopyObjectResult", body), headers=headers)


async def get_object_tagging(call: S3Call) -> web.StreamResponse:
    version_id = h.check_version_id(call.request.query.get("versionId"))
    version = await call.services.objects.get_tags(call.bucket, call.key, version_id)
    headers = {} if version.is_null_version else {"x-amz-version-id": version.version_id}
    return xml_response(xml.render("Tagging", render_tag_set(version.tags)), headers=headers)


async def put_object_tagging(call: S3Call) -> web.StreamResponse:
    version_id = h.check_version_id(call.request.query.get("versionId"))
    data = await read_small_body(call.request, call.identity, 64 * 1024)
    tags = parse_tag_set(xml.parse(data, "Tagging"))
    version = await call.services.objects.put_tags(call.bucket, call.key, version_id, tags)
    headers = {} if version.is_null_version else {"x-amz-version-id": version.version_id}
    return empty_response(headers=headers)


async def delete_object_tagging(call: S3Call) -> web.StreamResponse:
    version_id = h.check_version_id(call.request.query.get("versionId"))
    version = await call.services.objects.put_tags(call.bucket, call.key, version_id, {})
    headers = {} if version.is_null_version else {"x-amz-version-id": version.version_id}
    return empty_response(204, headers)
