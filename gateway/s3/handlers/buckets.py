"""Bucket operations."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.errors import (
    IllegalVersioningConfigurationException,
    InvalidTag,
    MalformedXML,
    NoSuchCORSConfiguration,
    NoSuchTagSet,
)
from gateway.s3 import headers as h
from gateway.s3 import xml
from gateway.s3.body import read_small_body
from gateway.s3.call import S3Call, empty_response, xml_response

MAX_CONFIG_BYTES = 64 * 1024
CORS_METHODS = frozenset({"GET", "PUT", "POST", "DELETE", "HEAD"})


async def _document(call: S3Call, root: str) -> dict[str, Any]:
    data = await read_small_body(call.request, call.identity, MAX_CONFIG_BYTES)
    return xml.parse(data, root)


async def list_buckets(call: S3Call) -> web.StreamResponse:
    buckets = await call.services.buckets.list_owned(call.ctx)
    body = xml.render(
        "ListAllMyBucketsResult",
        {
            "Owner": {"ID": call.ctx.access_key, "DisplayName": call.ctx.access_key},
            "Buckets": {
                "Bucket": [
                    {"Name": b.name, "CreationDate": xml.iso_time(b.created_at)} for b in buckets
                ]
            },
        },
    )
    return xml_response(body)


async def create_bucket(call: S3Call) -> web.StreamResponse:
    location = None
    data = await read_small_body(call.request, call.identity, MAX_CONFIG_BYTES)
    if data.strip():
        config = xml.parse(data, "CreateBucketConfiguration")
        location = config.get("LocationConstraint") or None
        if location is not None and not isinstance(location, str):
            raise MalformedXML()
    name = call.endpoint.bucket or ""
    await call.services.buckets.create(call.ctx, name, location, h.canned_acl(call.request.headers))
    return empty_response(headers={"Location": f"/{name}"})


async def delete_bucket(call: S3Call) -> web.StreamResponse:
    await call.services.buckets.delete(call.bucket)
    return empty_response(204)


async def head_bucket(call: S3Call) -> web.StreamResponse:
    return empty_response(headers={"x-amz-bucket-region": call.bucket.location})


async def get_bucket_location(call: S3Call) -> web.StreamResponse:
    # us-east-1 is reported as an empty constraint, as AWS does.
    location = "" if call.bucket.location == "us-east-1" else call.bucket.location
    return xml_response(xml.render_text("LocationConstraint", location))


async def get_bucket_versioning(call: S3Call) -> web.StreamResponse:
    status = call.bucket.versioning
    body = {"Status": status} if status != "Unversioned" else {}
    return xml_response(xml.render("VersioningConfiguration", body))


async def put_bucket_versioning(call: S3Call) -> web.StreamResponse:
    config = await _document(call, "VersioningConfiguration")
    status = config.get("Status")
    if status not in ("Enabled", "Suspended"):
        raise IllegalVersioningConfigurationException()
    await call.services.buckets.set_versioning(call.bucket, status)
    return empty_response()


def parse_tag_set(config: dict[str, Any]) -> dict[str, str]:
    tag_set = config.get("TagSet") or {}
    if not isinstance(tag_set, dict):
        raise MalformedXML()
    tags: dict[str, str] = {}
    for tag in xml.as_list(tag_set.get("Tag")):
        if not isinstance(tag, dict) or not isinstance(tag.get("Key"), str):
            raise MalformedXML()
        key, value = tag["Key"], tag.get("Value") or ""
        if key in tags:
            raise InvalidTag("Cannot provide multiple Tags with the same key")
        tags[key] = value if isinstance(value, str) else ""
    return tags


def render_tag_set(tags: dict[str, str]) -> dict[str, Any]:
    return {"TagSet": {"Tag": [{"Key": k, "Value": v} for k, v in tags.items()]}}


async def get_bucket_tagging(call: S3Call) -> web.StreamResponse:
    if not call.bucket.tags:
        raise NoSuchTagSet(BucketName=call.bucket.name)
    return xml_response(xml.render("Tagging", render_tag_set(call.bucket.tags)))


async def put_bucket_tagging(call: S3Call) -> web.StreamResponse:
    tags = parse_tag_set(await _document(call, "Tagging"))
    await call.services.buckets.set_tags(call.bucket, tags)
    return empty_response(204)


async def delete_bucket_tagging(call: S3Call) -> web.StreamResponse:
    await call.services.buckets.set_tags(call.bucket, None)
    return empty_response(204)


def _strings(value: Any) -> list[str]:
    items = xml.as_list(value)
    if not all(isinstance(i, str) for i in items):
        raise MalformedXML()
    return items


def parse_cors(config: dict[str, Any]) -> list[dict[str, Any]]:
    rules = []
    for rule in xml.as_list(config.get("CORSRule")):
        if not isinstance(rule, dict):
            raise MalformedXML()
        methods = _strings(rule.get("AllowedMethod"))
        origins = _strings(rule.get("AllowedOrigin"))
        if not methods or not origins or not set(methods) <= CORS_METHODS:
            raise MalformedXML()
        parsed: dict[str, Any] = {
            "AllowedMethod": methods,
            "AllowedOrigin": origins,
            "AllowedHeader": _strings(rule.get("AllowedHeader")),
            "ExposeHeader": _strings(rule.get("ExposeHeader")),
        }
        if rule.get("ID"):
            parsed["ID"] = str(rule["ID"])
        if rule.get("MaxAgeSeconds") is not None:
            parsed["MaxAgeSeconds"] = xml.integer(rule["MaxAgeSeconds"], "MaxAgeSeconds")
        rules.append(parsed)
    if not rules or len(rules) > 100:
        raise MalformedXML()
    return rules


async def get_bucket_cors(call: S3Call) -> web.StreamResponse:
    if not call.bucket.cors:
        raise NoSuchCORSConfiguration(BucketName=call.bucket.name)
    return xml_response(xml.render("CORSConfiguration", {"CORSRule": call.bucket.cors}))


async def put_bucket_cors(call: S3Call) -> web.StreamResponse:
    try:
        rules = parse_cors(await _document(call, "CORSConfiguration"))
    except ValueError:
        raise MalformedXML() from None
    await call.services.buckets.set_cors(call.bucket, rules)
    return empty_response()


async def delete_bucket_cors(call: S3Call) -> web.StreamResponse:
    await call.services.buckets.set_cors(call.bucket, None)
    return empty_response(204)
