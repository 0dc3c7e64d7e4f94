"""Bucket default encryption: PutBucketEncryption, GetBucketEncryption, DeleteBucketEncryption."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.crypto.envelope import SSE_KMS, SSE_S3
from gateway.errors import MalformedXML, ServerSideEncryptionConfigurationNotFoundError
from gateway.s3 import xml
from gateway.s3.body import read_small_body
from gateway.s3.call import S3Call, empty_response, xml_response

MAX_CONFIG_BYTES = 16 * 1024


def _rule(document: dict[str, Any]) -> dict[str, Any]:
    """The one rule of a ServerSideEncryptionConfiguration, as stored."""
    rules = xml.as_list(document.get("Rule"))
    if len(rules) != 1 or not isinstance(rules[0], dict):
        raise MalformedXML()
    default = rules[0].get("ApplyServerSideEncryptionByDefault")
    if not isinstance(default, dict) or default.get("SSEAlgorithm") not in (SSE_S3, SSE_KMS):
        raise MalformedXML()
    key_id = default.get("KMSMasterKeyID")
    if key_id is not None and (default["SSEAlgorithm"] != SSE_KMS or not isinstance(key_id, str)):
        raise MalformedXML()
    rule: dict[str, Any] = {"SSEAlgorithm": default["SSEAlgorithm"]}
    if key_id:
        rule["KMSMasterKeyID"] = key_id
    return rule


async def put_bucket_encryption(call: S3Call) -> web.StreamResponse:
    data = await read_small_body(call.request, call.identity, MAX_CONFIG_BYTES)
    rule = _rule(xml.parse(data, "ServerSideEncryptionConfiguration"))
    call.services.objects.check_kms_key(rule.get("KMSMasterKeyID"))
    await call.services.buckets.set_encryption(call.bucket, rule)
    return empty_response()


async def get_bucket_encryption(call: S3Call) -> web.StreamResponse:
    rule = call.bucket.encryption
    if rule is None:
        raise ServerSideEncryptionConfigurationNotFoundError(BucketName=call.bucket.name)
    body = {"Rule": {"ApplyServerSideEncryptionByDefault": rule, "BucketKeyEnabled": False}}
    return xml_response(xml.render("ServerSideEncryptionConfiguration", body))


async def delete_bucket_encryption(call: S3Call) -> web.StreamResponse:
    await call.services.buckets.set_encryption(call.bucket, None)
    return empty_response(204)
