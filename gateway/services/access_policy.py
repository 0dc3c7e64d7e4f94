"""Bucket policies and canned ACLs: parsing and evaluation, pure logic.

The supported subset of the AWS policy language: ``Effect`` Allow or Deny; ``Principal``
``*``, ``{"AWS": ...}`` naming ``*``, a tenant (``arn:aws:iam::TENANT:root`` or the bare
tenant name) or a user (``arn:aws:iam::TENANT:user/NAME``); ``Action`` and ``NotAction``
with ``*`` and ``?`` wildcards; ``Resource`` as ``arn:aws:s3:::bucket`` or
``arn:aws:s3:::bucket/key-pattern``; and ``Condition`` with ``IpAddress`` /
``NotIpAddress`` on ``aws:SourceIp`` and the ``String*`` operators on ``s3:prefix``. An
explicit Deny wins over any Allow.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any

MAX_POLICY_BYTES = 20 * 1024
ARN_PREFIX = "arn:aws:s3:::"
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
CANNED_ACLS = ("private", "public-read", "public-read-write")
_IAM = re.compile(r"^arn:aws:iam::([^:]+):(root|user/(.+))$")
_STRING_OPERATORS = {"StringEquals", "StringNotEquals", "StringLike", "StringNotLike"}
_IP_OPERATORS = {"IpAddress", "NotIpAddress"}
_KEYS = {"aws:sourceip": "aws:SourceIp", "s3:prefix": "s3:prefix"}


def resource_arn(bucket: str, key: str | None) -> str:
    return f"{ARN_PREFIX}{bucket}" if key is None else f"{ARN_PREFIX}{bucket}/{key}"


class PolicyInvalid(ValueError):
    """The document is not a policy Skybridge can enforce; the message says why."""


class Verdict(StrEnum):
    ALLOW = "Allow"
    DENY = "Deny"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asks: a tenant and maybe a user, or nobody (anonymous)."""

    tenant: str | None
    user: str | None = None

    @property
    def anonymous(self) -> bool:
        return self.tenant is None


@dataclass(frozen=True, slots=True)
class AccessRequest:
    caller: Caller
    action: str  # e.g. "s3:GetObject"
    resource: str  # e.g. "arn:aws:s3:::bucket/key"
    source_ip: str
    prefix: str | None = None  # the ListBucket prefix, for s3:prefix


@dataclass(frozen=True, slots=True)
class Condition:
    operator: str
    key: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Statement:
    effect: Verdict
    principals: tuple[str, ...]  # "*", "tenant:T" or "user:T/U"
    actions: tuple[str, ...]
    not_actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditions: tuple[Condition, ...]


def _regex(glob: str) -> str:
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob) + r"\Z"


@lru_cache(maxsize=4096)
def _pattern(glob: str) -> re.Pattern[str]:
    """Action names match without regard to case."""
    return re.compile(_regex(glob), re.IGNORECASE | re.DOTALL)


@lru_cache(maxsize=4096)
def _case_pattern(glob: str) -> re.Pattern[str]:
    return re.compile(_regex(glob), re.DOTALL)


def _exact_case(glob: str, value: str) -> bool:
    """Resources and condition values match with case."""
    return _case_pattern(glob).match(value) is not None


def _strings(value: Any, where: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(v, str) for v in items):
        raise PolicyInvalid(f"{where} must be a string or a non-empty list of strings")
    return tuple(items)


def _principals(value: Any) -> tuple[str, ...]:
    if value == "*":
        return ("*",)
    if not isinstance(value, Mapping) or set(value) != {"AWS"}:
        raise PolicyInvalid('Principal must be "*" or {"AWS": ...}')
    found = []
    for item in _strings(value["AWS"], "Principal.AWS"):
        match = _IAM.match(item)
        if item == "*":
            found.append("*")
        elif match and match.group(3):
            found.append(f"user:{match.group(1)}/{match.group(3)}")
        elif match:
            found.append(f"tenant:{match.group(1)}")
        elif re.fullmatch(r"[A-Za-z0-9._-]+", item):
            found.append(f"tenant:{item}")
        else:
            raise PolicyInvalid(f"Invalid principal in policy: {item}")
    return tuple(found)


def _actions(values: tuple[str, ...]) -> tuple[str, ...]:
    for action in values:
        if action != "*" and not action.lower().startswith("s3:"):
            raise PolicyInvalid(f"Policy has an invalid action: {action}")
    return values


def _resources(values: tuple[str, ...], bucket: str) -> tuple[str, ...]:
    for resource in values:
        if not resource.startswith(ARN_PREFIX):
            raise PolicyInvalid(f"Policy has an invalid resource: {resource}")
        target = resource[len(ARN_PREFIX) :].split("/", 1)[0]
        if not _exact_case(target, bucket):
            raise PolicyInvalid(f"Policy has invalid resource: {resource} is not in {bucket}")
    return values


def _conditions(value: Any) -> tuple[Condition, ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise PolicyInvalid("Condition must be an object")
    found = []
    for operator, tests in value.items():
        if operator not in _STRING_OPERATORS | _IP_OPERATORS:
            raise PolicyInvalid(f"Invalid Condition type: {operator}")
        if not isinstance(tests, Mapping):
            raise PolicyInvalid(f"Condition {operator} must map keys to values")
        for key, values in tests.items():
            canonical = _KEYS.get(str(key).lower())
            if canonical is None:
                raise PolicyInvalid(f"Condition key {key} is not supported")
            if (operator in _IP_OPERATORS) != (canonical == "aws:SourceIp"):
                raise PolicyInvalid(f"Condition {operator} cannot test {key}")
            strings = _strings(values, f"Condition {operator} {key}")
            if operator in _IP_OPERATORS:
                for cidr in strings:
                    try:
                        ipaddress.ip_network(cidr, strict=False)
                    except ValueError:
                        raise PolicyInvalid(f"Invalid IP address or range: {cidr}") from None
            found.append(Condition(operator, canonical, strings))
    return tuple(found)


def _statement(raw: Any, bucket: str, index: int) -> Statement:
    if not isinstance(raw, Mapping):
        raise PolicyInvalid(f"Statement {index} must be an object")
    unknown = set(raw) - {"Sid", "Effect", "Principal", "Action", "NotAction", "Resource",
                          "Condition"}  # fmt: skip
    if unknown:
        raise PolicyInvalid(f"Statement {index} has unsupported elements: {sorted(unknown)}")
    if raw.get("Effect") not in ("Allow", "Deny"):
        raise PolicyInvalid(f"Statement {index}: Effect must be Allow or Deny")
    if "Principal" not in raw:
        raise PolicyInvalid(f"Statement {index}: a bucket policy statement needs a Principal")
    if ("Action" in raw) == ("NotAction" in raw):
        raise PolicyInvalid(f"Statement {index}: exactly one of Action and NotAction")
    if "Resource" not in raw:
        raise PolicyInvalid(f"Statement {index}: Resource is required")
    return Statement(
        effect=Verdict(raw["Effect"]),
        principals=_principals(raw["Principal"]),
        actions=_actions(_strings(raw["Action"], "Action")) if "Action" in raw else (),
        not_actions=_actions(_strings(raw["NotAction"], "NotAction")) if "NotAction" in raw else (),
        resources=_resources(_strings(raw["Resource"], "Resource"), bucket),
        conditions=_conditions(raw.get("Condition")),
    )


def parse_policy(document: Any, bucket: str) -> tuple[Statement, ...]:
    """The statements of a bucket policy for ``bucket``; PolicyInvalid when malformed."""
    if not isinstance(document, Mapping):
        raise PolicyInvalid("Policies must be JSON objects")
    if document.get("Version", "2012-10-17") not in ("2012-10-17", "2008-10-17"):
        raise PolicyInvalid("The policy Version must be 2012-10-17")
    unknown = set(document) - {"Version", "Id", "Statement"}
    if unknown:
        raise PolicyInvalid(f"Unsupported policy elements: {sorted(unknown)}")
    raw = document.get("Statement")
    statements = [raw] if isinstance(raw, Mapping) else raw
    if not isinstance(statements, list) or not statements:
        raise PolicyInvalid("Missing required field Statement")
    return tuple(_statement(s, bucket, i) for i, s in enumerate(statements))


def _principal_matches(principals: Iterable[str], caller: Caller) -> bool:
    for principal in principals:
        if principal == "*":
            return True
        if caller.anonymous:
            continue
        if principal == f"tenant:{caller.tenant}":
            return True
        if caller.user is not None and principal == f"user:{caller.tenant}/{caller.user}":
            return True
    return False


def _action_matches(statement: Statement, action: str) -> bool:
    if statement.actions:
        return any(_pattern(a).match(action) for a in statement.actions)
    return not any(_pattern(a).match(action) for a in statement.not_actions)


def _condition_holds(condition: Condition, request: AccessRequest) -> bool:
    if condition.key == "aws:SourceIp":
        try:
            address = ipaddress.ip_address(request.source_ip)
        except ValueError:
            return condition.operator == "NotIpAddress"
        inside = any(
            address in ipaddress.ip_network(cidr, strict=False) for cidr in condition.values
        )
        return inside if condition.operator == "IpAddress" else not inside
    value = request.prefix
    negated = condition.operator.startswith("StringNot")
    if value is None:
        # A missing key satisfies only the negated operators, as in AWS.
        return negated
    if condition.operator in ("StringEquals", "StringNotEquals"):
        hit = value in condition.values
    else:
        hit = any(_exact_case(pattern, value) for pattern in condition.values)
    return hit != negated


def _applies(statement: Statement, request: AccessRequest) -> bool:
    return (
        _principal_matches(statement.principals, request.caller)
        and _action_matches(statement, request.action)
        and any(_exact_case(r, request.resource) for r in statement.resources)
        and all(_condition_holds(c, request) for c in statement.conditions)
    )


def evaluate(statements: Iterable[Statement], request: AccessRequest) -> Verdict | None:
    """Deny if any statement denies, Allow if any allows, else None (no opinion)."""
    verdict = None
    for statement in statements:
        if _applies(statement, request):
            if statement.effect is Verdict.DENY:
                return Verdict.DENY
            verdict = Verdict.ALLOW
    return verdict


# What each canned ACL grants to everyone (AllUsers), by action.
_BUCKET_ACL_GRANTS = {
    "public-read": frozenset({"s3:ListBucket", "s3:ListBucketVersions",
                              "s3:ListBucketMultipartUploads"}),
    "public-read-write": frozenset({"s3:ListBucket", "s3:ListBucketVersions",
                                    "s3:ListBucketMultipartUploads", "s3:PutObject",
                                    "s3:DeleteObject", "s3:DeleteObjectVersion",
                                    "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"}),
}  # fmt: skip
OBJECT_ACL_READ_ACTIONS = frozenset({"s3:GetObject", "s3:GetObjectVersion"})


def bucket_acl_grants(acl: str, action: str) -> bool:
    return action in _BUCKET_ACL_GRANTS.get(acl, frozenset())


def object_acl_grants(acl: str, action: str) -> bool:
    return acl in ("public-read", "public-read-write") and action in OBJECT_ACL_READ_ACTIONS


def acl_permissions(acl: str) -> tuple[str, ...]:
    """The AllUsers permissions a canned ACL shows in an AccessControlPolicy."""
    return {"private": (), "public-read": ("READ",), "public-read-write": ("READ", "WRITE")}[acl]


def canned_from_permissions(permissions: set[str]) -> str | None:
    """The canned ACL whose AllUsers grants are exactly ``permissions``, if any."""
    for acl in CANNED_ACLS:
        if set(acl_permissions(acl)) == permissions:
            return acl
    return None
