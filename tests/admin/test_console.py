"""Issue #7, acceptance 4: the web console, in a real headless Chromium, shows exactly what the
admin API answers, shows nothing without a valid token, and ships no data in its HTML."""

from __future__ import annotations

import dataclasses
import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.admin.client import AdminClient
from tests.admin.conftest import wait_replicated
from tests.conftest import client_for
from tests.gateway_process import REPO, GatewayProcess
from tests.lifecycle.conftest import run_lifecycle

CHROMIUM = os.environ.get("SKYBRIDGE_CHROMIUM", "/usr/bin/chromium")
TENANT = "acme"
WAIT_MS = 30_000
Snapshot = dict[str, str]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Never a skip: a CI machine without the browser must fail this acceptance test.
    assert Path(CHROMIUM).is_file(), f"no chromium at {CHROMIUM}: run scripts/install-chromium"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(WAIT_MS)
    yield opened
    context.close()


LIFECYCLE = {"Rules": [{"ID": "cold", "Filter": {"Prefix": "report-"}, "Status": "Enabled",
                        "Transitions": [{"Days": 1, "StorageClass": "GLACIER_IR"}]}]}  # fmt: skip


@pytest.fixture(scope="module")
def console(admin_gateway: GatewayProcess) -> Iterator[GatewayProcess]:
    """A second tenant with a quota, and copies held in the replication queue so that the
    page has lag to draw, transitions under way (mo made the cold tier) and a warm-up job
    still warming; replication resumes afterwards."""
    admin = AdminClient.of(admin_gateway)
    key = admin.ok("POST", "/access-keys", {"tenant": TENANT})
    tenant_gateway = dataclasses.replace(
        admin_gateway, access_key=key["access_key"], secret_key=key["secret_key"]
    )
    s3 = client_for(tenant_gateway)
    s3.create_bucket(Bucket="acme-data")
    admin.ok("PUT", f"/tenants/{TENANT}/quota", {"max_bytes": 200_000, "max_objects": 100})
    admin.ok("POST", "/workers/replication/pause")
    for n in range(4):
        s3.put_object(Bucket="acme-data", Key=f"report-{n}.csv", Body=b"r" * (20_000 + n))
    admin.ok("PATCH", "/backends/mo", {"tier": "cold"})
    s3.put_bucket_lifecycle_configuration(Bucket="acme-data", LifecycleConfiguration=LIFECYCLE)
    assert run_lifecycle(admin_gateway, 2)["transitions_started"] == 4
    # Kept on local and sw by its policy; warmed onto s3 (mo), the copies wait in the queue.
    s3.create_bucket(
        Bucket="acme-train", CreateBucketConfiguration={"LocationConstraint": "all-sync"}
    )
    for n in range(3):
        s3.put_object(Bucket="acme-train", Key=f"train/{n}", Body=b"t" * (1000 * (n + 1)))
    admin.ok("POST", "/warmup-jobs", {"bucket": "acme-train", "site": "s3", "duration_s": 3600})
    yield admin_gateway
    admin.ok("POST", "/workers/replication/resume")
    wait_replicated(admin)


def _exact(value: int | None) -> str:
    """As the page keeps a value in data-value: null is empty."""
    return "" if value is None else str(value)


def expected(admin: AdminClient) -> Snapshot:
    """The values the page must show, by test id, as the API answers them now."""
    found: Snapshot = {}
    for backend in admin.ok("GET", "/backends"):
        found[f"backend-state-{backend['name']}"] = backend["state"]
        found[f"backend-tier-{backend['name']}"] = backend["tier"]
        found[f"backend-used-bytes-{backend['name']}"] = str(backend["used_bytes"])
    for link in admin.ok("GET", "/links"):
        found[f"link-circuit-{link['name']}"] = link["circuit"] or ""
    queue = admin.ok("GET", "/replication")
    for field in ("depth", "lag_bytes", "failing"):
        found[f"replication-{field.replace('_', '-')}"] = str(queue[field])
    for target in queue["targets"]:
        found[f"target-depth-{target['target_backend']}"] = str(target["depth"])
        found[f"target-bytes-{target['target_backend']}"] = str(target["bytes"])
    usage = admin.ok("GET", "/usage")
    for tenant in usage["tenants"]:
        found[f"tenant-bytes-{tenant['name']}"] = str(tenant["usage"]["bytes"])
        found[f"tenant-objects-{tenant['name']}"] = str(tenant["usage"]["objects"])
        quota = tenant["quota"] or {}
        found[f"tenant-quota-bytes-{tenant['name']}"] = _exact(quota.get("max_bytes"))
        found[f"tenant-headroom-bytes-{tenant['name']}"] = _exact(quota.get("headroom_bytes"))
    for tier in usage["tiers"]:
        found[f"tier-bytes-{tier['tier']}"] = str(tier["bytes"])
        found[f"tier-replicas-{tier['tier']}"] = str(tier["replicas"])
    transitions = admin.ok("GET", "/lifecycle/transitions")
    found["tiering-objects"] = str(transitions["objects"])
    found["tiering-bytes"] = str(transitions["bytes"])
    for row in transitions["classes"]:
        found[f"tiering-objects-{row['storage_class']}"] = str(row["objects"])
        found[f"tiering-bytes-{row['storage_class']}"] = str(row["bytes"])
    for job in admin.ok("GET", "/warmup-jobs"):
        for field in ("objects_done", "objects_total", "bytes_done", "bytes_total"):
            found[f"warmup-{field.replace('_', '-')}-{job['id']}"] = str(job[field])
        found[f"warmup-state-{job['id']}"] = job["state"]
        found[f"warmup-progress-{job['id']}"] = _number(job["progress"])
    return found


def _number(value: float) -> str:
    """A JSON number as JavaScript's String() writes it."""
    return str(int(value)) if value == int(value) else repr(value)


def rendered(page: Page) -> Snapshot:
    values: Snapshot = page.eval_on_selector_all(
        "[data-testid][data-value]",
        "nodes => Object.fromEntries(nodes.map(n => [n.dataset.testid, n.dataset.value]))",
    )
    return values


def refreshed(page: Page) -> Snapshot:
    """What the page shows after a refresh that started now."""
    page.get_by_test_id("refresh").click()
    started = int(page.get_attribute("body", "data-requested") or "0")
    page.wait_for_function(f"() => Number(document.body.dataset.rendered) >= {started}")
    return rendered(page)


def connect(page: Page, gateway: GatewayProcess, token: str) -> None:
    page.goto(gateway.admin_endpoint + "/")
    page.get_by_test_id("token-input").fill(token)
    page.get_by_test_id("token-submit").click()


def screenshot_path() -> Path:
    folder = Path(os.environ.get("SKYBRIDGE_ARTIFACTS", REPO / "artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "console.png"


def test_console_shows_what_the_api_answers(console: GatewayProcess, page: Page) -> None:
    admin = AdminClient.of(console)
    csp_violations: list[str] = []
    page.on("console", lambda m: csp_violations.append(m.text) if "Content Security" in m.text
            else None)  # fmt: skip
    connect(page, console, console.admin_token)
    page.wait_for_function("() => Number(document.body.dataset.rendered) >= 1")
    before = expected(admin)
    shown = refreshed(page)
    assert expected(admin) == before, "the state moved while the page refreshed"
    assert {k: shown.get(k) for k in before} == before
    tenants = {k for k in shown if k.startswith("tenant-bytes-")}
    assert tenants == {k for k in before if k.startswith("tenant-bytes-")}
    assert f"tenant-bytes-{TENANT}" in tenants
    assert int(shown["replication-depth"]) > 0, "the fixture holds copies in the queue"
    assert shown[f"chart-tenant-bytes-{TENANT}"] == before[f"tenant-bytes-{TENANT}"]
    assert page.get_by_test_id(f"tenant-bytes-{TENANT}").inner_text() == "84.0 KiB"
    # Tiering and warm-up progress: the transitions wait for their copies to mo, and so
    # does the warm-up of acme-train (replication is paused).
    assert (shown["tiering-objects"], shown["tiering-objects-GLACIER_IR"]) == ("4", "4")
    assert shown["tiering-bytes"] == str(sum(20_000 + n for n in range(4)))
    [job] = admin.ok("GET", "/warmup-jobs")
    warmup = {k: v for k, v in shown.items() if k.startswith("warmup-")}
    assert warmup == {f"warmup-{name}-{job['id']}": value for name, value in (
        ("state", "warming"), ("objects-done", "0"), ("objects-total", "3"),
        ("bytes-done", "0"), ("bytes-total", "6000"), ("progress", "0"))}  # fmt: skip
    assert csp_violations == []
    shot = screenshot_path()
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 30_000
    assert shot.read_bytes().startswith(b"\x89PNG")


def _no_data(page: Page) -> None:
    assert page.locator("#dashboard").is_hidden()
    assert rendered(page) == {}


def test_without_a_token_nothing_is_shown(console: GatewayProcess, page: Page) -> None:
    page.goto(console.admin_endpoint + "/")
    page.wait_for_load_state("networkidle")
    _no_data(page)
    assert "Enter an admin token" in page.get_by_test_id("status").inner_text()


def test_a_wrong_token_shows_why(console: GatewayProcess, page: Page) -> None:
    connect(page, console, "sbt_wrong")
    status = page.get_by_test_id("status")
    page.wait_for_selector("[data-testid=status][data-state=error]")
    assert "refused (401 Unauthorized)" in status.inner_text()
    _no_data(page)
    assert page.evaluate("sessionStorage.length") == 0


def test_forgetting_the_token_clears_the_page(console: GatewayProcess, page: Page) -> None:
    connect(page, console, console.admin_token)
    page.wait_for_function("() => Number(document.body.dataset.rendered) >= 1")
    assert page.evaluate("sessionStorage.length") == 1
    page.get_by_test_id("token-forget").click()
    _no_data(page)
    assert page.evaluate("sessionStorage.length") == 0


def _get(url: str) -> tuple[Any, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.headers, response.read()


def test_the_shell_holds_no_data_and_sends_security_headers(console: GatewayProcess) -> None:
    headers, html = _get(console.admin_endpoint + "/")
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "no-store"
    assert console.admin_token.encode() not in html
    assert b"data-value" not in html
    assert TENANT.encode() not in html
    for asset, kind in (("console.js", "text/javascript"), ("console.css", "text/css")):
        headers, _ = _get(f"{console.admin_endpoint}/console/{asset}")
        assert headers["Content-Type"] == f"{kind}; charset=utf-8"
        assert headers["X-Content-Type-Options"] == "nosniff"
    with pytest.raises(urllib.error.HTTPError) as missing:
        _get(console.admin_endpoint + "/console/other.js")
    with missing.value as error:
        assert error.code == 404
        assert json.loads(error.read())["error"]["code"] == "NotFound"
