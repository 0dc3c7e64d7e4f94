"""Helpers for the lifecycle tests: passes run at an injected time, and exact usage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.admin.client import AdminClient
from tests.gateway_process import GatewayProcess

# A pass runs only when a test asks, at the time it names.
NO_SCHEDULED_PASS = {"interval_s": 3600}


def run_lifecycle(gateway: GatewayProcess, days_ahead: float) -> dict[str, Any]:
    """One lifecycle pass as if ``days_ahead`` days had passed; its report."""
    now = datetime.now(UTC) + timedelta(days=days_ahead)
    report: dict[str, Any] = AdminClient.of(gateway).ok(
        "POST", "/lifecycle/run", {"now": now.isoformat()}
    )
    return report


def bucket_usage(gateway: GatewayProcess, bucket: str) -> dict[str, int]:
    """The bucket's usage counters, checked against a recount of the rows (no drift)."""
    code, report = gateway.cli("usage", "--recompute")
    assert code == 0, report.get("drift")
    buckets = AdminClient.of(gateway).ok("GET", f"/buckets/{bucket}")
    return {"bytes": buckets["usage"]["bytes"], "objects": buckets["usage"]["objects"]}
