"""Request validation against an operation's declared schemas."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator

from gateway.admin.spec import Operation, Schema
from gateway.services.admin_errors import BadRequest, UnsupportedMediaType

# Admin bodies are small documents; anything larger is refused unread.
MAX_BODY_BYTES = 1 << 20


def _check(schema: Schema, value: Any, where: str) -> None:
    errors = sorted(Draft202012Validator(schema).iter_errors(value), key=lambda e: list(e.path))
    if errors:
        details = [
            {"at": where + "".join(f"/{p}" for p in e.absolute_path), "problem": e.message}
            for e in errors[:20]
        ]
        raise BadRequest(f"{where}: {errors[0].message}", details=details)


def _coerce(schema: Schema, raw: str) -> Any:
    """A query or path string as the type its schema declares."""
    kind = schema.get("type")
    if kind == "integer":
        try:
            return int(raw)
        except ValueError:
            return raw
    if kind == "boolean":
        return {"true": True, "false": False}.get(raw.lower(), raw)
    return raw


def parameters(
    declared: Mapping[str, Schema], given: Mapping[str, str], required: tuple[str, ...], where: str
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, schema in declared.items():
        if name not in given:
            if name in required:
                raise BadRequest(f"{where} parameter {name} is required")
            continue
        value = _coerce(schema, given[name])
        _check(schema, value, f"{where}/{name}")
        values[name] = value
    return values


def body(op: Operation, content_type: str, raw: bytes) -> Any:
    if op.body is None:
        return None
    if content_type not in ("application/json", ""):
        raise UnsupportedMediaType(f"the body must be application/json, not {content_type}")
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
    _check(op.body, document, "body")
    return document
