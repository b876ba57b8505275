"""The seams of the worker and the daemon (issue #8): capture kinds, reports from stored
results, settings generations."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

from sqlalchemy import select

from acquisition.capture import Capture, Capturer
from acquisition.clock import ManualClock
from acquisition.kinds import Finding, JobContext, register, unregister
from acquisition.pipeline import references
from acquisition.queue import Purpose, claim, enqueue
from acquisition.store import alerts, jobs, open_store, results
from acquisition.worker import Hooks, process_job
from analysis.model import Flag
from config.schema import Settings
from monitoring.rules import alert_for_quarantine, alerts_for_result
from tests.daemon_rig import DaemonProcess, wait_for, write_config
from tests.plate_sim import Defects, simulate_plate, to_gen5_text

ROOT = Path(__file__).resolve().parent.parent
LAYOUT = ROOT / "config" / "layouts" / "mtt-96.toml"
HOOKS = Hooks(on_result=alerts_for_result, on_dead=alert_for_quarantine)


def _settings(tmp_path: Path, **qc: Any) -> Settings:
    return Settings.model_validate(
        {
            "service": {"state_dir": str(tmp_path / "state")},
            "store": {"url": f"sqlite:///{tmp_path / 'state' / 'p.db'}"},
            "watch": [
                {"path": str(tmp_path / "inbox"), "instrument": "reader-1", "layout": str(LAYOUT)}
            ],
            "alerts": {"console": False},
            "qc": qc,
        }
    )


def _drain(ctx: JobContext) -> list[str]:
    outcomes = []
    while (job := claim(ctx.store, "test", 60)) is not None:
        outcomes.append(process_job(ctx, job, HOOKS))
    return outcomes


class LineCounter:
    """A capture kind the worker has never heard of: text files whose lines are counted."""

    kind = "line-count"

    def analyse(self, capture: Capture, ctx: JobContext) -> list[Finding]:
        lines = capture.archive.read_bytes().decode().splitlines()
        flags = (
            [Flag("layout_mismatch", "warning", f"{len(lines)} lines is odd")]
            if len(lines) % 2
            else []
        )
        return [
            Finding(
                subject="whole file",
                key=f"{capture.instrument}:{capture.file_name}",
                name=capture.file_name,
                kind=self.kind,
                verdict="warn" if flags else "pass",
                flags=flags,
                body={"lines": len(lines)},
            )
        ]

    def render(
        self, capture: Capture, body: dict[str, Any], out_dir: Path, name: str
    ) -> dict[str, str]:
        out_dir.mkdir(parents=True, exist_ok=True)
        page = out_dir / f"{name}.html"
        page.write_text(f"<p>{body['lines']} lines</p>")
        return {"html": str(page)}


def test_a_new_capture_kind_is_analysed_end_to_end_without_touching_the_worker(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path)
    store = open_store(settings.store.url, clock=ManualClock())
    register(LineCounter())
    try:
        src = tmp_path / "inbox" / "notes.txt"
        src.parent.mkdir(parents=True)
        src.write_text("a\nb\nc\n")
        outcome = Capturer(store, settings.service.state_dir).capture("reader-1", src, "line-count")
        assert outcome.outcome == "captured"
        ctx = JobContext(store, settings, references(settings))
        assert _drain(ctx) == ["done", "done"]  # the analysis, then its report
        with store.engine.connect() as conn:
            (kind, verdict, body, report) = conn.execute(
                select(results.c.kind, results.c.verdict, results.c.body, results.c.report)
            ).one()
            alert_codes = conn.execute(select(alerts.c.code)).scalars().all()
        assert (kind, verdict) == ("line-count", "warn")
        assert json.loads(body)["lines"] == 3
        assert Path(json.loads(report)["html"]).read_text() == "<p>3 lines</p>"
        assert alert_codes == ["layout_mismatch"]  # the alert rules took it like any finding
    finally:
        unregister("line-count")
        store.close()


def test_an_unknown_purpose_is_dead_with_a_reason_not_skipped(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    store = open_store(settings.store.url)
    src = tmp_path / "inbox" / "p.txt"
    src.parent.mkdir(parents=True)
    src.write_text(to_gen5_text(simulate_plate(_layout(), 1).read), encoding="cp1252")
    capture_id = Capturer(store, settings.service.state_dir).capture("reader-1", src).capture_id
    assert capture_id is not None
    with store.begin() as conn:
        conn.execute(jobs.delete())
        enqueue(conn, capture_id, Purpose.ANALYZE)
        conn.execute(jobs.update().values(purpose="from-the-future"))
    ctx = JobContext(store, settings, references(settings))
    assert _drain(ctx) == ["dead"]
    with store.engine.connect() as conn:
        error = conn.execute(select(jobs.c.last_error)).scalar_one()
    assert "from-the-future" in error and "unknown" in error
    store.close()


def _layout():  # type: ignore[no-untyped-def]
    from analysis.layout import load_layout

    return load_layout(LAYOUT)


def test_a_report_rendered_after_a_threshold_change_shows_the_stored_result(tmp_path: Path) -> None:
    """Reports come from the stored result, never a second analysis under other settings."""
    before = _settings(tmp_path)
    store = open_store(before.store.url)
    src = tmp_path / "inbox" / "edge.txt"
    src.parent.mkdir(parents=True)
    src.write_text(
        to_gen5_text(simulate_plate(_layout(), 3, Defects(edge=0.3)).read), encoding="cp1252"
    )
    Capturer(store, before.service.state_dir).capture("reader-1", src)
    job = claim(store, "test", 60)
    assert job is not None and job.purpose == Purpose.ANALYZE
    assert process_job(JobContext(store, before, references(before)), job, HOOKS) == "done"
    # the thresholds change before the report job runs: edge effects of 30 % are now "fine"
    after = _settings(tmp_path, edge_ratio=0.5, edge_p=1e-12)
    report_job = claim(store, "test", 60)
    assert report_job is not None and report_job.purpose == Purpose.REPORT
    assert process_job(JobContext(store, after, references(after)), report_job, HOOKS) == "done"
    with store.engine.connect() as conn:
        body, report = conn.execute(select(results.c.body, results.c.report)).one()
    stored = json.loads(body)
    page = Path(json.loads(report)["html"]).read_text()
    assert stored["verdict"] == "warn" and "edge_effect" in [f["code"] for f in stored["flags"]]
    assert "edge_effect" in page and ">WARN<" in page
    store.close()


def test_sighup_then_a_worker_crash_leaves_every_worker_on_one_generation(tmp_path: Path) -> None:
    inbox, state = tmp_path / "inbox", tmp_path / "state"
    inbox.mkdir()
    config = write_config(tmp_path / "pw.toml", state, [inbox])
    daemon = DaemonProcess(config, tmp_path / "daemon.log")

    def published() -> dict[str, Any]:
        try:
            return json.loads((state / "daemon.json").read_text())  # type: ignore[no-any-return]
        except (OSError, ValueError):
            return {}

    def settled(generation: int) -> bool:
        live = published()
        workers = live.get("workers", [])
        return (
            live.get("generation") == generation
            and len(workers) == 2
            and all(w["alive"] and w["generation"] == generation for w in workers)
        )

    try:
        assert daemon.wait_for_message("READY=1"), (tmp_path / "daemon.log").read_text()
        assert wait_for(lambda: settled(1), timeout=30)
        write_config(config, state, [inbox], extra="[qc]\nedge_ratio = 0.85\n")
        daemon.signal(signal.SIGHUP)
        assert wait_for(lambda: settled(2), timeout=60), published()
        victim = published()["workers"][0]
        os.kill(victim["pid"], signal.SIGKILL)
        assert wait_for(
            lambda: settled(2) and published()["workers"][0]["pid"] != victim["pid"], timeout=60
        ), published()
        assert {w["generation"] for w in published()["workers"]} == {2}
        assert "settings generation 2" in (tmp_path / "daemon.log").read_text()
    finally:
        assert daemon.stop() == 0
