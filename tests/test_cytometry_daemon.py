"""FCS experiments in the daemon's worker: grouped, analysed once complete, re-analysed
when a late tube arrives, stored and reported (issue #11 part 4)."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from acquisition.capture import Capturer
from acquisition.clock import ManualClock
from acquisition.kinds import JobContext
from acquisition.pipeline import references
from acquisition.queue import claim
from acquisition.store import list_results, open_store, results
from acquisition.worker import Hooks, process_job
from config.schema import Settings
from monitoring.rules import alert_for_quarantine, alerts_for_result
from tests.fcs_sim import POPULATIONS, SampleSpec, write_experiment

HOOKS = Hooks(on_result=alerts_for_result, on_dead=alert_for_quarantine)


def test_an_experiment_is_analysed_when_quiet_and_again_for_a_late_tube(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox" / "exp-2026-12-01"
    settings = Settings.model_validate(
        {
            "service": {"state_dir": str(tmp_path / "state")},
            "store": {"url": f"sqlite:///{tmp_path / 'state' / 'p.db'}"},
            "watch": [{"path": str(tmp_path / "inbox"), "instrument": "cyto-1"}],
            "alerts": {"console": False},
            "cytometry": {"quiet_seconds": 30},
        }
    )
    clock = ManualClock()
    store = open_store(settings.store.url, clock=clock)
    capturer = Capturer(store, settings.service.state_dir, delays={"cytometry": 30.0})
    ctx = JobContext(store, settings, references(settings))
    specs = {
        "ctrl_untreated": SampleSpec(fractions=(0.88, 0.05, 0.04, 0.03), seed=21),
        "asparaginase_1": SampleSpec(fractions=(0.40, 0.30, 0.25, 0.05), seed=22),
    }
    exp = write_experiment(inbox, specs)
    for path in sorted(inbox.glob("*.fcs")):
        assert capturer.capture("cyto-1", path).outcome == "captured"
        clock.advance(2.0)

    def drain() -> list[str]:
        out = []
        while (job := claim(store, "t", 60)) is not None:
            out.append(process_job(ctx, job, HOOKS))
        return out

    assert drain() == []  # nothing is due before the experiment has been quiet
    clock.advance(31.0)
    assert drain().count("done") == 5 * 2  # 5 analysis jobs (4 leave it to the last) + reports
    rows = list_results(store, 50)
    assert len(rows) == 5 and {r["kind"] for r in rows} == {"cytometry"}
    with store.engine.connect() as conn:
        bodies = [json.loads(b) for b in conn.execute(select(results.c.body)).scalars()]
        reports = [json.loads(r) for r in conn.execute(select(results.c.report)).scalars()]
    assert {b["role"] for b in bodies} == {
        "unstained",
        "annexin_only",
        "pi_only",
        "untreated",
        "sample",
    }
    for body in bodies:
        if body["role"] == "sample" and body["path"] in {str(p) for p in exp.samples}:
            truth = exp.samples[Path(body["path"])].truth
            for population in POPULATIONS:
                assert abs(body["populations"][population]["percent"] - truth[population]) <= 1.5
    assert all(Path(r["png"]).is_file() for r in reports)  # drawn from the stored plot data

    late = write_experiment(
        inbox,
        {"asparaginase_10": SampleSpec(fractions=(0.2, 0.4, 0.35, 0.05), seed=23)},
        controls=(),
    )
    (late_path,) = late.samples
    capturer.capture("cyto-1", late_path)
    clock.advance(31.0)
    drain()
    newest = list_results(store, 6)
    assert len(newest) == 6 and str(late_path) in {r["path"] for r in newest}
    store.close()
