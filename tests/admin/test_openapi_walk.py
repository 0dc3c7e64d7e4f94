"""Issue #7, acceptance 1: schemathesis walks the served OpenAPI spec; every operation
answers as its schema says."""

from __future__ import annotations

from tests.admin.client import AdminClient
from tests.admin.walk import schemathesis
from tests.gateway_process import GatewayProcess


def test_spec_is_served_and_covers_every_resource(admin_gateway: GatewayProcess) -> None:
    spec = AdminClient.of(admin_gateway).ok("GET", "/openapi.json")
    assert spec["openapi"] == "3.1.0"
    paths = set(spec["paths"])
    for resource in ("sites", "backends", "links", "policies", "buckets", "tenants",
                     "access-keys", "replication", "workers", "ledger/placements",
                     "ledger/under-replicated", "tokens", "usage", "encryption-keys",
                     "warmup-jobs", "lifecycle/run"):  # fmt: skip
        assert f"/admin/v1/{resource}" in paths, resource
    operation_ids = [op["operationId"] for ops in spec["paths"].values() for op in ops.values()]
    assert len(operation_ids) == len(set(operation_ids))


def test_schemathesis_walk_passes_every_check(admin_gateway: GatewayProcess) -> None:
    run = schemathesis(
        admin_gateway,
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        "30",
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert " passed" in run.stdout
    assert "Tested: " in run.stdout
