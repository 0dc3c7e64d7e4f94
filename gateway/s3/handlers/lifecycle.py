"""Bucket lifecycle: PutBucketLifecycleConfiguration, GetBucketLifecycleConfiguration,
DeleteBucketLifecycle."""

from __future__ import annotations

from aiohttp import web

from gateway.errors import InvalidRequest, NoSuchLifecycleConfiguration
from gateway.lifecycle.rules import parse
from gateway.s3 import xml
from gateway.s3.body import read_small_body
from gateway.s3.call import S3Call, empty_response, xml_response

# A thousand rules with long prefixes and tags fit well under this.
MAX_CONFIG_BYTES = 1024 * 1024
ROOT = "LifecycleConfiguration"


def _has_integrity_check(call: S3Call) -> bool:
    headers = call.request.headers
    return (
        "Content-MD5" in headers
        or "x-amz-trailer" in headers
        or any(name.lower().startswith("x-amz-checksum-") for name in headers)
    )


async def put_bucket_lifecycle_configuration(call: S3Call) -> web.StreamResponse:
    # AWS requires the body's integrity to be provable for this operation.
    if not _has_integrity_check(call):
        raise InvalidRequest("Missing required header for this request: Content-MD5")
    data = await read_small_body(call.request, call.identity, MAX_CONFIG_BYTES)
    config = parse(xml.parse(data, ROOT))
    await call.services.buckets.set_lifecycle(call.bucket, config)
    return empty_response()


async def get_bucket_lifecycle_configuration(call: S3Call) -> web.StreamResponse:
    document = call.bucket.lifecycle
    if document is None:
        raise NoSuchLifecycleConfiguration(BucketName=call.bucket.name)
    return xml_response(xml.render(ROOT, document))


async def delete_bucket_lifecycle(call: S3Call) -> web.StreamResponse:
    await call.services.buckets.set_lifecycle(call.bucket, None)
    return empty_response(204)
