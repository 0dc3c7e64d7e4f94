"""Issue #7, acceptance 5: without a token, or with a read-only token on a write, every
admin endpoint is refused. Tokens are stored hashed and can be revoked."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import asyncpg
import pytest

from tests.admin.client import AdminClient
from tests.conftest import run_sync
from tests.gateway_process import GatewayProcess


def _operations(admin: AdminClient) -> list[tuple[str, str, str]]:
    """(method, concrete path, scope) of every operation in the served spec."""
    spec = admin.ok("GET", "/openapi.json")
    found = []
    for path, methods in spec["paths"].items():
        concrete = re.sub(r"\{version\}", "1", re.sub(r"\{[a-z_]+\}", "x1", path))
        for method, op in methods.items():
            scope = re.search(r"scope `(\w+)`", op["description"])
            assert scope, op
            found.append((method.upper(), concrete.removeprefix("/admin/v1"), scope.group(1)))
    return found


@pytest.fixture(scope="module")
def read_token(admin_gateway: GatewayProcess) -> str:
    made = AdminClient.of(admin_gateway).ok("POST", "/tokens", {"name": "viewer", "scope": "read"})
    assert made["scope"] == "read"
    assert made["token"].startswith("sbt_")
    return str(made["token"])


@pytest.mark.parametrize("token", [None, "sbt_wrong", "Basic abc"])
def test_every_endpoint_refuses_a_missing_or_wrong_token(
    admin_gateway: GatewayProcess, token: str | None
) -> None:
    admin = AdminClient.of(admin_gateway)
    operations = _operations(admin)
    assert len(operations) > 40
    for method, path, _scope in operations + [("GET", "/openapi.json", "read")]:
        status, answer = AdminClient(admin.base, token).call(method, path, {})
        assert status == 401, (method, path, answer)
        assert answer["error"]["code"] == "Unauthorized"


def test_read_token_reads_but_every_write_is_refused(
    admin_gateway: GatewayProcess, read_token: str
) -> None:
    admin = AdminClient.of(admin_gateway)
    viewer = AdminClient(admin.base, read_token)
    writes = 0
    for method, path, scope in _operations(admin):
        status, answer = viewer.call(method, path, {})
        if scope == "admin":
            writes += 1
            assert status == 403, (method, path, answer)
            assert answer["error"]["code"] == "Forbidden"
        else:
            assert status not in (401, 403), (method, path, answer)
    assert writes >= 20
    assert viewer.ok("GET", "/health")["principal"] == "viewer"


def test_tokens_are_stored_hashed_and_revocable(admin_gateway: GatewayProcess) -> None:
    admin = AdminClient.of(admin_gateway)
    made = admin.ok("POST", "/tokens", {"name": "ops-bot", "scope": "admin"})
    bot = AdminClient(admin.base, made["token"])
    assert bot.ok("POST", "/sites", {"name": "bot-site"})["name"] == "bot-site"
    status, answer = admin.call("POST", "/tokens", {"name": "ops-bot", "scope": "read"})
    assert (status, answer["error"]["code"]) == (409, "Conflict")
    listed = {t["name"]: t for t in admin.ok("GET", "/tokens")}
    assert listed["ops-bot"]["last_used_at"] is not None
    assert all("token" not in t for t in listed.values())

    async def stored() -> list[Any]:
        con = await asyncpg.connect(admin_gateway.database_url)
        try:
            return list(await con.fetch("SELECT name, token_sha256 FROM admin_tokens"))
        finally:
            await con.close()

    rows = {r["name"]: bytes(r["token_sha256"]) for r in run_sync(stored)}
    assert rows["ops-bot"] == hashlib.sha256(made["token"].encode()).digest()
    assert admin.ok("DELETE", "/tokens/ops-bot") == {"deleted": "ops-bot"}
    status, answer = bot.call("GET", "/sites")
    assert status == 401
    assert admin.ok("DELETE", "/sites/bot-site") == {"deleted": "bot-site"}
