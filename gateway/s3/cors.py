"""CORS: preflight answered from the bucket's configuration; headers on actual requests."""

from __future__ import annotations

import fnmatch
from typing import Any

from aiohttp import web

from gateway.errors import AccessDenied, InvalidRequest
from metadata.models import BucketRow


def _matches(pattern: str, value: str) -> bool:
    # AWS allows one "*" wildcard in origins and headers; fnmatch covers it.
    return fnmatch.fnmatchcase(value.lower(), pattern.lower())


def matching_rule(
    bucket: BucketRow, origin: str, method: str, headers: list[str]
) -> dict[str, Any] | None:
    for rule in bucket.cors or []:
        if not any(_matches(o, origin) for o in rule["AllowedOrigin"]):
            continue
        if method not in rule["AllowedMethod"]:
            continue
        allowed = rule.get("AllowedHeader", [])
        if all(any(_matches(a, wanted) for a in allowed) for wanted in headers):
            return rule
    return None


def rule_headers(rule: dict[str, Any], origin: str, method: str) -> dict[str, str]:
    wildcard = "*" in rule["AllowedOrigin"]
    headers = {
        "Access-Control-Allow-Origin": "*" if wildcard else origin,
        "Access-Control-Allow-Methods": ", ".join(rule["AllowedMethod"]),
        "Vary": "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
    }
    if not wildcard:
        headers["Access-Control-Allow-Credentials"] = "true"
    if rule.get("ExposeHeader"):
        headers["Access-Control-Expose-Headers"] = ", ".join(rule["ExposeHeader"])
    if rule.get("MaxAgeSeconds") is not None:
        headers["Access-Control-Max-Age"] = str(rule["MaxAgeSeconds"])
    return headers


def preflight(bucket: BucketRow | None, request: web.Request) -> web.Response:
    origin = request.headers.get("Origin")
    method = request.headers.get("Access-Control-Request-Method")
    if not origin or not method:
        raise InvalidRequest("Insufficient information. Origin request header needed.")
    wanted = [
        h.strip().lower()
        for h in request.headers.get("Access-Control-Request-Headers", "").split(",")
        if h.strip()
    ]
    rule = matching_rule(bucket, origin, method, wanted) if bucket else None
    if rule is None:
        raise AccessDenied("CORSResponse: This CORS request is not allowed.")
    headers = rule_headers(rule, origin, method)
    if wanted:
        headers["Access-Control-Allow-Headers"] = ", ".join(wanted)
    return web.Response(status=200, headers=headers)


def apply(bucket: BucketRow | None, request: web.Request, response: web.StreamResponse) -> None:
    origin = request.headers.get("Origin")
    if not origin or bucket is None or not bucket.cors:
        return
    rule = matching_rule(bucket, origin, request.method, [])
    if rule is not None:
        response.headers.update(rule_headers(rule, origin, request.method))
