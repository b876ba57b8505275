"""The systemd unit: valid for systemd-analyze, notify-typed, watchdogged and hardened."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "systemd" / "platewatch.service"


def test_unit_declares_the_contract() -> None:
    text = UNIT.read_text()
    for line in (
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "SupplementaryGroups=dialout",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/platewatch",
        "ReadOnlyPaths=/srv/exports",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ):
        assert line in text, line


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    # Point ExecStart at this checkout's command so that verify can check it exists.
    command = Path(sys.executable).parent / "platewatch"
    unit = tmp_path / "platewatch.service"
    unit.write_text(UNIT.read_text().replace("/opt/platewatch/.venv/bin/platewatch", str(command)))
    out = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    problems = [
        line for line in (out.stdout + out.stderr).splitlines() if "platewatch.service" in line
    ]
    assert out.returncode == 0 and not problems, out.stdout + out.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_security_exposure_is_low() -> None:
    out = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    line = next(ln for ln in out.stdout.splitlines() if "Overall exposure level" in ln)
    score = float(line.split("for platewatch.service:")[1].split()[0])
    print(f"\n{line.strip()}")
    assert score <= 2.5
