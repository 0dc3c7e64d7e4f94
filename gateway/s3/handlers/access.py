"""Bucket policies and canned ACLs of buckets and objects."""

from __future__ import annotations

import json
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web

from gateway.errors import (
    MalformedACLError,
    MalformedPolicy,
    NoSuchBucketPolicy,
    NotImplementedError_,
)
from gateway.s3 import headers as h
from gateway.s3 import xml
from gateway.s3.body import read_small_body
from gateway.s3.call import S3Call, empty_response, xml_response
from gateway.services.access import statements_of
from gateway.services.access_policy import (
    ALL_USERS,
    MAX_POLICY_BYTES,
    Verdict,
    acl_permissions,
    canned_from_permissions,
)

_XSI = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'


async def get_bucket_policy(call: S3Call) -> web.StreamResponse:
    if call.bucket.policy is None:
        raise NoSuchBucketPolicy(BucketName=call.bucket.name)
    return web.Response(text=json.dumps(call.bucket.policy), content_type="application/json")


async def put_bucket_policy(call: S3Call) -> web.StreamResponse:
    data = await read_small_body(call.request, call.identity, MAX_POLICY_BYTES)
    try:
        document = json.loads(data)
    except ValueError:
        raise MalformedPolicy() from None
    if not isinstance(document, dict):
        raise MalformedPolicy()
    await call.services.buckets.set_access_policy(call.bucket, document)
    return empty_response(204)


async def delete_bucket_policy(call: S3Call) -> web.StreamResponse:
    await call.services.buckets.set_access_policy(call.bucket, None)
    return empty_response(204)


async def get_bucket_policy_status(call: S3Call) -> web.StreamResponse:
    public = any(
        s.effect is Verdict.ALLOW and "*" in s.principals and not s.conditions
        for s in statements_of(call.bucket)
    )
    return xml_response(xml.render("PolicyStatus", {"IsPublic": public}))


def _grant(grantee: str, permission: str) -> xml.Raw:
    return xml.Raw(f"<Grant>{grantee}<Permission>{permission}</Permission></Grant>")


def acl_document(owner: str, acl: str) -> bytes:
    """An AccessControlPolicy: the owner with FULL_CONTROL, plus what ``acl`` grants all."""
    name = xml.Raw(f"<ID>{escape(owner)}</ID><DisplayName>{escape(owner)}</DisplayName>")
    grants = [_grant(f'<Grantee {_XSI} xsi:type="CanonicalUser">{name}</Grantee>', "FULL_CONTROL")]
    grants += [
        _grant(f'<Grantee {_XSI} xsi:type="Group"><URI>{ALL_USERS}</URI></Grantee>', permission)
        for permission in acl_permissions(acl)
    ]
    return xml.render(
        "AccessControlPolicy",
        {
            "Owner": {"ID": owner, "DisplayName": owner},
            "AccessControlList": xml.Raw(
                f"<AccessControlList>{''.join(grants)}</AccessControlList>"
            ),
        },
    )


async def _requested_acl(call: S3Call, owner: str) -> str:
    """The canned ACL a PutBucketAcl/PutObjectAcl asks for, by header or by document."""
    data = await read_small_body(call.request, call.identity, xml.MAX_XML_BODY_BYTES)
    if not data.strip():
        return h.canned_acl(call.request.headers)
    if "x-amz-acl" in call.request.headers:
        raise MalformedACLError("Specify either x-amz-acl or an AccessControlPolicy, not both.")
    document = xml.parse(data, "AccessControlPolicy")
    grants = xml.as_list((document.get("AccessControlList") or {}).get("Grant"))
    public: set[str] = set()
    owner_full = False
    for grant in grants:
        grantee: dict[str, Any] = grant.get("Grantee") or {} if isinstance(grant, dict) else {}
        permission = grant.get("Permission") if isinstance(grant, dict) else None
        if grantee.get("URI") == ALL_USERS and permission in ("READ", "WRITE"):
            public.add(str(permission))
        elif grantee.get("ID") == owner and permission == "FULL_CONTROL":
            owner_full = True
        else:
            raise NotImplementedError_("Skybridge supports the grants of canned ACLs only.")
    canned = canned_from_permissions(public)
    if not owner_full or canned is None:
        raise NotImplementedError_("Skybridge supports the grants of canned ACLs only.")
    return canned


async def get_bucket_acl(call: S3Call) -> web.StreamResponse:
    return xml_response(acl_document(call.bucket.tenant, call.bucket.acl))


async def put_bucket_acl(call: S3Call) -> web.StreamResponse:
    acl = await _requested_acl(call, call.bucket.tenant)
    await call.services.buckets.set_acl(call.bucket, acl)
    return empty_response()


async def get_object_acl(call: S3Call) -> web.StreamResponse:
    version_id = h.check_version_id(call.request.query.get("versionId"))
    version = await call.services.objects.current(call.bucket, call.key, version_id)
    headers = {} if version.is_null_version else {"x-amz-version-id": version.version_id}
    return xml_response(acl_document(call.bucket.tenant, version.acl), headers=headers)


async def put_object_acl(call: S3Call) -> web.StreamResponse:
    version_id = h.check_version_id(call.request.query.get("versionId"))
    acl = await _requested_acl(call, call.bucket.tenant)
    version = await call.services.objects.set_acl(call.bucket, call.key, version_id, acl)
    headers = {} if version.is_null_version else {"x-amz-version-id": version.version_id}
    return empty_response(headers=headers)
