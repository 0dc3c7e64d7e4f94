"""``skybridge admin``: every admin operation from the command line, over the REST API.

The commands are made from the same operation declarations as the OpenAPI spec, so the
CLI covers exactly what the API serves: ``listBackends`` is ``skybridge admin
list-backends``, path parameters are positional, query parameters are options, and a body
is given with ``--set key=value`` (values parsed as JSON when they can be) or ``--body``
(JSON or YAML, inline, ``@file`` or ``@-`` for stdin).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, TextIO

import yaml

from gateway.admin.app import all_operations
from gateway.admin.spec import PREFIX, Operation
from gateway.config import ConfigError, GatewayConfig, load


class AdminCliError(Exception):
    pass


def command_name(op: Operation) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", op.operation_id).lower()


def _commands() -> dict[str, Operation]:
    return {command_name(op): op for op in all_operations()}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="skybridge admin", description="Skybridge admin API from the command line"
    )
    top.add_argument("--config", type=Path, default=None, help="find the listener and token here")
    top.add_argument("--url", default=None, help="admin listener, e.g. http://127.0.0.1:9001")
    top.add_argument("--token", default=None, help="bearer token (or SKYBRIDGE_ADMIN_TOKEN)")
    top.add_argument("--json", action="store_true", help="print the JSON answer as it is")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, op in sorted(_commands().items()):
        command = sub.add_parser(name, help=op.summary, description=op.summary)
        for param in op.path_params:
            command.add_argument(param)
        for param in op.query:
            command.add_argument(f"--{param.replace('_', '-')}", dest=f"q_{param}",
                                 required=param in op.required_query)  # fmt: skip
        if op.body is not None:
            command.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                                 help="a body field (a JSON value if it parses)")  # fmt: skip
            command.add_argument("--body", default=None, help="the body: JSON/YAML, @file, @-")
    return top


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _body(args: argparse.Namespace) -> Any:
    body: Any = {}
    if args.body is not None:
        text = args.body
        if text == "@-":
            text = sys.stdin.read()
        elif text.startswith("@"):
            text = Path(text[1:]).read_text()
        body = yaml.safe_load(text)
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not isinstance(body, dict):
            raise AdminCliError(f"--set needs KEY=VALUE, got {item!r}")
        body[key] = _value(value)
    return body


def _target(op: Operation, args: argparse.Namespace) -> str:
    path = op.path
    for param in op.path_params:
        path = path.replace("{" + param + "}", urllib.parse.quote(str(getattr(args, param)), ""))
    query = {p: getattr(args, f"q_{p}") for p in op.query if getattr(args, f"q_{p}") is not None}
    return PREFIX + path + ("?" + urllib.parse.urlencode(query) if query else "")


def _defaults(args: argparse.Namespace) -> tuple[str, str | None]:
    """The listener and token: options, then the environment, then the configuration."""
    url = args.url or os.environ.get("SKYBRIDGE_ADMIN_URL")
    token = args.token or os.environ.get("SKYBRIDGE_ADMIN_TOKEN")
    if url and token:
        return url, token
    try:
        config: GatewayConfig = load(args.config)
    except (OSError, ConfigError) as exc:
        raise AdminCliError(f"cannot read the configuration: {exc}") from None
    scheme = "https" if config.admin.tls else "http"
    url = url or f"{scheme}://{config.admin.host}:{config.admin.port}"
    stored = config.data_dir / "admin-token"
    if token is None:
        token = config.admin.token or (stored.read_text().strip() if stored.exists() else None)
    return url, token


def request(url: str, token: str | None, op: Operation, target: str, body: Any) -> Any:
    data = None if op.body is None else json.dumps(body).encode()
    call = urllib.request.Request(url.rstrip("/") + target, data=data, method=op.method)
    if data is not None:
        call.add_header("Content-Type", "application/json")
    if token:
        call.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(call, timeout=120) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as error:
        with error:
            detail = json.loads(error.read() or b"{}").get("error", {})
        raise AdminCliError(
            f"{error.code} {detail.get('code', '')}: {detail.get('message', error.reason)}"
        ) from None
    except urllib.error.URLError as error:
        raise AdminCliError(f"cannot reach the admin API at {url}: {error.reason}") from None


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))[:60]
    return str(value)


def table(rows: list[dict[str, Any]], out: TextIO) -> None:
    """Rows as aligned columns, for people."""
    if not rows:
        print("(none)", file=out)
        return
    columns = list(dict.fromkeys(key for row in rows for key in row))
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)), file=out)
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip(), file=out)


def render(answer: Any, as_json: bool, out: TextIO) -> None:
    if as_json:
        print(json.dumps(answer, indent=2, default=str), file=out)
    elif isinstance(answer, list) and all(isinstance(row, dict) for row in answer):
        table(answer, out)
    elif isinstance(answer, dict):
        flat = [{"field": k, "value": v} for k, v in answer.items()]
        table(flat, out)
    else:
        print(answer, file=out)


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    op = _commands()[args.command]
    try:
        url, token = _defaults(args)
        body = _body(args) if op.body is not None else None
        answer = request(url, token, op, _target(op, args), body)
    except (AdminCliError, OSError, yaml.YAMLError) as exc:
        print(f"skybridge admin: {exc}", file=sys.stderr)
        return 1
    render(answer, args.json, sys.stdout)
    return 0
