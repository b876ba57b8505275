"""Calling the cross-check peers (allotropy, flowio, fcsparser, FlowCal, FlowKit).

They live in their own virtual environment (``make peers``: they pin older pandas than
platewatch runs on) and are run as a subprocess that prints one JSON document. Without
that environment the peer tests skip, unless ``PLATEWATCH_REQUIRE_PEERS=1`` (as ``make
test`` and CI set it), where a missing peer environment fails them.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def peers_python() -> Path:
    return Path(os.environ.get("PLATEWATCH_PEERS_PYTHON", ROOT / ".venv-peers" / "bin" / "python"))


def require_peers() -> Path:
    python = peers_python()
    if not python.exists():
        if os.environ.get("PLATEWATCH_REQUIRE_PEERS") == "1":
            pytest.fail(f"the peer environment is missing: {python} (run `make peers`)")
        pytest.skip(f"no peer environment at {python} (run `make peers`)")
    return python


def run_peer(script: str, *args: str, timeout: float = 300.0) -> Any:
    """Run ``script`` (Python source) in the peer environment; its stdout is one JSON value."""
    python = require_peers()
    out = subprocess.run(
        [str(python), "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    if out.returncode != 0:
        raise RuntimeError(f"peer script failed ({out.returncode}): {out.stderr[-2000:]}")
    return json.loads(out.stdout)
