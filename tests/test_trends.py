"""control_drift: a control line's IC50 trending out of its range across plates is
alerted before any single plate fails control_out_of_range (issue #15)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select

from acquisition.capture import Capturer
from acquisition.kinds import JobContext
from acquisition.pipeline import references
from acquisition.queue import claim
from acquisition.store import alerts, control_points, open_store
from acquisition.worker import Hooks, process_job
from analysis.layout import load_layout
from analysis.trends import ControlPoint, drift
from config.schema import Settings
from monitoring.rules import alert_for_quarantine, alerts_for_result
from tests.plate_sim import DEFAULT_TRUTH, simulate_plate, to_gen5_text

ROOT = Path(__file__).resolve().parent.parent
LAYOUT = ROOT / "config" / "layouts" / "mtt-96.toml"


def _run(
    tmp_path: Path, growth: float, plates: int = 30, seed0: int = 500
) -> list[tuple[int, set[str], set[str]]]:
    """Analyse ``plates`` plates whose MOLT-4P IC50 grows by ``growth`` per plate; per plate,
    (index, plate flag codes, alert codes raised so far)."""
    settings = Settings.model_validate(
        {
            "service": {"state_dir": str(tmp_path / "state"), "reports": False},
            "store": {"url": f"sqlite:///{tmp_path / 'state' / 'p.db'}"},
            "watch": [
                {"path": str(tmp_path / "in"), "instrument": "reader-1", "layout": str(LAYOUT)}
            ],
            "alerts": {"console": False, "jsonl": False},
        }
    )
    store = open_store(settings.store.url)
    ctx = JobContext(store, settings, references(settings))
    hooks = Hooks(on_result=alerts_for_result, on_dead=alert_for_quarantine)
    layout = load_layout(LAYOUT)
    capturer = Capturer(store, settings.service.state_dir)
    out = []
    folder = tmp_path / "in"
    folder.mkdir(parents=True)
    for n in range(plates):
        truth = dict(DEFAULT_TRUTH)
        truth["MOLT-4P"] = replace(truth["MOLT-4P"], e=0.004 * (1 + growth) ** n)
        sim = simulate_plate(layout, seed0 + n, truth=truth, jitter_truth=False)
        path = folder / f"plate_{n:02d}.txt"
        path.write_text(to_gen5_text(sim.read).replace("Plate 1", f"Plate {n}"), encoding="cp1252")
        capturer.capture("reader-1", path)
        while (job := claim(store, "t", 60)) is not None:
            process_job(ctx, job, hooks)
        with store.engine.connect() as conn:
            codes = set(
                conn.execute(select(alerts.c.code).where(alerts.c.kind == "finding")).scalars()
            )
            flags = set(
                conn.execute(
                    select(alerts.c.code).where(alerts.c.plate_key.like(f"%plate_{n:02d}%"))
                ).scalars()
            )
        out.append((n, flags, codes))
    with store.engine.connect() as conn:
        assert conn.execute(select(control_points.c.id)).first() is not None
    store.close()
    return out


def test_a_drifting_control_line_alerts_before_any_plate_fails(tmp_path: Path) -> None:
    history = _run(tmp_path, growth=0.05)
    first_drift = next((n for n, _, codes in history if "control_drift" in codes), None)
    first_fail = next((n for n, flags, _ in history if "control_out_of_range" in flags), None)
    print(
        f"\ncontrol_drift first at plate {first_drift}, control_out_of_range first at {first_fail}"
    )
    assert first_drift is not None
    assert first_fail is None or first_drift < first_fail


def test_stable_control_plates_never_alert_a_drift(tmp_path: Path) -> None:
    history = _run(tmp_path, growth=0.0, seed0=900)
    assert all("control_drift" not in codes for _, _, codes in history)


def test_drift_rule_on_its_own() -> None:
    rising = [ControlPoint(float(i), 0.004 * 1.08**i, "=", 0.0008, 0.02) for i in range(25)]
    found = drift(rising)
    assert found is not None and found.direction == "up"
    assert found.change_per_plate == pytest.approx(0.08, rel=1e-6)
    assert drift([ControlPoint(float(i), 0.004, "=", 0.0008, 0.02) for i in range(25)]) is None
    assert drift(rising[:5]) is None  # too few plates to say
    resistant = [replace(p, high=None) for p in rising]
    assert drift(resistant) is None  # an open-ended range has no upper bound to reach
