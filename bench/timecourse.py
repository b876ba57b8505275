"""A long accelerated timecourse through a pty fake, in the real daemon: does it stay flat?

Starts a SpectraMax pty fake and the daemon (SQLite WAL, 2 workers, the scheduler ticking
every 0.1 s), plans one timecourse of ``--reads`` reads every ``--every`` seconds, and samples
the daemon's main process from /proc — resident memory, threads, open file descriptors —
and its child processes' memory (workers, multiprocessing's resource tracker), at read 200 and at the end. It also prints the scheduler's tick
lateness (p50/p95/max, from the daemon's published state), how late the reads were
performed, the reads missed, and how far the analyses trailed the reads. Goal (issue #13):
main-process RSS ≤ 200 MB, growth ≤ 5 % from read 200 to the end, threads and fds flat.

    python -m bench.timecourse [--reads 2000] [--every 0.4]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from acquisition.scheduler import Plan, plan_timecourse
from acquisition.store import Store, planned_reads, results, timecourse_points
from drivers.fakes.process import FakeProcess
from tests.daemon_rig import DaemonProcess, store_for, wait_for, write_config

ROOT = Path(__file__).resolve().parent.parent
LAYOUT = ROOT / "config" / "layouts" / "mtt-96.toml"
FAST = {"poll_interval_s": 0.01, "timeout_s": 2.0, "read_timeout_s": 10.0, "busy_timeout_s": 20.0}


def proc_sample(pid: int) -> dict[str, float]:
    """RSS (MB), threads and open fds of one process, read from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        "rss_mb": int(fields["VmRSS"].split()[0]) / 1024,
        "threads": int(fields["Threads"]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
    }


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def sample(pid: int) -> dict[str, Any]:
    main = proc_sample(pid)
    workers = []
    for child in children(pid):
        try:
            workers.append(proc_sample(child)["rss_mb"])
        except (OSError, KeyError):
            continue  # a worker being replaced
    return {**main, "workers_rss_mb": [round(w, 1) for w in workers]}


def progress(store: Store, tc_id: int) -> dict[str, Any]:
    with store.engine.connect() as conn:
        states: dict[str, int] = dict(
            conn.execute(
                select(planned_reads.c.state, func.count())
                .where(planned_reads.c.timecourse_id == tc_id)
                .group_by(planned_reads.c.state)
            ).all()
        )
        read_captures = select(planned_reads.c.capture_id).where(
            planned_reads.c.timecourse_id == tc_id, planned_reads.c.capture_id.is_not(None)
        )
        analysed = conn.execute(
            select(func.count(func.distinct(results.c.capture_id))).where(
                results.c.capture_id.in_(read_captures)
            )
        ).scalar_one()
        points = conn.execute(
            select(func.count())
            .select_from(timecourse_points)
            .where(timecourse_points.c.timecourse_id == tc_id)
        ).scalar_one()
    return {"states": states, "analysed": int(analysed), "points": int(points)}


def read_delays(store: Store, tc_id: int) -> list[float]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(planned_reads.c.due_at, planned_reads.c.done_at).where(
                planned_reads.c.timecourse_id == tc_id, planned_reads.c.done_at.is_not(None)
            )
        ).all()
    return sorted(float(done) - float(due) for due, done in rows)


def quantile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--every", type=float, default=0.4, help="seconds between reads")
    parser.add_argument("--tick", type=float, default=0.1, help="the scheduler's tick (s)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pw-bench-tc-"))
    state, inbox = tmp / "state", tmp / "inbox"
    inbox.mkdir()
    with FakeProcess("spectramax", tmp / "smx.tty", seed=1) as fake:
        opts = ", ".join(f"{k} = {json.dumps(v)}" for k, v in FAST.items())
        extra = (
            '[[reader]]\nname = "reader-1"\nprotocol = "spectramax"\n'
            f'port = "{fake.link}"\nlayout = "{LAYOUT}"\nprobe_seconds = 5.0\n'
            f"options = {{ {opts} }}\n"
        )
        config = write_config(tmp / "pw.toml", state, [inbox], extra=extra)
        config.write_text(
            config.read_text().replace(
                "rescan_seconds = 2", f"rescan_seconds = 2\ntick_seconds = {args.tick}"
            )
        )
        daemon = DaemonProcess(config, tmp / "daemon.log")
        try:
            if not daemon.wait_for_message("READY=1"):
                raise SystemExit(f"the daemon did not start: see {tmp / 'daemon.log'}")
            store = store_for(f"sqlite:///{state}/platewatch.db")
            start = time.time() + 2.0
            for_s = (args.reads - 1) * args.every
            grace = min(0.75 * args.every, args.every - args.tick)
            plan = Plan("bench", "reader-1", str(LAYOUT), args.every, for_s, start, (570.0, 650.0))
            tc_id, due = plan_timecourse(store, Plan(**{**plan.__dict__, "grace_s": grace}))
            print(
                f"{len(due)} reads every {args.every} s (grace {grace:.2f} s, tick {args.tick} s),"
                f" ~{for_s / 60:.1f} min; daemon pid {daemon.proc.pid}"
            )

            def performed() -> int:
                s = progress(store, tc_id)["states"]
                return sum(s.get(k, 0) for k in ("done", "late", "missed"))

            at_200: dict[str, Any] = {}
            if wait_for(lambda: performed() >= min(200, len(due)), timeout=for_s + 120):
                at_200 = sample(daemon.proc.pid)
            trail: list[int] = []
            deadline = time.time() + for_s + 300
            while time.time() < deadline and performed() < len(due):
                p = progress(store, tc_id)
                trail.append(performed() - p["analysed"])
                time.sleep(1.0)
            wait_for(  # every read taken (a missed read has no capture) is analysed
                lambda: progress(store, tc_id)["analysed"] >= progress(store, tc_id)["points"],
                timeout=120,
            )
            end = sample(daemon.proc.pid)
            final = progress(store, tc_id)
            delays = read_delays(store, tc_id)
            daemon_state = json.loads((state / "daemon.json").read_text())
            lateness = daemon_state["extra"]["scheduler"]["lateness"]
        finally:
            daemon.stop()
            daemon.close()
    growth = (end["rss_mb"] / at_200["rss_mb"] - 1.0) * 100 if at_200 else float("nan")
    print(f"reads: {final['states']}, analysed {final['analysed']}, points {final['points']}")
    print("                  RSS MB   threads   fds   child processes' RSS MB")
    for label, s in (("at read 200", at_200), ("at the end", end)):
        if s:
            print(
                f"  {label:14s} {s['rss_mb']:7.1f}   {s['threads']:7d}   {s['fds']:3d}"
                f"   {s['workers_rss_mb']}"
            )
    print(f"  RSS growth from read 200 to the end: {growth:+.1f} % (goal ≤ 5 %, ≤ 200 MB)")
    print(
        f"tick lateness over {lateness['n']} ticks: p50 {lateness['p50_s'] * 1000:.1f} ms,"
        f" p95 {lateness['p95_s'] * 1000:.1f} ms, max {lateness['max_s'] * 1000:.1f} ms"
    )
    print(
        f"read performed after its due time: p50 {quantile(delays, 0.5) * 1000:.0f} ms,"
        f" p95 {quantile(delays, 0.95) * 1000:.0f} ms, max {max(delays, default=0) * 1000:.0f} ms"
    )
    if trail:
        print(
            f"analyses behind the reads: median {statistics.median(trail):.0f},"
            f" max {max(trail)} (sampled every second)"
        )


if __name__ == "__main__":
    main()
