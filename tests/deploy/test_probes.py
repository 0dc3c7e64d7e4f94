"""Liveness and readiness on the admin listener, without a token (issue #8)."""

from __future__ import annotations

from typing import Any

from tests.admin.client import AdminClient
from tests.gateway_process import GatewayProcess
from tests.placement.conftest import Ledger


def _probe(gateway: GatewayProcess, path: str) -> tuple[int, Any]:
    return AdminClient(gateway.admin_endpoint, None, prefix="").call("GET", path)


def test_healthz_and_readyz_need_no_token(local_gateway: GatewayProcess) -> None:
    assert _probe(local_gateway, "/healthz") == (200, {"status": "ok"})
    assert _probe(local_gateway, "/readyz") == (200, {"status": "ready"})
    status, body = _probe(local_gateway, "/readyz/nothing")
    assert (status, body["error"]["code"]) == (404, "NotFound")


def test_readyz_fails_while_a_migration_is_pending(local_gateway: GatewayProcess) -> None:
    """A database older than the node's code (its newest migration not applied) is not
    ready: the node must not serve until `skybridge migrate` has run."""
    ledger = Ledger(local_gateway.database_url)
    newest = ledger.fetch(
        "DELETE FROM schema_migrations WHERE version = (SELECT max(version)"
        " FROM schema_migrations) RETURNING version, name, applied_at"
    )[0]
    try:
        status, body = _probe(local_gateway, "/readyz")
        assert status == 503
        assert body["error"]["code"] == "ServiceUnavailable"
        assert body["error"]["details"] == [f"migration pending: {newest['name']}"]
        assert _probe(local_gateway, "/healthz")[0] == 200
    finally:
        ledger.fetch(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            *newest.values(),
        )
    assert _probe(local_gateway, "/readyz")[0] == 200
