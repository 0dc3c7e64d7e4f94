"""Admin operations, declared once with their schemas.

The OpenAPI document is built from these declarations and the request validator reads the
same ones, so the spec served at ``/admin/v1/openapi.json`` is what the API enforces.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.admin.call import AdminCall

Schema = dict[str, Any]
Handler = Callable[["AdminCall"], Awaitable[object]]
PREFIX = "/admin/v1"
NAME_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"


class Scope(StrEnum):
    READ = "read"
    ADMIN = "admin"


# PostgreSQL text and jsonb cannot hold NUL, so no admin string may carry one.
NO_NUL = "^[^\\u0000]*$"


def string(**extra: Any) -> Schema:
    return {"type": "string", "pattern": NO_NUL, **extra}


# PostgreSQL's bigint: every admin integer is stored in one.
INT64_MAX = 2**63 - 1


def integer(minimum: int | None = 0, **extra: Any) -> Schema:
    schema: Schema = {"type": "integer", "maximum": INT64_MAX, **extra}
    if minimum is not None:
        schema["minimum"] = minimum
    return schema


def number(**extra: Any) -> Schema:
    return {"type": "number", **extra}


def boolean() -> Schema:
    return {"type": "boolean"}


def nullable(schema: Schema) -> Schema:
    return {"oneOf": [schema, {"type": "null"}]}


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def obj(required: Iterable[str] = (), *, extra: bool = False, **properties: Schema) -> Schema:
    """An object with exactly these properties (more only when ``extra``)."""
    schema: Schema = {"type": "object", "properties": properties}
    schema["required"] = list(required)
    if not extra:
        schema["additionalProperties"] = False
    return schema


def free_object() -> Schema:
    return {"type": "object"}


NAME = string(pattern=NAME_PATTERN)
ERROR = obj(
    ["error"],
    error=obj(
        ["code", "message", "request_id"],
        code=string(),
        message=string(),
        request_id=string(),
        details={},
    ),
)


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    scope: Scope
    handler: Handler
    response: Schema
    status: int = 200
    path_params: dict[str, Schema] = field(default_factory=dict)
    query: dict[str, Schema] = field(default_factory=dict)
    required_query: tuple[str, ...] = ()
    body: Schema | None = None
    # Extra documented answers, beyond the ones every operation can give.
    errors: tuple[int, ...] = ()


class Operations:
    """A module's operations, added with decorators."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.all: list[Operation] = []

    def add(
        self,
        method: str,
        path: str,
        summary: str,
        *,
        response: Schema,
        scope: Scope | None = None,
        **options: Any,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.all.append(
                Operation(
                    method=method,
                    path=path,
                    operation_id=_camel(handler.__name__),
                    summary=summary,
                    tag=self.tag,
                    scope=scope or (Scope.READ if method == "GET" else Scope.ADMIN),
                    handler=handler,
                    response=response,
                    **options,
                )
            )
            return handler

        return register


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _parameters(op: Operation) -> list[Schema]:
    params: list[Schema] = [
        {"name": name, "in": "path", "required": True, "schema": schema}
        for name, schema in op.path_params.items()
    ]
    params += [
        {"name": name, "in": "query", "required": name in op.required_query, "schema": schema}
        for name, schema in op.query.items()
    ]
    return params


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_COMMON_ERRORS = {
    400: "The request does not match this operation's schema.",
    401: "No valid bearer token.",
    403: "The token's scope does not allow this operation.",
}
_ERROR_TEXT = {
    404: "No such resource.",
    409: "The change conflicts with the current state.",
    422: "The document is well formed but cannot be applied (see the message).",
    415: "The body is not JSON.",
    503: "A dependency is unavailable.",
}


def _responses(op: Operation) -> Schema:
    responses: Schema = {str(op.status): _json(op.response, "Success.")}
    errors = dict(_COMMON_ERRORS)
    if op.body is not None:
        errors[415] = _ERROR_TEXT[415]
    for status in op.errors:
        errors[status] = _ERROR_TEXT[status]
    for status in sorted(errors):
        responses[str(status)] = {"$ref": f"#/components/responses/E{status}"}
    return responses


def _error_responses() -> Schema:
    texts = {**_COMMON_ERRORS, **_ERROR_TEXT}
    return {f"E{status}": _json(ERROR, text) for status, text in sorted(texts.items())}


def document(operations: Iterable[Operation], version: str) -> Schema:
    """The OpenAPI 3.1 document of ``operations``."""
    paths: dict[str, Schema] = {}
    for op in operations:
        entry: Schema = {
            "operationId": op.operation_id,
            "summary": op.summary,
            "tags": [op.tag],
            "description": f"Needs a token with scope `{op.scope.value}` or wider.",
            "parameters": _parameters(op),
            "responses": _responses(op),
        }
        if op.body is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": op.body}},
            }
        paths.setdefault(PREFIX + op.path, {})[op.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Skybridge admin API",
            "version": version,
            "description": "Manage sites, backends, links, placement policies, tenants,"
            " access keys, quotas, replication and workers. Every error is JSON.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": _error_responses(),
            "schemas": {"Error": ERROR},
        },
    }
