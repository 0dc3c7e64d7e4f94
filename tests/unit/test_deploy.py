"""Files under deploy/ are checked by parsing them, since nothing here runs them."""

from __future__ import annotations

import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def test_systemd_unit_parses_and_runs_the_cli() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(ROOT / "deploy" / "skybridge.service")
    service = unit["Service"]
    assert service["ExecStart"].endswith("skybridge serve")
    assert service["ExecStartPre"].endswith("skybridge migrate")
    assert service["KillSignal"] == "SIGTERM"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
