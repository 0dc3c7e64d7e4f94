"""Schemathesis, run as its CLI against a gateway's admin spec."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.gateway_process import GatewayProcess

CONFIG = Path(__file__).with_name("schemathesis.toml")
SEED = os.environ.get("SKYBRIDGE_WALK_SEED", "20261128")


def schemathesis(gateway: GatewayProcess, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(CONFIG),
        "run",
        f"{gateway.admin_endpoint}/admin/v1/openapi.json",
        "-H",
        f"Authorization: Bearer {gateway.admin_token}",
        "--workers",
        "1",
        "--no-color",
        *args,
    ]
    if SEED != "random":
        command += ["--seed", SEED]
    return subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
