"""`platewatch reprocess` re-analyses the archive on every core, through the real queue."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

from acquisition.store import captures, jobs, open_store, results
from config.loader import load_config as load_settings
from tests.daemon_rig import archive_of_plates

ROOT = Path(__file__).resolve().parents[1]
LAYOUT = ROOT / "config" / "layouts" / "mtt-96.toml"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "service.py"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )


def test_reprocess_on_two_workers_analyses_every_capture_once_with_the_new_thresholds(
    tmp_path: Path,
) -> None:
    config = archive_of_plates(tmp_path, 12)
    # A threshold change no clean plate can meet: every re-analysis must carry it.
    config.write_text(config.read_text() + "\n[qc]\nsignal_min_ratio = 1000\n")
    run = _cli("reprocess", "--config", str(config), "--workers", "2")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "re-analysed 12 of 12 capture(s)"
    settings = load_settings(config)
    store = open_store(settings.store.url, create=False)
    try:
        with store.begin() as conn:
            n_captures = conn.execute(select(func.count()).select_from(captures)).scalar_one()
            per_capture = conn.execute(
                select(results.c.capture_id, func.count()).group_by(results.c.capture_id)
            ).all()
            bodies = conn.execute(select(results.c.body)).scalars().all()
            states = dict(
                conn.execute(select(jobs.c.state, func.count()).group_by(jobs.c.state)).all()
            )
    finally:
        store.close()
    assert n_captures == 12 and len(per_capture) == 12
    assert all(count == 1 for _, count in per_capture)  # one new result each, none twice
    codes = [{f["code"] for f in json.loads(body)["flags"]} for body in bodies]
    assert all("low_signal" in c for c in codes)
    assert set(states) <= {"done", "queued"} and states.get("done", 0) >= 12


def test_reprocess_of_an_empty_archive_and_a_bad_config(tmp_path: Path) -> None:
    config = archive_of_plates(tmp_path, 0)
    run = _cli("reprocess", "--config", str(config))
    assert run.returncode == 0 and run.stdout.strip() == "re-analysed 0 of 0 capture(s)"
    bad = _cli("reprocess", "--config", str(config), "--workers", "0")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
