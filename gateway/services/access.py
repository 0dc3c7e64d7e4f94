"""Who may do what to a bucket: its tenant, then its bucket policy and canned ACLs.

Order, as in AWS: an explicit Deny in the bucket policy refuses anyone (except the owning
tenant managing the policy itself, so it cannot lock itself out); the owning tenant may do
everything; others need an Allow in the policy or a grant of the bucket's ACL. A read that
only an object's own ACL could grant is decided when the object is read.
"""

from __future__ import annotations

import json
from enum import StrEnum
from functools import lru_cache

from gateway.errors import AccessDenied
from gateway.services.access_policy import (
    OBJECT_ACL_READ_ACTIONS,
    AccessRequest,
    Caller,
    Statement,
    Verdict,
    bucket_acl_grants,
    evaluate,
    parse_policy,
    resource_arn,
)
from gateway.services.context import RequestContext
from metadata.models import BucketRow

# The owning tenant can always manage the policy, whatever the policy says.
_POLICY_ACTIONS = frozenset({"s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"})


class Access(StrEnum):
    GRANTED = "granted"
    # Granted only if the object's canned ACL grants public read.
    IF_OBJECT_PUBLIC = "if-object-public"


@lru_cache(maxsize=1024)
def _statements(bucket: str, document: str) -> tuple[Statement, ...]:
    # Stored policies were validated when they were put.
    return parse_policy(json.loads(document), bucket)


def statements_of(bucket: BucketRow) -> tuple[Statement, ...]:
    if not bucket.policy:
        return ()
    return _statements(bucket.name, json.dumps(bucket.policy, sort_keys=True))


def authorize(
    ctx: RequestContext, bucket: BucketRow, action: str, key: str | None, prefix: str | None
) -> Access:
    """How far ``ctx`` may do ``action``; AccessDenied when not at all."""
    caller = Caller(None if ctx.anonymous else ctx.tenant, ctx.user)
    owner = caller.tenant == bucket.tenant
    statements = statements_of(bucket)
    verdict = None
    if statements:
        request = AccessRequest(
            caller, action, resource_arn(bucket.name, key), ctx.source_ip, prefix
        )
        verdict = evaluate(statements, request)
    if verdict is Verdict.DENY and not (owner and action in _POLICY_ACTIONS):
        raise AccessDenied()
    if owner or verdict is Verdict.ALLOW or bucket_acl_grants(bucket.acl, action):
        return Access.GRANTED
    if key is not None and action in OBJECT_ACL_READ_ACTIONS:
        return Access.IF_OBJECT_PUBLIC
    raise AccessDenied()
