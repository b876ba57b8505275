"""Timecourse reads on a plan (DESIGN.md §6): the plan is data, one APScheduler job ticks.

A timecourse is a row of ``timecourses`` and one ``planned_reads`` row per read, written
when it is planned; nothing about it lives in APScheduler (no pickled job store — the
plan survives restarts and refactors as plain rows). APScheduler 3.11 runs a single
interval job, the tick, in UTC. Each tick, for the daemon's own readers:

* a planned read that is due is performed (on a per-reader thread, one read at a time per
  port): the read is captured (archive + capture row + analysis job) and the planned read
  marked ``done`` — or ``late``, with its delay, when it started later than the on-time
  tolerance — in the same transaction, so a planned read never has two captures whatever
  restarts happen;
* a read whose reader is busy or offline goes back to ``planned`` with the error and is
  tried again on the next tick, within its grace (by default a quarter of the interval,
  at most 10 min);
* a read past its grace is ``missed``, exactly once (a guarded update), and alerted;
* at start-up, the reads the daemon slept through are marked missed in one grouped alert;
* a timecourse whose reads are all resolved is ``done``.

Time comes from an injectable clock; tests call :meth:`Scheduler.tick` directly.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from acquisition.capture import Capturer
from acquisition.clock import SYSTEM_CLOCK, Clock
from acquisition.instruments import Instruments, capture_read
from acquisition.store import Store, insert_row, planned_reads, timecourse_points, timecourses
from errors import InstrumentError, PlatewatchError

log = logging.getLogger(__name__)

PENDING = ("planned", "reading")
MAX_GRACE_S = 600.0


class ScheduleError(PlatewatchError):
    """A timecourse that cannot be planned, shown or stopped as asked."""


def default_grace(every_s: float) -> float:
    return min(every_s / 4.0, MAX_GRACE_S)


@dataclass(frozen=True)
class Plan:
    name: str
    reader: str
    layout: str | None
    every_s: float
    for_s: float
    start_at: float
    wavelengths: tuple[float, ...]
    grace_s: float | None = None

    def due_times(self) -> list[float]:
        count = math.floor(self.for_s / self.every_s + 1e-9) + 1
        return [self.start_at + i * self.every_s for i in range(count)]


def plan_timecourse(store: Store, plan: Plan) -> tuple[int, list[float]]:
    """Write the timecourse and all its planned reads; returns its id and the due times."""
    if plan.every_s <= 0 or plan.for_s < 0:
        raise ScheduleError("--every must be > 0 and --for ≥ 0")
    due = plan.due_times()
    if len(due) > 100_000:
        raise ScheduleError(f"{len(due)} planned reads: choose a longer interval")
    grace = plan.grace_s if plan.grace_s is not None else default_grace(plan.every_s)
    with store.begin() as conn:
        taken = conn.execute(
            select(timecourses.c.id).where(timecourses.c.name == plan.name)
        ).scalar()
        if taken is not None:
            raise ScheduleError(f"a timecourse named {plan.name!r} exists already (id {taken})")
        tc_id = insert_row(
            conn,
            timecourses,
            name=plan.name,
            source="driver",
            reader=plan.reader,
            layout=plan.layout,
            every_s=plan.every_s,
            for_s=plan.for_s,
            start_at=plan.start_at,
            grace_s=grace,
            wavelengths=json.dumps(list(plan.wavelengths)),
            state="running",
            created_at=store.now(),
        )
        conn.execute(
            insert(planned_reads),
            [
                {"timecourse_id": tc_id, "index": i, "due_at": t, "state": "planned", "attempts": 0}
                for i, t in enumerate(due)
            ],
        )
    return tc_id, due


def stop_timecourse(store: Store, tc_id: int) -> int:
    """Stop a timecourse: its planned reads are cancelled; returns how many."""
    with store.begin() as conn:
        state = conn.execute(select(timecourses.c.state).where(timecourses.c.id == tc_id)).scalar()
        if state is None:
            raise ScheduleError(f"no timecourse with id {tc_id}")
        cancelled = conn.execute(
            update(planned_reads)
            .where(planned_reads.c.timecourse_id == tc_id, planned_reads.c.state == "planned")
            .values(state="cancelled")
        ).rowcount
        if state == "running":
            conn.execute(
                update(timecourses)
                .where(timecourses.c.id == tc_id)
                .values(state="stopped", stopped_at=store.now())
            )
    return int(cancelled)


@dataclass(frozen=True)
class Missed:
    timecourse_id: int
    name: str
    reader: str | None
    indices: tuple[int, ...]
    due: tuple[float, ...]
    at_startup: bool


MissedHook = Callable[[Missed], None]


class Scheduler:
    """The tick and the reads it starts, for the readers this daemon owns."""

    def __init__(
        self,
        store: Store,
        instruments: Instruments,
        capturer: Capturer,
        readers: Sequence[str],
        *,
        on_missed: MissedHook | None = None,
        on_captured: Callable[[int], None] | None = None,
        tick_seconds: float = 1.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.store = store
        self.instruments = instruments
        self.capturer = capturer
        self.readers = set(readers)
        self.on_missed = on_missed
        self.on_captured = on_captured
        self.tick_seconds = tick_seconds
        self.clock = clock
        self._inflight: dict[int, Future[None]] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, len(self.readers)), thread_name_prefix="planned-read"
        )
        self._reader_busy: dict[str, bool] = {}
        self._aps: Any = None
        self.ticks = 0
        self.tick_lateness: list[float] = []  # seconds each tick ran after it was due
        self.last_tick_at: float | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.triggers.interval import IntervalTrigger

        self.catch_up()
        self._aps = BackgroundScheduler(
            timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1}
        )
        self._aps.add_job(
            self._tick_job,
            IntervalTrigger(seconds=self.tick_seconds, timezone=UTC),
            id="tick",
            misfire_grace_time=None,
        )
        self._aps.start()

    def alive(self) -> bool:
        return self._aps is not None and bool(self._aps.running)

    def stop(self) -> None:
        if self._aps is not None:
            self._aps.shutdown(wait=True)
            self._aps = None
        self._pool.shutdown(wait=True)

    def drain(self, timeout: float = 60.0) -> None:
        """Wait for the reads under way (tests, and shutdown)."""
        with self._lock:
            futures = list(self._inflight.values())
        for future in futures:
            future.result(timeout=timeout)

    def lateness(self) -> dict[str, float | int | None]:
        """The ticks' lateness (seconds after they were due), over the last 10,000 ticks."""
        late = sorted(self.tick_lateness)
        if not late:
            return {"n": 0, "p50_s": None, "p95_s": None, "max_s": None}

        def at(q: float) -> float:
            return round(late[min(len(late) - 1, int(q * len(late)))], 4)

        return {"n": len(late), "p50_s": at(0.50), "p95_s": at(0.95), "max_s": round(late[-1], 4)}

    def _tick_job(self) -> None:
        try:
            self.tick()
        except Exception:  # the tick must keep ticking; the next one retries
            log.exception("timecourse tick failed")

    # -- the tick ---------------------------------------------------------------------------
    def catch_up(self) -> int:
        """Mark the reads slept through (past their grace) as missed: one alert per timecourse."""
        return self._miss_overdue(at_startup=True)

    def tick(self) -> None:
        now = self.clock.now()
        if self.last_tick_at is not None:
            self.tick_lateness.append(max(0.0, now - self.last_tick_at - self.tick_seconds))
            del self.tick_lateness[:-10_000]
        self.last_tick_at = now
        self.ticks += 1
        self._miss_overdue(at_startup=False)
        for row in self._due(now):
            if row["id"] in self._inflight or self._reader_busy.get(row["reader"]):
                continue
            with self._lock:
                self._reader_busy[row["reader"]] = True
                self._inflight[row["id"]] = self._pool.submit(self._perform, dict(row))
        self._finish_timecourses()

    def _due(self, now: float) -> list[dict[str, Any]]:
        query = (
            select(
                planned_reads.c.id,
                planned_reads.c.index,
                planned_reads.c.due_at,
                planned_reads.c.timecourse_id,
                timecourses.c.name,
                timecourses.c.reader,
                timecourses.c.wavelengths,
                timecourses.c.grace_s,
                timecourses.c.every_s,
            )
            .join(timecourses, timecourses.c.id == planned_reads.c.timecourse_id)
            .where(
                planned_reads.c.state.in_(PENDING),
                planned_reads.c.due_at <= now,
                timecourses.c.state == "running",
                timecourses.c.reader.in_(sorted(self.readers)),
            )
            .order_by(planned_reads.c.due_at)
        )
        with self.store.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def _miss_overdue(self, *, at_startup: bool) -> int:
        now = self.clock.now()
        with self.store.begin() as conn:
            rows = conn.execute(
                select(
                    planned_reads.c.id,
                    planned_reads.c.index,
                    planned_reads.c.due_at,
                    timecourses.c.id.label("tc"),
                    timecourses.c.name,
                    timecourses.c.reader,
                )
                .join(timecourses, timecourses.c.id == planned_reads.c.timecourse_id)
                .where(
                    planned_reads.c.state.in_(PENDING),
                    planned_reads.c.due_at + timecourses.c.grace_s < now,
                    timecourses.c.state == "running",
                    timecourses.c.reader.in_(sorted(self.readers)),
                )
                .order_by(planned_reads.c.due_at)
            ).all()
            missed: dict[int, list[Any]] = {}
            for row in rows:
                if row.id in self._inflight:
                    continue  # a read of it is under way; its own outcome decides
                changed = conn.execute(
                    update(planned_reads)
                    .where(planned_reads.c.id == row.id, planned_reads.c.state.in_(PENDING))
                    .values(state="missed", done_at=now)
                ).rowcount
                if changed == 1:
                    missed.setdefault(row.tc, []).append(row)
        for tc_id, group in missed.items():
            log.warning(
                "timecourse %s: %d read(s) missed%s",
                group[0].name,
                len(group),
                " while the daemon was down" if at_startup else "",
            )
            if self.on_missed is not None:
                self.on_missed(
                    Missed(
                        tc_id,
                        group[0].name,
                        group[0].reader,
                        tuple(int(r.index) for r in group),
                        tuple(float(r.due_at) for r in group),
                        at_startup,
                    )
                )
        return sum(len(g) for g in missed.values())

    def _perform(self, row: dict[str, Any]) -> None:
        read_id, reader = int(row["id"]), str(row["reader"])
        try:
            started = self.clock.now()
            with self.store.begin() as conn:
                claimed = conn.execute(
                    update(planned_reads)
                    .where(planned_reads.c.id == read_id, planned_reads.c.state.in_(PENDING))
                    .values(
                        state="reading", started_at=started, attempts=planned_reads.c.attempts + 1
                    )
                ).rowcount
            if claimed != 1:
                return
            wavelengths = [float(v) for v in json.loads(row["wavelengths"])]
            try:
                export = self.instruments.read(reader, wavelengths)
            except InstrumentError as exc:
                with self.store.begin() as conn:  # try again on a later tick, within the grace
                    conn.execute(
                        update(planned_reads)
                        .where(planned_reads.c.id == read_id, planned_reads.c.state == "reading")
                        .values(state="planned", last_error=str(exc))
                    )
                log.warning(
                    "planned read %s #%d: %s; retrying within its grace",
                    row["name"],
                    row["index"],
                    exc,
                )
                return
            delay = max(0.0, started - float(row["due_at"]))
            on_time = max(1.5 * self.tick_seconds, 0.02 * float(row["every_s"]))
            state = "done" if delay <= on_time else "late"

            def mark(conn: Connection, capture_id: int) -> None:
                conn.execute(
                    update(planned_reads)
                    .where(planned_reads.c.id == read_id, planned_reads.c.state == "reading")
                    .values(
                        state=state, done_at=self.clock.now(), delay_s=delay, capture_id=capture_id
                    )
                )
                conn.execute(
                    insert(timecourse_points).values(
                        timecourse_id=row["timecourse_id"],
                        capture_id=capture_id,
                        read_at=started,
                        planned_read_id=read_id,
                    )
                )

            outcome = capture_read(
                self.capturer,
                self.instruments.settings_of(reader),
                export,
                clock=self.clock,
                extra={
                    "timecourse": row["name"],
                    "timecourse_id": row["timecourse_id"],
                    "planned_read": row["index"],
                    "due_at": row["due_at"],
                },
                on_stored=mark,
            )
            if outcome.capture_id is not None and self.on_captured is not None:
                self.on_captured(outcome.capture_id)
        except Exception:
            log.exception("planned read %s #%s failed", row.get("name"), row.get("index"))
        finally:
            with self._lock:
                self._inflight.pop(read_id, None)
                self._reader_busy[reader] = False

    def _finish_timecourses(self) -> None:
        pending = (
            select(func.count())
            .where(
                planned_reads.c.timecourse_id == timecourses.c.id,
                planned_reads.c.state.in_(PENDING),
            )
            .scalar_subquery()
        )
        with self.store.begin() as conn:
            conn.execute(
                update(timecourses)
                .where(
                    timecourses.c.state == "running", timecourses.c.source == "driver", pending == 0
                )
                .values(state="done", stopped_at=self.clock.now())
            )
