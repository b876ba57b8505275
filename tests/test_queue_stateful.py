"""A stateful property test of the queue (STYLE.md §13): any interleaving of enqueue,
claim, complete, fail and the passing of time keeps the store equal to a simple model —
one owner per lease, a late worker never stores anything, at most one result per job."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule
from sqlalchemy import func, select

import acquisition.queue as queue
from acquisition.clock import ManualClock
from acquisition.queue import Job, LeaseLost
from acquisition.store import captures, insert_row, jobs, open_store, results, utc_now

LEASE = 10.0
MAX_ATTEMPTS = 3


@dataclass
class Modelled:
    state: str = "queued"
    owner: str | None = None
    expires: float = 0.0
    attempts: int = 0
    next_at: float = 0.0


class QueueMachine(RuleBasedStateMachine):
    handles = Bundle("handles")

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp())
        self.time = ManualClock(1000.0)
        self.store = open_store(f"sqlite:///{self.dir / 'q.db'}", clock=self.time)
        self.model: dict[int, Modelled] = {}
        self.n = 0

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule()
    def add(self) -> None:
        self.n += 1
        with self.store.begin() as conn:
            cid = insert_row(
                conn,
                captures,
                instrument="r",
                source_path=f"/{self.n}",
                file_name="f",
                sha256=f"{self.n:064d}",
                size=1,
                mtime_ns=1,
                archive_path="/a",
                kind="plate",
                captured_at=utc_now(),
            )
            job_id = queue.enqueue(conn, cid, at=self.clock)
        self.model[job_id] = Modelled(next_at=self.clock)

    @rule(target=handles, owner=st.sampled_from(["a", "b", "c"]))
    def claim(self, owner: str) -> Job | None:
        claimable = sorted(
            i
            for i, m in self.model.items()
            if (m.state == "queued" and m.next_at <= self.clock)
            or (m.state == "running" and m.expires < self.clock)
        )
        job = queue.claim(self.store, owner, LEASE)
        if not claimable:
            assert job is None
            return None
        assert job is not None and job.id == claimable[0]
        m = self.model[job.id]
        m.state, m.owner, m.expires, m.attempts = (
            "running",
            owner,
            self.clock + LEASE,
            m.attempts + 1,
        )
        assert job.attempts == m.attempts
        return job

    def _holds(self, job: Job) -> bool:
        m = self.model[job.id]
        return m.state == "running" and m.owner == job.owner and m.attempts == job.attempts

    @rule(job=handles)
    def complete(self, job: Job | None) -> None:
        if job is None:
            return
        holds = self._holds(job)

        def effects(conn) -> None:  # type: ignore[no-untyped-def]
            insert_row(
                conn,
                results,
                capture_id=job.capture_id,
                job_id=job.id,
                plate=f"P{job.attempts}",
                kind="plate",
                verdict="pass",
                analyzed_at=utc_now(),
                body="{}",
            )

        try:
            queue.complete(self.store, job, effects)
            assert holds, "a worker without the lease stored a result"
            m = self.model[job.id]
            m.state, m.owner = "done", None
        except LeaseLost:
            assert not holds

    @rule(job=handles)
    def fail(self, job: Job | None) -> None:
        if job is None:
            return
        holds = self._holds(job)
        try:
            outcome = queue.fail(self.store, job, "boom", max_attempts=MAX_ATTEMPTS)
        except LeaseLost:
            assert not holds
            return
        assert holds
        m = self.model[job.id]
        m.owner = None
        if m.attempts >= MAX_ATTEMPTS:
            assert outcome == "dead"
            m.state = "dead"
        else:
            assert outcome == "queued"
            m.state, m.next_at = "queued", self.clock + min(2.0 ** (m.attempts - 1), 300.0)

    @property
    def clock(self) -> float:
        return self.time.now()

    @rule(seconds=st.floats(min_value=0, max_value=15))
    def time_passes(self, seconds: float) -> None:
        self.time.advance(seconds)

    @invariant()
    def store_matches_model(self) -> None:
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                select(jobs.c.id, jobs.c.state, jobs.c.lease_owner, jobs.c.attempts)
            ).all()
            per_job = dict(
                conn.execute(
                    select(results.c.job_id, func.count()).group_by(results.c.job_id)
                ).all()
            )
        for job_id, state, owner, attempts in rows:
            m = self.model[job_id]
            assert (state, attempts) == (m.state, m.attempts)
            assert owner == (m.owner if state == "running" else None)
            assert per_job.get(job_id, 0) == (1 if state == "done" else 0)


QueueMachine.TestCase.settings = settings(max_examples=250, stateful_step_count=30, deadline=None)
test_queue_state_machine = QueueMachine.TestCase
