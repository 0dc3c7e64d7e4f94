"""Issue #7, acceptance 1 (second half): invalid requests get 4xx JSON errors and change
nothing; a bad placement policy is refused and changes nothing (issue #3, acceptance 8)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.admin.client import AdminClient
from tests.admin.walk import schemathesis
from tests.gateway_process import GatewayProcess

# Fields that move by themselves (live health, timestamps of use, worker passes).
VOLATILE = {"last_used_at", "healthy", "circuit", "consecutive_failures", "latency_ewma_ms",
            "passes", "last_pass_at", "last_success_at", "running", "oldest_age_s"}  # fmt: skip
STATE = ("/sites", "/backends", "/links", "/policies", "/buckets", "/tenants", "/access-keys",
         "/tokens", "/replication", "/usage")  # fmt: skip


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def snapshot(admin: AdminClient) -> dict[str, Any]:
    return {path: _stable(admin.ok("GET", path)) for path in STATE}


def test_negative_walk_is_refused_and_changes_nothing(admin_gateway: GatewayProcess) -> None:
    admin = AdminClient.of(admin_gateway)
    before = snapshot(admin)
    run = schemathesis(
        admin_gateway,
        "--mode",
        "negative",
        "--checks",
        "not_a_server_error,negative_data_rejection,content_type_conformance,"
        "response_schema_conformance,status_code_conformance",
        "--phases",
        "coverage,fuzzing",
        "--max-examples",
        "30",
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert snapshot(admin) == before


@pytest.mark.parametrize(
    ("raw", "content_type", "status", "code"),
    [
        (b"{not json", "application/json", 400, "BadRequest"),
        (b'{"name": "s9", "extra": 1}', "application/json", 400, "BadRequest"),
        (b'{"name": ""}', "application/json", 400, "BadRequest"),
        (b'{"name": "s9"}', "text/plain", 415, "UnsupportedMediaType"),
        (b'{"name": "a\\u0000b"}', "application/json", 400, "BadRequest"),
        (b"[1, 2]", "application/json", 400, "BadRequest"),
    ],
)
def test_malformed_bodies(
    admin_gateway: GatewayProcess, raw: bytes, content_type: str, status: int, code: str
) -> None:
    admin = AdminClient.of(admin_gateway)
    before = snapshot(admin)
    answered, answer = admin.call("POST", "/sites", raw=raw, content_type=content_type)
    assert answered == status
    error = answer["error"]
    assert error["code"] == code
    assert error["message"]
    assert error["request_id"]
    assert snapshot(admin) == before


BAD_POLICIES = {
    "unknown backend": {"rules": [{"name": "r", "replicas": [{"backend": "nowhere"}]}]},
    "W > N": {"rules": [{"name": "r", "replicas": [{"backend": "local"}],
                         "write_mode": "quorum", "quorum": 2}]},
    "unmeetable spread": {"rules": [{"name": "r", "distinct_sites": True,
                                     "replicas": [{"site": "s1"}, {"site": "s1"}]}]},
    "shadowed rule": {"rules": [{"name": "all", "replicas": [{"backend": "local"}]},
                                {"name": "never", "match": {"key_prefix": "x/"},
                                 "replicas": [{"backend": "sw"}]}]},
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_POLICIES))
def test_bad_policy_is_refused_and_changes_nothing(
    admin_gateway: GatewayProcess, case: str
) -> None:
    admin = AdminClient.of(admin_gateway)
    before = snapshot(admin)
    for method, path in (("PUT", "/policies/default"), ("POST", "/policies/default/dry-run")):
        status, answer = admin.call(method, path, BAD_POLICIES[case])
        assert status == 422, answer
        assert answer["error"]["code"] == "Unprocessable"
        assert "placement policy refused" in answer["error"]["message"]
    assert snapshot(admin) == before
