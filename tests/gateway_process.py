"""A real Skybridge gateway in a subprocess, as a client sees it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.servers import LOOPBACK, free_port

REPO = Path(__file__).resolve().parent.parent
CONFIG_FILE = "skybridge.yaml"
KEY_RING_ENV = "SKYBRIDGE_TEST_KEY_RING"
# One key ring for every test gateway (a fixed test key, never used outside the tests).
TEST_KEY_RING = '{"active": "k1", "keys": {"k1": "c2t5YnJpZGdlLXRlc3Qta2V5LXJpbmctMzItYnl0ZSE="}}'


@dataclass
class GatewayProcess:
    """``skybridge serve`` with a config file written from ``config``."""

    workdir: Path
    database_url: str
    config: dict[str, Any]
    access_key: str = "SBTESTROOTKEY"
    secret_key: str = "sb-test-root-secret"
    port: int = field(default_factory=free_port)
    admin_port: int = field(default_factory=free_port)
    admin_token: str = "sbt_test-bootstrap-admin-token"
    extra_env: dict[str, str] = field(default_factory=dict)
    # The checkout whose code runs: ``python -m`` puts the working directory first on
    # sys.path, so the process runs from it as well as having it on PYTHONPATH.
    code_root: Path = REPO
    process: subprocess.Popen[bytes] | None = None

    @property
    def tls(self) -> bool:
        return bool(self.config.get("server", {}).get("tls"))

    @property
    def endpoint(self) -> str:
        return f"{'https' if self.tls else 'http'}://{LOOPBACK}:{self.port}"

    @property
    def admin_endpoint(self) -> str:
        tls = bool(self.config.get("admin", {}).get("tls"))
        return f"{'https' if tls else 'http'}://{LOOPBACK}:{self.admin_port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "gateway.log"

    def _write_config(self) -> Path:
        config = dict(self.config)
        server = dict(config.get("server", {}))
        server.update(host=LOOPBACK, port=self.port)
        config["server"] = server
        config["admin"] = {
            **config.get("admin", {}),
            "host": LOOPBACK,
            "port": self.admin_port,
            "token": self.admin_token,
        }
        config.setdefault("data_dir", str(self.workdir / "data"))
        encryption = dict(config.get("encryption", {}))
        if "key_ring_file" not in encryption:
            # Gateways sharing a database share a key ring, as in production.
            encryption.setdefault("key_ring_env", KEY_RING_ENV)
        config["encryption"] = encryption
        # Many gateways share the test PostgreSQL for a whole session: keep their pools small.
        config.setdefault("database", {"pool_min": 1, "pool_max": 6})
        path = self.workdir / CONFIG_FILE
        path.write_text(yaml.safe_dump(config))
        return path

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "SKYBRIDGE_DATABASE_URL": self.database_url,
            "SKYBRIDGE_ROOT_ACCESS_KEY": self.access_key,
            "SKYBRIDGE_ROOT_SECRET_KEY": self.secret_key,
            KEY_RING_ENV: TEST_KEY_RING,
            "PYTHONPATH": str(self.code_root),
            **self.extra_env,
        }
        command = [sys.executable, "-m", "gateway", "serve", "--config", str(self._write_config())]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                cwd=self.code_root,
            )  # fmt: skip
        self._wait_ready()

    def _wait_ready(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited early:\n{self.log_tail()}")
            if self._answers():
                return
            time.sleep(0.1)
        raise RuntimeError(f"gateway did not start in {timeout_s} s:\n{self.log_tail()}")

    def _answers(self) -> bool:
        import ssl

        context = ssl._create_unverified_context() if self.tls else None
        try:
            urllib.request.urlopen(self.endpoint + "/", timeout=1, context=context)
        except urllib.error.HTTPError:
            return True  # any S3 answer (403 for anonymous) means it is serving
        except OSError:
            return False
        return True

    def cli(self, *args: str, timeout_s: float = 300) -> tuple[int, dict[str, Any]]:
        """Run ``skybridge ARGS`` on this gateway's config and database: (exit code, JSON)."""
        done = subprocess.run(
            [sys.executable, "-m", "gateway", *args, "--config", str(self.workdir / CONFIG_FILE)],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            cwd=self.code_root,
            env={
                **os.environ,
                "PYTHONPATH": str(self.code_root),
                "SKYBRIDGE_DATABASE_URL": self.database_url,
                KEY_RING_ENV: TEST_KEY_RING,
            },
        )
        assert done.stdout.strip(), done.stderr
        report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return done.returncode, report

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 20.0) -> None:
        if self.process is None or self.process.poll() is not None:
            self.process = None
            return
        os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None

    def kill(self) -> None:
        """kill -9: no cleanup of any kind runs."""
        self.stop(signal.SIGKILL)
