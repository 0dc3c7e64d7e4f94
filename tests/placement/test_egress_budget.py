"""Issue #5: a per-link egress budget (bytes per UTC day) limits replication traffic
exactly, across nodes, while client reads over the same link are never blocked: they are
counted and reported by the admin API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.admin.client import AdminClient
from tests.conftest import client_for
from tests.gateway_process import GatewayProcess
from tests.placement.conftest import Topology, poll
from tests.servers import random_name

OBJECT = 1000
BUDGET = 3 * OBJECT
LOCAL_THEN_SW = {"name": "default", "rules": [{"name": "r", "write_mode": "all", "replicas": [
    {"backend": "local"}, {"backend": "sw", "async": True}]}]}  # fmt: skip
ONLY_SW = {"rules": [{"name": "r", "replicas": [{"backend": "sw"}]}]}


def _link(admin: AdminClient) -> dict[str, Any]:
    return dict(admin.ok("GET", "/links/s1-sw"))


def test_budget_holds_replication_and_never_client_reads(
    topology_factory: Callable[[], Topology], start_test_gateway: Callable[..., GatewayProcess]
) -> None:
    topology = topology_factory()
    config = topology.config([LOCAL_THEN_SW])
    [sw_link] = [link for link in config["links"] if link["name"] == "s1-sw"]
    sw_link["egress_budget_bytes_per_day"] = BUDGET
    gateway = start_test_gateway(config)
    admin, s3 = AdminClient.of(gateway), client_for(gateway)
    bucket = random_name("egress-")
    s3.create_bucket(Bucket=bucket)
    for n in range(5):
        s3.put_object(Bucket=bucket, Key=f"k{n}", Body=bytes([n]) * OBJECT)

    # Three copies fit the budget exactly; two wait for tomorrow (or a bigger budget).
    poll(lambda: admin.ok("GET", "/replication")["depth"] == 2, "replication up to the budget")
    failures = admin.ok("GET", "/replication/failures")
    assert {f["last_error"] for f in failures} == {"egress budget of link s1-sw spent for today"}
    assert all(f["next_attempt_in_s"] > 0 for f in failures)
    link = _link(admin)
    assert link["egress_budget_bytes_per_day"] == BUDGET
    assert link["egress_today"]["background_bytes"] == BUDGET

    # A client reads 3 x 2000 bytes over the same, spent link: never refused, reported.
    admin.ok("PUT", "/policies/only-sw", ONLY_SW)
    remote = random_name("egress-remote-")
    s3.create_bucket(Bucket=remote)
    admin.ok("PUT", f"/buckets/{remote}/placement", {"policy": "only-sw"})
    s3.put_object(Bucket=remote, Key="big", Body=b"r" * 2000)
    for _ in range(3):
        assert s3.get_object(Bucket=remote, Key="big")["Body"].read() == b"r" * 2000
    poll(lambda: _link(admin)["egress_today"]["client_bytes"] == 6000, "client bytes reported")
    assert _link(admin)["egress_today"]["background_bytes"] == BUDGET

    # A bigger budget, and the waiting copies go as soon as they are retried.
    admin.ok("PATCH", "/links/s1-sw", {"egress_budget_bytes_per_day": 10 * OBJECT})
    assert admin.ok("POST", "/replication/retry", {"backend": "sw"})["retried"] == 2
    poll(lambda: admin.ok("GET", "/replication")["depth"] == 0, "the rest replicated")
    assert _link(admin)["egress_today"]["background_bytes"] == 5 * OBJECT
    for n in range(5):
        [version] = admin.ok("GET", f"/ledger/placements?bucket={bucket}&key=k{n}")
        assert {p["backend"] for p in version["placements"] if p["state"] == "ok"} == {
            "local", "sw",
        }  # fmt: skip
