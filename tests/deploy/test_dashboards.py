"""The Grafana dashboard and the Prometheus alerts use only metric names that a running
gateway really serves on /metrics (issue #8, acceptance 4)."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import yaml

from tests.conftest import client_for
from tests.gateway_process import GatewayProcess
from tests.servers import MotoServer, make_bucket, random_name

DEPLOY = Path(__file__).resolve().parent.parent.parent / "deploy"
_NAME = re.compile(r"\bskybridge_[a-z0-9_]+")


def _used_names() -> dict[str, set[str]]:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "skybridge.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    alerts = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    rules = [rule["expr"] for group in alerts["groups"] for rule in group["rules"]]
    return {
        "dashboard": {n for e in exprs for n in _NAME.findall(e)},
        "alerts": {n for e in rules for n in _NAME.findall(e)},
    }


def _served_names(gateway: GatewayProcess) -> set[str]:
    """Names of the samples in one scrape (a # HELP line alone does not count)."""
    with urllib.request.urlopen(gateway.admin_endpoint + "/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return {m.group(0) for line in text.splitlines() if (m := _NAME.match(line))}


def test_dashboard_and_alerts_use_served_metric_names(
    start_gateway: Callable[..., GatewayProcess],
    moto_server: MotoServer,
    tmp_path: Path,
) -> None:
    bucket = random_name("sb-metrics-")
    make_bucket(moto_server.endpoint_url, moto_server.access_key, moto_server.secret_key, bucket)
    cloud = {"name": "cloud", "driver": "s3", "site": "s2", "endpoint": moto_server.endpoint_url,
             "bucket": bucket, "access_key": moto_server.access_key,
             "secret_key": moto_server.secret_key}  # fmt: skip
    gateway = start_gateway({
        "site": "s1",
        "backends": [cloud],
        "default_backend": "cloud",
        "links": [{"name": "s1-cloud", "site": "s1", "backend": "cloud"}],
        "replication": {"probe_interval_s": 0.5},
    })  # fmt: skip
    s3 = client_for(gateway)
    name = random_name()
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="k", Body=b"metrics")
    assert s3.get_object(Bucket=name, Key="k")["Body"].read() == b"metrics"
    time.sleep(1.5)  # a probe pass and a few worker passes
    served = _served_names(gateway)
    used = _used_names()
    assert used["dashboard"]
    assert used["alerts"]
    # Histograms are used through their _bucket series, counters through _total.
    assert {k: sorted(v - served) for k, v in used.items()} == {"dashboard": [], "alerts": []}
