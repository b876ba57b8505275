"""Timecourses fed by exports instead of a driver (issue #13): repeated exports of one plate
assemble in read-time order even when the files arrive out of order; a kinetic export is a
timecourse by itself."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from acquisition.capture import Capturer
from acquisition.kinds import JobContext
from acquisition.pipeline import references
from acquisition.queue import claim
from acquisition.store import open_store, results, timecourse_points, timecourses
from acquisition.timecourses import list_timecourses
from acquisition.worker import Hooks, process_job
from config.schema import Settings
from monitoring.rules import alert_for_quarantine, alerts_for_result
from tests.plate_sim import to_gen5_text
from tests.timecourse_sim import simulate_timecourse

ROOT = Path(__file__).resolve().parent.parent
LAYOUT = ROOT / "config" / "layouts" / "mtt-96.toml"
HOOKS = Hooks(on_result=alerts_for_result, on_dead=alert_for_quarantine)


def _site(tmp_path: Path, layout: Path) -> tuple[Settings, object]:
    settings = Settings.model_validate(
        {
            "service": {"state_dir": str(tmp_path / "state"), "reports": False},
            "store": {"url": f"sqlite:///{tmp_path / 'state' / 'p.db'}"},
            "watch": [
                {"path": str(tmp_path / "inbox"), "instrument": "reader-1", "layout": str(layout)}
            ],
            "alerts": {"console": False, "jsonl": False},
            "timecourse": {"curves": False},
        }
    )
    return settings, open_store(settings.store.url)


def test_repeated_exports_assemble_in_read_time_order(tmp_path: Path) -> None:
    layout = tmp_path / "tc.toml"
    layout.write_text(LAYOUT.read_text() + '\n[expt]\ntimecourse = "tc-A"\n')
    settings, store = _site(tmp_path, layout)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    sim = simulate_timecourse(7, "clean", every_h=6.0, for_h=48.0)
    start = datetime(2026, 11, 25, 9, 0, 0)
    files = []
    for k, point in enumerate(sim.points):
        when = start + timedelta(hours=point.t_h)
        text = to_gen5_text(point.reads[0])
        text = text.replace("Date\t11/25/2026", f"Date\t{when:%m/%d/%Y}")
        text = text.replace("Time\t9:00:00 AM", f"Time\t{when:%I:%M:%S %p}".replace("\t0", "\t"))
        path = inbox / f"read_{k:02d}.txt"
        path.write_text(text, encoding="cp1252")
        files.append(path)
    random.Random(3).shuffle(files)  # the vendor PC copies them in any order
    capturer = Capturer(store, settings.service.state_dir)  # type: ignore[arg-type]
    ctx = JobContext(store, settings, references(settings))  # type: ignore[arg-type]
    for path in files:
        capturer.capture("reader-1", path)
        while (job := claim(store, "t", 60)) is not None:  # type: ignore[arg-type]
            process_job(ctx, job, HOOKS)
    with store.engine.connect() as conn:  # type: ignore[attr-defined]
        (tc_id,) = conn.execute(
            select(timecourses.c.id).where(timecourses.c.name == "tc-A")
        ).scalars()
        points = (
            conn.execute(
                select(timecourse_points.c.read_at)
                .where(timecourse_points.c.timecourse_id == tc_id)
                .order_by(timecourse_points.c.read_at)
            )
            .scalars()
            .all()
        )
        latest = json.loads(
            conn.execute(
                select(results.c.body)
                .where(results.c.plate == f"timecourse:{tc_id}")
                .order_by(results.c.id.desc())
            )
            .scalars()
            .first()
        )
    assert len(points) == len(sim.points)
    hours = [(t - points[0]) / 3600 for t in points]
    assert hours == sorted(hours) and abs(hours[-1] - 48.0) < 1e-6
    assert (
        latest["summary"]["t_h"] == sorted(latest["summary"]["t_h"])
        and len(latest["summary"]["t_h"]) == 9
    )
    doubling = latest["summary"]["growth"]["doubling_time_h"]
    assert abs(doubling / sim.truth["doubling_time_h"] - 1) < 0.15  # the file times were used
    (row,) = list_timecourses(store, tc_id)  # type: ignore[arg-type]
    assert row["source"] == "exports" and row["summary"]["sparkline"]
    store.close()  # type: ignore[attr-defined]


def test_a_kinetic_export_is_a_timecourse_by_itself(tmp_path: Path, corpus: Path) -> None:
    settings, store = _site(tmp_path, LAYOUT)
    src = corpus / "platereaders" / "allotropy__gen5__kinetic_helper_gene_growth_curve.txt"
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    path = inbox / src.name
    path.write_bytes(src.read_bytes())
    Capturer(store, settings.service.state_dir).capture("reader-1", path)  # type: ignore[arg-type]
    ctx = JobContext(store, settings, references(settings))  # type: ignore[arg-type]
    while (job := claim(store, "t", 60)) is not None:  # type: ignore[arg-type]
        process_job(ctx, job, HOOKS)
    with store.engine.connect() as conn:  # type: ignore[attr-defined]
        kinds = [k for k in conn.execute(select(results.c.kind)).scalars()]
        body = json.loads(
            conn.execute(select(results.c.body).where(results.c.kind == "timecourse")).scalar_one()
        )
    assert sorted(kinds) == ["plate", "timecourse"]
    assert body["summary"]["reads"] == 20 and body["summary"]["t_h"][-1] > 1.0
    store.close()  # type: ignore[attr-defined]
