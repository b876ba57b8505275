"""The timecourse scheduler: planned reads done, late or missed exactly once, whatever
happens to the reader or the daemon (issue #13)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from acquisition.capture import Capturer
from acquisition.clock import ManualClock
from acquisition.instruments import Instruments
from acquisition.scheduler import (
    Missed,
    Plan,
    ScheduleError,
    Scheduler,
    plan_timecourse,
    stop_timecourse,
)
from acquisition.store import alerts, captures, open_store, planned_reads, timecourse_points
from acquisition.timecourses import list_timecourses
from config.schema import ReaderSettings
from drivers import ReaderOffline
from tests.daemon_rig import DaemonProcess, wait_for, write_config
from tests.drivers_rig import FAST, running_fake

ROOT = Path(__file__).resolve().parent.parent
LAYOUT = ROOT / "config" / "layouts" / "mtt-96.toml"
START = 1_900_000_000.0


class Rig:
    def __init__(self, tmp_path: Path, options: dict[str, Any] | None = None) -> None:
        self.clock = ManualClock(START)
        self.store = open_store(f"sqlite:///{tmp_path / 'p.db'}", clock=self.clock)
        self.reader = ReaderSettings(
            name="reader-1",
            protocol="simulated",
            layout=LAYOUT,
            options=options or {"seed": 3, "time_scale": 0.0},
        )
        self.missed: list[Missed] = []
        self.instruments = Instruments([self.reader], on_alert=lambda a: None)
        self.scheduler = Scheduler(
            self.store,
            self.instruments,
            Capturer(self.store, tmp_path / "state"),
            ["reader-1"],
            on_missed=self.missed.append,
            tick_seconds=1.0,
            clock=self.clock,
        )

    def plan(
        self, every: float = 10.0, reads: int = 5, start: float = START, name: str = "tc"
    ) -> int:
        tc_id, due = plan_timecourse(
            self.store,
            Plan(name, "reader-1", str(LAYOUT), every, every * (reads - 1), start, (570.0, 650.0)),
        )
        assert len(due) == reads
        return tc_id

    def at(self, t: float) -> None:
        self.clock.set(t)
        self.scheduler.tick()
        self.scheduler.drain()

    def states(self) -> list[str]:
        with self.store.engine.connect() as conn:
            return list(
                conn.execute(
                    select(planned_reads.c.state).order_by(planned_reads.c.index)
                ).scalars()
            )

    def close(self) -> None:
        self.scheduler.stop()
        self.instruments.stop()
        self.store.close()


@pytest.fixture
def rig(tmp_path: Path):  # type: ignore[no-untyped-def]
    r = Rig(tmp_path)
    yield r
    r.close()


def test_reads_on_time_are_done_later_ones_late_and_the_timecourse_ends(rig: Rig) -> None:
    tc = rig.plan(every=10.0, reads=3)
    rig.at(START + 0.2)
    rig.at(START + 10.5)
    rig.at(START + 22.4)  # 2.4 s after its time: within the grace (2.5 s), beyond on-time
    assert rig.states() == ["done", "done", "late"]
    rig.at(START + 23.0)  # the next tick sees every read resolved
    (row,) = list_timecourses(rig.store, tc)
    assert row["state"] == "done" and row["counts"]["done"] == 2 and row["counts"]["late"] == 1
    assert row["reads"][2]["delay_s"] == pytest.approx(2.4)
    assert [p["capture_id"] for p in row["points"]] == [r["capture_id"] for r in row["reads"]]


def test_a_read_past_its_grace_is_missed_once_and_alerted_once(rig: Rig) -> None:
    rig.plan(every=10.0, reads=3)
    rig.at(START + 0.1)
    rig.at(START + 13.0)  # read #1 was due at +10, grace 2.5 s: missed
    rig.at(START + 14.0)
    assert rig.states() == ["done", "missed", "planned"]
    assert [m.indices for m in rig.missed] == [(1,)]
    rig.at(START + 20.0)
    assert rig.states() == ["done", "missed", "done"]
    assert len(rig.missed) == 1


def test_a_reader_offline_at_the_due_time_is_retried_within_the_grace(tmp_path: Path) -> None:
    r = Rig(tmp_path)
    try:
        r.plan(every=20.0, reads=2)
        real_read = r.instruments.read
        failures = [ReaderOffline("reader-1", "unplugged (test)")]

        def flaky(name: str, wavelengths: Any) -> Any:  # the session gave up once
            if failures:
                raise failures.pop()
            return real_read(name, wavelengths)

        r.instruments.read = flaky  # type: ignore[method-assign]
        r.at(START + 0.1)
        assert r.states()[0] == "planned"  # not done, not missed: tried again later
        with r.store.engine.connect() as conn:
            error = conn.execute(
                select(planned_reads.c.last_error).where(planned_reads.c.index == 0)
            ).scalar_one()
        assert "reader-1" in error
        r.at(START + 2.0)
        assert r.states() == ["late", "planned"]
    finally:
        r.close()


def test_reads_slept_through_are_missed_in_one_alert_at_start_up(rig: Rig) -> None:
    rig.plan(every=10.0, reads=6)
    rig.clock.set(START + 41.0)  # the daemon was down for reads #0..#3 (#4 due at +40: in grace)
    assert rig.scheduler.catch_up() == 4
    assert (
        len(rig.missed) == 1 and rig.missed[0].indices == (0, 1, 2, 3) and rig.missed[0].at_startup
    )
    rig.at(START + 41.0)
    assert rig.states() == ["missed"] * 4 + ["done", "planned"]  # 1 s after its time: on time


def test_planning_rules(rig: Rig) -> None:
    rig.plan(name="same")
    with pytest.raises(ScheduleError, match="exists already"):
        rig.plan(name="same")
    tc = rig.plan(name="other", start=START + 100)
    assert stop_timecourse(rig.store, tc) == 5
    (row,) = list_timecourses(rig.store, tc)
    assert row["state"] == "stopped" and row["counts"]["cancelled"] == 5


@pytest.mark.timeout(240)
def test_accelerated_timecourse_survives_a_sigkill_and_every_read_ends_once(tmp_path: Path) -> None:
    """Reads every 2 s for 40 s through a pty fake; the daemon is SIGKILLed in the middle and
    restarted after two intervals."""
    state, inbox = tmp_path / "state", tmp_path / "inbox"
    inbox.mkdir()
    with running_fake("spectramax", tmp_path) as fake:
        opts = ", ".join(f"{k} = {json.dumps(v)}" for k, v in FAST.items())
        extra = (
            '[[reader]]\nname = "reader-1"\nprotocol = "spectramax"\n'
            f'port = "{fake.link}"\nlayout = "{LAYOUT}"\nprobe_seconds = 5.0\noptions = {{ {opts} }}\n'
        )
        config = write_config(tmp_path / "pw.toml", state, [inbox], extra=extra)
        config.write_text(
            config.read_text().replace(
                "rescan_seconds = 2", "rescan_seconds = 2\ntick_seconds = 0.25"
            )
        )
        daemon = DaemonProcess(config, tmp_path / "daemon.log")
        store = open_store(f"sqlite:///{state}/platewatch.db")

        def cli(*args: str) -> Any:
            out = subprocess.run(
                [sys.executable, str(ROOT / "service.py"), "timecourse", *args, "--config", str(config)],
                capture_output=True, text=True, timeout=60, cwd=ROOT,
            )  # fmt: skip
            assert out.returncode == 0, out.stderr
            return out.stdout

        def reads() -> list[str]:
            with store.engine.connect() as conn:
                return list(
                    conn.execute(
                        select(planned_reads.c.state).order_by(planned_reads.c.index)
                    ).scalars()
                )

        try:
            assert daemon.wait_for_message("READY=1"), (tmp_path / "daemon.log").read_text()
            plan = json.loads(
                cli(
                    "start",
                    "--reader",
                    "reader-1",
                    "--every",
                    "2s",
                    "--for",
                    "40s",
                    "--reference",
                    "650",
                    "--json",
                )
            )
            assert len(plan["due"]) == 21
            assert wait_for(
                lambda: reads()[:8].count("done") + reads()[:8].count("late") >= 6, timeout=40
            ), reads()
            daemon.kill()
            time.sleep(2 * 2.0)  # the scenario: the daemon stays down for two intervals
            daemon = DaemonProcess(config, tmp_path / "daemon2.log")
            assert daemon.wait_for_message("READY=1")
            assert wait_for(
                lambda: "planned" not in reads() and "reading" not in reads(), timeout=90
            ), reads()
            final = reads()
            assert len(final) == 21 and set(final) <= {"done", "late", "missed"}
            assert "missed" in final  # the ones slept through
            first_after = max(i for i, s in enumerate(final) if s == "missed") + 1
            assert all(
                s in ("done", "late") for s in final[first_after:]
            )  # reads after the restart
            with store.engine.connect() as conn:
                per_read = conn.execute(
                    select(timecourse_points.c.planned_read_id, func.count()).group_by(
                        timecourse_points.c.planned_read_id
                    )
                ).all()
                n_captures = conn.execute(select(func.count()).select_from(captures)).scalar_one()
                missed_alerts = (
                    conn.execute(select(alerts.c.body).where(alerts.c.code == "read_missed"))
                    .scalars()
                    .all()
                )
            assert all(n == 1 for _, n in per_read)  # never two captures for one planned read
            assert n_captures == len(per_read) == final.count("done") + final.count("late")
            assert wait_for(
                lambda: (
                    (list_timecourses(store, plan["id"])[0]["summary"] or {}).get("reads", 0)
                    == n_captures
                ),
                timeout=90,
            )  # every read captured is in the timecourse's analysis
            alerted = [int(i) for body in missed_alerts for i in re.findall(r"#(\d+) \(due", body)]
            assert sorted(alerted) == [i for i, s in enumerate(final) if s == "missed"]  # each once
        finally:
            store.close()
            daemon.stop()


def test_a_backlog_of_reads_pays_for_one_timecourse_summary_not_one_per_read(rig: Rig) -> None:
    """Reads faster than their analyses: a read whose later read still waits skips the
    summary (the later one covers it), so the analyses cannot fall behind for good."""
    from acquisition.kinds import JobContext
    from acquisition.pipeline import references
    from acquisition.queue import claim
    from acquisition.store import results
    from acquisition.worker import Hooks, process_job
    from config.schema import Settings

    rig.plan(every=10.0, reads=4)
    for k in range(4):
        rig.at(START + 10.0 * k + 0.2)  # four reads captured, none analysed yet
    settings = Settings.model_validate(
        {"service": {"state_dir": str(rig.store.engine.url.database).rsplit("/", 1)[0]}}
    )
    ctx = JobContext(rig.store, settings, references(settings), layout_override=None)
    while (job := claim(rig.store, "test", 60)) is not None:
        process_job(ctx, job, Hooks())
    with rig.store.engine.connect() as conn:
        kinds = list(conn.execute(select(results.c.kind).order_by(results.c.id)).scalars())
        summary = conn.execute(
            select(results.c.body).where(results.c.kind == "timecourse")
        ).scalar_one()
    assert kinds.count("plate") == 4
    assert kinds.count("timecourse") == 1  # the last read's, made after every plate's
    assert json.loads(summary)["summary"]["reads"] == 4
