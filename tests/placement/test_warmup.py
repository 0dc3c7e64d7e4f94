"""Issue #6, acceptance 5: dataset warm-up onto a site, for a while.

Two nodes share one PostgreSQL. Node ``a`` is at site s1, node ``b`` at s2; the policy
keeps every object on ``mo`` (moto, site s3). Node ``b`` reaches ``sw`` (SeaweedFS, its own
site s2) over link ``s2-sw`` and ``mo`` over ``s2-mo``, each through a link proxy. Warming a
prefix onto s2 makes temporary copies on ``sw`` through the replication queue: node b's
reads of those keys then go over ``s2-sw`` and not ``s2-mo`` (its per-link metrics), and
the ledger shows the copies. Once the time runs out (injected, as for lifecycle) the copies
are gone from ``sw`` and the ledger, the policy's copies on ``mo`` are intact, and reads
still work.
"""

from __future__ import annotations

import os
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from tests import observability as o
from tests.admin.client import AdminClient
from tests.gateway_process import GatewayProcess
from tests.lifecycle.conftest import NO_SCHEDULED_PASS, run_lifecycle
from tests.placement.conftest import Ledger, Topology, md5, no_retry_client, poll
from tests.servers import random_name

HOUR_S = 3600
WARM = "sw"
POLICY = "mo"


def _remote_only() -> dict[str, Any]:
    return {"name": "default", "rules": [{"name": "remote", "replicas": [{"backend": POLICY}]}]}


def _remote_then_warm() -> dict[str, Any]:
    """mo, then sw by the replication queue: the policy itself copies to the warm backend."""
    replicas = [{"backend": POLICY}, {"backend": WARM, "async": True}]
    rule = {"name": "both", "replicas": replicas, "write_mode": "primary+async"}
    return {"name": "remote-then-warm", "rules": [rule]}


def _config_at(topology: Topology, site: str) -> dict[str, Any]:
    """The topology's configuration for a node at ``site``: its own links to sw and mo."""
    config = topology.config([_remote_only(), _remote_then_warm()], lifecycle=NO_SCHEDULED_PASS)
    config["site"] = site
    for link in config["links"]:
        link["name"] = f"{site}-{link['backend']}"
        link["site"] = site
    # No active probes: every byte over a link during the test is a read or a copy.
    config["replication"]["probe_interval_s"] = 0
    return config


@dataclass
class Sites:
    topology: Topology
    a: GatewayProcess
    b: GatewayProcess
    ledger: Ledger

    def admin(self) -> AdminClient:
        return AdminClient.of(self.a)


@pytest.fixture(scope="module")
def sites(
    topology_factory: Callable[[], Topology], start_module_gateway: Callable[..., GatewayProcess]
) -> Sites:
    topology = topology_factory()
    a = start_module_gateway(_config_at(topology, "s1"))
    b = start_module_gateway(_config_at(topology, "s2"), database_url=a.database_url)
    return Sites(topology, a, b, Ledger(a.database_url))


def _scrape(gateway: GatewayProcess) -> o.Samples:
    with urllib.request.urlopen(f"{gateway.admin_endpoint}/metrics") as answer:
        return o.parse(answer.read().decode())


def _read_in(gateway: GatewayProcess, link: str, backend: str) -> float:
    """Bytes node ``gateway`` has read back over ``link``."""
    return o.value(_scrape(gateway), "skybridge_link_bytes_total", link=link, backend=backend,
                   direction="in")  # fmt: skip


def _placed(ledger: Ledger, bucket: str) -> dict[str, list[tuple[str, bool]]]:
    """Per key of ``bucket``: (backend, temporary) of its current version's ok placements."""
    rows = ledger.fetch(
        "SELECT v.key, p.backend, p.warmup_job_id IS NOT NULL AS temporary FROM placements p"
        " JOIN object_versions v ON v.bucket_id = p.bucket_id AND v.id = p.version_pk"
        " JOIN buckets b ON b.id = v.bucket_id WHERE b.name = $1 AND v.is_latest"
        " AND p.state = 'ok' ORDER BY v.key, p.backend",
        bucket,
    )
    placed: dict[str, list[tuple[str, bool]]] = {}
    for row in rows:
        placed.setdefault(row["key"], []).append((row["backend"], row["temporary"]))
    return placed


def _backend_keys(ledger: Ledger, bucket: str) -> set[str]:
    """The backend keys of the bucket's versions (the same on every replica)."""
    rows = ledger.fetch(
        "SELECT DISTINCT p.backend_key FROM placements p JOIN object_versions v"
        " ON v.bucket_id = p.bucket_id AND v.id = p.version_pk"
        " JOIN buckets b ON b.id = v.bucket_id WHERE b.name = $1",
        bucket,
    )
    return {r["backend_key"] for r in rows}


def _fill(sites: Sites, policy: str | None = None) -> tuple[str, dict[str, bytes]]:
    s3 = no_retry_client(sites.a)
    bucket = random_name("warm-")
    where = {"CreateBucketConfiguration": {"LocationConstraint": policy}} if policy else {}
    s3.create_bucket(Bucket=bucket, **where)
    objects = {f"train/{n:02d}": os.urandom(50_000 + n) for n in range(6)}
    for key, body in {**objects, "eval/0": b"not warmed"}.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    return bucket, objects


def _read_all(gateway: GatewayProcess, bucket: str, objects: dict[str, bytes]) -> None:
    s3 = no_retry_client(gateway)
    for key, body in objects.items():
        assert md5(s3.get_object(Bucket=bucket, Key=key)["Body"].read()) == md5(body), key


def _moment(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _wait_ready(admin: AdminClient, job_id: int) -> dict[str, Any]:
    poll(lambda: admin.ok("GET", f"/warmup-jobs/{job_id}")["state"] == "ready", "warm-up done")
    job: dict[str, Any] = admin.ok("GET", f"/warmup-jobs/{job_id}")
    return job


def test_reads_at_the_warmed_site_are_served_there_until_the_time_runs_out(
    sites: Sites,
) -> None:
    bucket, objects = _fill(sites)
    size = sum(len(b) for b in objects.values())
    admin = sites.admin()
    # Before: node b reads over its link to the policy's backend.
    before = _read_in(sites.b, "s2-mo", POLICY)
    _read_all(sites.b, bucket, objects)
    assert _read_in(sites.b, "s2-mo", POLICY) - before >= size

    request = {"bucket": bucket, "prefix": "train/", "site": "s2", "duration_s": HOUR_S}
    job = admin.ok("POST", "/warmup-jobs", request)
    assert (job["backend"], job["objects_total"], job["bytes_total"]) == (WARM, 6, size)
    job = _wait_ready(admin, job["id"])
    assert (job["objects_done"], job["bytes_done"], job["copies"]) == (6, size, 6)
    assert job["progress"] == 1.0
    placed = _placed(sites.ledger, bucket)
    for key in objects:
        assert placed[key] == [(POLICY, False), (WARM, True)], key
    assert placed["eval/0"] == [(POLICY, False)]
    [version] = admin.ok("GET", f"/ledger/placements?bucket={bucket}&key=train/00")
    shown = {p["backend"]: (p["warmup_job"], _moment(p["expires_at"]))
             for p in version["placements"]}  # fmt: skip
    assert shown[POLICY] == (None, None)
    assert shown[WARM] == (job["id"], _moment(job["expires_at"]))
    gauges = _scrape(sites.b)
    labels = {"job": str(job["id"]), "bucket": bucket, "site": "s2", "backend": WARM}
    assert o.value(gauges, "skybridge_warmup_done_bytes", **labels) == size
    assert o.value(gauges, "skybridge_warmup_objects", **labels) == 6

    # Node b now reads the prefix at its own site: over s2-sw, and not a byte over s2-mo.
    warm_before, remote_before = (
        _read_in(sites.b, "s2-sw", WARM),
        _read_in(sites.b, "s2-mo", POLICY),
    )
    _read_all(sites.b, bucket, objects)
    assert _read_in(sites.b, "s2-sw", WARM) - warm_before >= size
    assert _read_in(sites.b, "s2-mo", POLICY) == remote_before

    # Time runs out: the copies go, the policy's stay, reads go back over s2-mo.
    temporary = _backend_keys(sites.ledger, bucket)
    assert run_lifecycle(sites.a, 0)["warmups_expired"] == 0
    assert run_lifecycle(sites.a, 2 * HOUR_S / 86400)["warmups_expired"] == 1
    job = admin.ok("GET", f"/warmup-jobs/{job['id']}")
    assert (job["state"], job["copies"]) == ("expired", 0)
    placed = _placed(sites.ledger, bucket)
    assert all(p == [(POLICY, False)] for p in placed.values()), placed
    poll(lambda: not temporary & sites.topology.keys(WARM), "warm copies deleted")
    assert temporary <= sites.topology.keys(POLICY)
    remote_before = _read_in(sites.b, "s2-mo", POLICY)
    _read_all(sites.b, bucket, objects)
    assert _read_in(sites.b, "s2-mo", POLICY) - remote_before >= size
    sites.topology.check_ledger_matches_backends(sites.ledger)


def test_cancelling_removes_the_copies_and_keeps_the_policys(sites: Sites) -> None:
    bucket, objects = _fill(sites)
    admin = sites.admin()
    request = {"bucket": bucket, "prefix": "train/0", "site": "s2", "backend": WARM,
               "duration_s": 60}  # fmt: skip
    job = admin.ok("POST", "/warmup-jobs", request)
    job = _wait_ready(admin, job["id"])
    assert job["objects_total"] == 6
    assert any(j["id"] == job["id"] for j in admin.ok("GET", "/warmup-jobs"))

    cancelled = admin.ok("DELETE", f"/warmup-jobs/{job['id']}")
    assert (cancelled["state"], cancelled["copies"]) == ("cancelled", 0)
    assert admin.ok("DELETE", f"/warmup-jobs/{job['id']}")["state"] == "cancelled"
    assert all(p == [(POLICY, False)] for p in _placed(sites.ledger, bucket).values())
    poll(lambda: not _backend_keys(sites.ledger, bucket) & sites.topology.keys(WARM),
         "cancelled copies deleted")  # fmt: skip
    _read_all(sites.a, bucket, objects)
    # A later expiry has nothing left to do for it.
    assert run_lifecycle(sites.a, 1)["warmups_expired"] == 0


def test_scrub_makes_a_lost_warm_copy_again_for_its_job(sites: Sites) -> None:
    bucket, objects = _fill(sites)
    admin = sites.admin()
    request = {"bucket": bucket, "prefix": "train/", "site": "s2", "duration_s": HOUR_S}
    job = _wait_ready(admin, admin.ok("POST", "/warmup-jobs", request)["id"])
    lost = sorted(_backend_keys(sites.ledger, bucket) & sites.topology.keys(WARM))[0]
    sites.topology.direct_client(WARM).delete_object(Bucket=sites.topology.buckets[WARM], Key=lost)

    code, found = sites.a.cli("scrub", "--full")
    assert (code, found["missing"], found["repaired"]) == (3, 1, 1), found
    job = _wait_ready(admin, job["id"])
    assert job["copies"] == len(objects)
    # Made again as the job's copy: still temporary, so it still goes when the job ends.
    placed = _placed(sites.ledger, bucket)
    assert all(placed[key] == [(POLICY, False), (WARM, True)] for key in objects), placed
    assert lost in sites.topology.keys(WARM)
    assert admin.ok("DELETE", f"/warmup-jobs/{job['id']}")["copies"] == 0
    poll(lambda: lost not in sites.topology.keys(WARM), "the job's copies deleted")


def test_copies_the_policy_already_queued_count_when_made_and_stay(sites: Sites) -> None:
    admin = sites.admin()
    admin.ok("POST", "/workers/replication/pause")
    time.sleep(1.5)  # a pass already running, on either node, finishes first
    try:
        bucket, objects = _fill(sites, "remote-then-warm")
        request = {"bucket": bucket, "prefix": "train/", "site": "s2", "duration_s": HOUR_S}
        job = admin.ok("POST", "/warmup-jobs", request)
        # The policy's own copies to sw wait in the queue (paused): nothing is done yet.
        assert (job["state"], job["objects_done"], job["bytes_done"]) == ("warming", 0, 0)
    finally:
        admin.ok("POST", "/workers/replication/resume")
    job = _wait_ready(admin, job["id"])
    assert (job["objects_done"], job["copies"]) == (len(objects), 0)
    assert run_lifecycle(sites.a, 2 * HOUR_S / 86400)["warmups_expired"] == 1
    # The copies on sw are the policy's: the job's end leaves them.
    placed = _placed(sites.ledger, bucket)
    assert all(placed[key] == [(POLICY, False), (WARM, False)] for key in objects), placed
    _read_all(sites.b, bucket, objects)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"bucket": "no-such-bucket", "site": "s2", "duration_s": 60}, 404),
        ({"site": "s2", "duration_s": 60, "backend": "no-such-backend"}, 404),
        # The named backend is at another site.
        ({"site": "s2", "duration_s": 60, "backend": POLICY}, 422),
        # No backend at all at this site.
        ({"site": "nowhere", "duration_s": 60}, 422),
        ({"site": "s2", "duration_s": 0}, 400),
        ({"site": "s2"}, 400),
    ],
)
def test_refused_jobs_change_nothing(sites: Sites, body: dict[str, Any], status: int) -> None:
    bucket, _ = _fill(sites)
    admin = sites.admin()
    jobs = len(admin.ok("GET", "/warmup-jobs"))
    got, answer = admin.call("POST", "/warmup-jobs", {"bucket": bucket, **body})
    assert got == status, answer
    assert set(answer) == {"error"}
    assert len(admin.ok("GET", "/warmup-jobs")) == jobs
    assert (
        sites.ledger.value("SELECT count(*) FROM replication_queue WHERE warmup_job_id IS NOT NULL")
        == 0
    )
