"""Files under deploy/ are validated here, since CI has no Docker engine or cluster:
the compose file by a Compose Specification parser, the Kubernetes manifests against the
API's schemas (kubernetes-validate), the systemd unit by ``systemd-analyze verify``, and
every node configuration by the gateway's own configuration loader."""

from __future__ import annotations

import configparser
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from compose_spec import PyCompose

from gateway.config import GatewayConfig, from_mapping

ROOT = Path(__file__).resolve().parent.parent.parent
DEPLOY = ROOT / "deploy"
K8S_VERSION = "1.30.0"


def _compose(text: str) -> dict[str, Any]:
    """Parsed and validated as `docker compose config` does: YAML merge keys resolved
    first, then every service checked against the Compose Specification."""
    resolved = json.dumps(yaml.safe_load(text))
    parsed: dict[str, Any] = PyCompose.from_json(resolved).to_dict()
    return parsed


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _compose((DEPLOY / "docker-compose.yml").read_text())


def test_compose_file_is_valid(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {
        "postgres", "migrate", "seaweedfs", "minio", "buckets", "gateway-eu", "gateway-us",
        "prometheus", "grafana",
    }  # fmt: skip
    published = [p.split(":")[0] for s in compose["services"].values() for p in s.get("ports", [])]
    assert len(published) == len(set(published)), "two services publish one host port"


def test_the_compose_validator_refuses_a_wrong_key() -> None:
    with pytest.raises(ValueError, match="imag"):
        _compose("services:\n  web:\n    imag: nginx\n")


def _mounted_config(service: dict[str, Any]) -> Path:
    (volume,) = [v for v in service["volumes"] if v.endswith(":/etc/skybridge/skybridge.yaml:ro")]
    return DEPLOY / str(volume).split(":")[0]


def _node(service: dict[str, Any]) -> GatewayConfig:
    raw = yaml.safe_load(_mounted_config(service).read_text())
    return from_mapping(raw, service["environment"])


def test_compose_runs_two_nodes_at_two_sites_with_links(compose: dict[str, Any]) -> None:
    nodes = [_node(compose["services"][name]) for name in ("gateway-eu", "gateway-us")]
    assert [n.site for n in nodes] == ["eu", "us"]
    for node in nodes:
        assert "@postgres:5432/" in (node.database_url or "")
        assert {(b.name, b.site) for b in node.backends} == {
            ("seaweed-eu", "eu"), ("minio-us", "us")
        }  # fmt: skip
        assert all(b.access_key and b.secret_key for b in node.backends)
        # Each site reaches the other site's backend over a link.
        sites = {b.name: b.site for b in node.backends}
        assert {(link.site, sites[link.backend]) for link in node.links} == {
            ("eu", "us"), ("us", "eu")
        }  # fmt: skip
        assert (node.server.host, node.admin.host) == ("0.0.0.0", "0.0.0.0")
    services = compose["services"]
    for backend in nodes[0].backends:
        assert backend.endpoint is not None
        host = backend.endpoint.split("//")[1].split(":")[0]
        assert host in services, f"{backend.name} points at {host}, not a compose service"


def _manifests() -> list[tuple[Path, dict[str, Any]]]:
    found: list[tuple[Path, dict[str, Any]]] = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        found.extend((path, doc) for doc in yaml.safe_load_all(path.read_text()) if doc)
    return found


@pytest.mark.parametrize(
    ("path", "resource"), _manifests(), ids=lambda v: v.name if isinstance(v, Path) else ""
)
def test_kubernetes_manifest_is_valid(path: Path, resource: dict[str, Any]) -> None:
    kubernetes_validate.validate(resource, K8S_VERSION, strict=True)


def test_the_kubernetes_validator_refuses_a_wrong_field() -> None:
    (deployment,) = [r for _, r in _manifests() if r["kind"] == "Deployment"]
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["pth"] = "/"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_kubernetes_manifests_hold_together() -> None:
    kinds = {r["kind"]: r for _, r in _manifests()}
    assert {"Deployment", "Service", "ConfigMap", "Secret", "PodDisruptionBudget", "Job"} <= set(
        kinds
    )
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert kinds["Job"]["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    config = from_mapping(
        yaml.safe_load(kinds["ConfigMap"]["data"]["skybridge.yaml"]),
        kinds["Secret"]["stringData"],
    )
    assert config.admin.port == {p["name"]: p["containerPort"] for p in container["ports"]}["admin"]
    pre_stop_s = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] > pre_stop_s + config.server.shutdown_timeout_s


def test_systemd_unit_parses_and_runs_the_cli() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(DEPLOY / "skybridge.service")
    service = unit["Service"]
    assert service["ExecStart"].endswith("skybridge serve")
    assert service["ExecStartPre"].endswith("skybridge migrate")
    assert service["KillSignal"] == "SIGTERM"
    assert int(service["TimeoutStopSec"]) > 30, "longer than the default drain"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here"
)
def test_systemd_unit_verifies(tmp_path: Path) -> None:
    """`systemd-analyze verify` also checks that the commands exist: point them at this
    checkout's virtualenv, as /opt/skybridge/.venv is on a real host."""
    venv = ROOT / ".venv" / "bin" / "skybridge"
    if not venv.exists():
        pytest.skip("no .venv/bin/skybridge to stand in for /opt/skybridge/.venv")
    text = (DEPLOY / "skybridge.service").read_text()
    unit = tmp_path / "skybridge.service"
    unit.write_text(text.replace("/opt/skybridge/.venv/bin/skybridge", str(venv)))
    done = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
    )
    # It exits 0 even for unknown keys and bad values, which it only reports.
    assert (done.returncode, done.stderr.strip(), done.stdout.strip()) == (0, "", "")


def test_dockerfile_is_multi_stage_non_root_with_a_healthcheck() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.MULTILINE)) >= 2
    assert re.search(r"^COPY --from=build ", text, re.MULTILINE)
    (user,) = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert user.split(":")[0] not in ("root", "0")
    (healthcheck,) = re.findall(r"^HEALTHCHECK (?:.*\\\n)*.*", text, re.MULTILINE)
    assert "/healthz" in healthcheck
    # The migrations ship next to the gateway package (see GatewayConfig.migrations_dir).
    assert "COPY migrations ./migrations" in text


def test_prometheus_scrapes_every_compose_node(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    targets = {t for group in job["static_configs"] for t in group["targets"]}
    nodes = {"gateway-eu", "gateway-us"}
    assert targets == {f"{n}:{_node(compose['services'][n]).admin.port}" for n in nodes}
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    assert all(rule["expr"] for group in rules["groups"] for rule in group["rules"])
