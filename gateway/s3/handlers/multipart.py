"""Multipart upload operations."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway import checksums
from gateway.errors import InvalidArgument, InvalidRequest, MalformedXML
from gateway.s3 import headers as h
from gateway.s3 import sse, xml
from gateway.s3.body import read_small_body, request_body
from gateway.s3.call import S3Call, empty_response, xml_response
from gateway.s3.handlers.objects import copy_source
from gateway.services.multipart import (
    CompletedPartInput,
    CompleteUploadInput,
    CreateUploadInput,
    PartResult,
)

MAX_COMPLETE_BODY_BYTES = 4 * 1024 * 1024


def _part_number(call: S3Call) -> int:
    return h.int_param(call.request.query, "partNumber", 0)


def _upload_id(call: S3Call) -> str:
    upload_id = call.request.query.get("uploadId", "")
    if not upload_id:
        raise InvalidArgument("The upload ID may not be empty", ArgumentName="uploadId")
    return upload_id


def _checksum_headers(part: PartResult) -> dict[str, str]:
    if part.checksum_algorithm and part.checksum:
        return {checksums.header_name(part.checksum_algorithm): part.checksum}
    return {}


async def create_multipart_upload(call: S3Call) -> web.StreamResponse:
    request_headers = call.request.headers
    algorithm = request_headers.get("x-amz-checksum-algorithm")
    upload = await call.services.multipart.create(
        call.ctx,
        call.bucket,
        CreateUploadInput(
            key=call.key,
            attributes=h.attributes(request_headers),
            checksum_algorithm=algorithm,
            checksum_type=request_headers.get("x-amz-checksum-type"),
            sse=sse.sse_request(request_headers),
            secure=call.request.secure,
        ),
    )
    headers = {}
    if upload.checksum_algorithm:
        headers["x-amz-checksum-algorithm"] = upload.checksum_algorithm
        headers["x-amz-checksum-type"] = upload.checksum_type or "COMPOSITE"
    headers.update(sse.response_headers(upload.encryption, request_headers))
    body = {"Bucket": call.bucket.name, "Key": call.key, "UploadId": upload.upload_id}
    return xml_response(xml.render("InitiateMultipartUploadResult", body), headers=headers)


async def upload_part(call: S3Call) -> web.StreamResponse:
    body, expected = request_body(call.request, call.identity)
    part = await call.services.multipart.upload_part(
        call.bucket, call.key, _upload_id(call), _part_number(call), expected, body,
        sse.read_key(call.request.headers),
    )  # fmt: skip
    headers = {"ETag": f'"{part.etag}"', **_checksum_headers(part)}
    headers.update(sse.response_headers(part.encryption, call.request.headers))
    return empty_response(headers=headers)


async def upload_part_copy(call: S3Call) -> web.StreamResponse:
    source = await copy_source(call)
    source_range = h.copy_range(call.request.headers.get("x-amz-copy-source-range"))
    version, part = await call.services.multipart.upload_part_copy(
        call.ctx, call.bucket, call.key, _upload_id(call), _part_number(call), source,
        source_range, sse.read_key(call.request.headers),
    )  # fmt: skip
    headers = {}
    if not version.is_null_version:
        headers["x-amz-copy-source-version-id"] = version.version_id
    headers.update(sse.response_headers(part.encryption, call.request.headers))
    body: dict[str, Any] = {
        "ETag": f'"{part.etag}"',
        "LastModified": xml.iso_time(version.created_at),
    }
    if part.checksum_algorithm:
        body[f"Checksum{part.checksum_algorithm}"] = part.checksum
    return xml_response(xml.render("CopyPartResult", body), headers=headers)


def _completed_parts(doc: dict[str, Any]) -> list[CompletedPartInput]:
    parts = []
    for item in xml.as_list(doc.get("Part")):
        if not isinstance(item, dict) or "PartNumber" not in item or "ETag" not in item:
            raise MalformedXML()
        try:
            number = int(str(item["PartNumber"]))
        except ValueError:
            raise MalformedXML() from None
        checksum = next(
            (str(item[f"Checksum{a}"]) for a in checksums.ALGORITHMS if f"Checksum{a}" in item),
            None,
        )
        parts.append(CompletedPartInput(number, str(item["ETag"]), checksum))
    return parts


async def complete_multipart_upload(call: S3Call) -> web.StreamResponse:
    data = await read_small_body(call.request, call.identity, MAX_COMPLETE_BODY_BYTES)
    parts = _completed_parts(xml.parse(data, "CompleteMultipartUpload"))
    if_none_match = call.request.headers.get("If-None-Match")
    if if_none_match is not None and if_none_match.strip() != "*":
        raise InvalidRequest("If-None-Match only supports '*'")
    version = await call.services.multipart.complete(
        call.ctx,
        call.bucket,
        CompleteUploadInput(
            call.key,
            _upload_id(call),
            parts,
            if_none_match is not None,
            call.request.headers.get("If-Match"),
        ),
    )
    headers = {} if version.is_null_version else {"x-amz-version-id": version.version_id}
    headers.update(sse.response_headers(version.encryption, call.request.headers))
    body: dict[str, Any] = {
        "Location": f"/{call.bucket.name}/{h.url_encode_key(call.key)}",
        "Bucket": call.bucket.name,
        "Key": call.key,
        "ETag": f'"{version.etag}"',
    }
    if version.checksum_algorithm and version.checksum_value:
        body[f"Checksum{version.checksum_algorithm}"] = version.checksum_value
        body["ChecksumType"] = version.checksum_type
    return xml_response(xml.render("CompleteMultipartUploadResult", body), headers=headers)


async def abort_multipart_upload(call: S3Call) -> web.StreamResponse:
    await call.services.multipart.abort(call.bucket, call.key, _upload_id(call))
    return empty_response(204)


async def list_parts(call: S3Call) -> web.StreamResponse:
    query = call.request.query
    marker = h.int_param(query, "part-number-marker", 0)
    max_parts = h.int_param(query, "max-parts", 1000)
    upload, parts, truncated = await call.services.multipart.list_parts(
        call.bucket, call.key, _upload_id(call), marker, max_parts
    )
    owner = {"ID": upload.owner_access_key, "DisplayName": upload.owner_access_key}
    body: dict[str, Any] = {
        "Bucket": call.bucket.name,
        "Key": call.key,
        "UploadId": upload.upload_id,
        "Initiator": owner,
        "Owner": owner,
        "StorageClass": upload.storage_class,
        "PartNumberMarker": marker,
        "NextPartNumberMarker": parts[-1].part_number if parts else marker,
        "MaxParts": max_parts,
        "IsTruncated": truncated,
        "ChecksumAlgorithm": upload.checksum_algorithm,
        "ChecksumType": upload.checksum_type,
        "Part": [_part_entry(p, upload.checksum_algorithm) for p in parts],
    }
    return xml_response(xml.render("ListPartsResult", body))


def _part_entry(part: Any, algorithm: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "PartNumber": part.part_number,
        "LastModified": xml.iso_time(part.created_at),
        "ETag": f'"{part.etag}"',
        "Size": part.size_bytes,
    }
    if algorithm and part.checksum_value:
        entry[f"Checksum{algorithm}"] = part.checksum_value
    return entry


async def list_multipart_uploads(call: S3Call) -> web.StreamResponse:
    query = call.request.query
    prefix = query.get("prefix", "")
    key_marker = query.get("key-marker", "")
    upload_marker = query.get("upload-id-marker", "")
    max_uploads = h.int_param(query, "max-uploads", 1000)
    uploads, truncated = await call.services.multipart.list_uploads(
        call.bucket, prefix, key_marker, upload_marker, max_uploads
    )
    last = uploads[-1] if uploads and truncated else None
    body: dict[str, Any] = {
        "Bucket": call.bucket.name,
        "KeyMarker": key_marker,
        "UploadIdMarker": upload_marker,
        "NextKeyMarker": last.key if last else None,
        "NextUploadIdMarker": last.upload_id if last else None,
        "Prefix": prefix,
        "MaxUploads": max_uploads,
        "IsTruncated": truncated,
        "Upload": [
            {
                "Key": u.key,
                "UploadId": u.upload_id,
                "Initiator": {"ID": u.owner_access_key},
                "Owner": {"ID": u.owner_access_key},
                "StorageClass": u.storage_class,
                "Initiated": xml.iso_time(u.initiated_at),
            }
            for u in uploads
        ],
    }
    return xml_response(xml.render("ListMultipartUploadsResult", body))
