"""Durable leased jobs in the store (DESIGN.md §6).

A job is ``queued`` → ``running`` (leased to one worker until ``lease_expires_at``) →
``done`` or, after ``max_attempts`` failures with exponential backoff, ``dead``. A lease
that expires (its worker died) puts the job back in play. Completion is guarded: the
worker's effects commit only if it still holds the lease, in the same transaction as the
state change, so an analysis is never stored twice.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, case, func, or_, select, update

from acquisition.clock import SYSTEM_CLOCK, Clock, backoff
from acquisition.store import Store, insert_row, jobs


class Purpose(enum.StrEnum):
    """What a job is for; the worker has one handler per purpose (``acquisition.worker``)."""

    ANALYZE = "analyze"  # a new capture
    REPROCESS = "reprocess"  # an archived capture again (after a threshold or layout change)
    REPORT = "report"  # render the report of a stored result (a consumer: lowest priority)
    REANALYSE = "reanalyse"  # an archived capture with another layout (params["layout"])


LOW_PRIORITY = frozenset({Purpose.REPORT})


@dataclass(frozen=True)
class Job:
    id: int
    capture_id: int
    attempts: int
    purpose: str  # a Purpose value; an unknown one (a newer daemon's) is dead on arrival
    owner: str
    params: dict[str, Any] = field(default_factory=dict)


class LeaseLost(Exception):
    """The job's lease expired and another worker owns it now: drop this attempt."""


def enqueue(
    conn: Connection,
    capture_id: int,
    purpose: Purpose = Purpose.ANALYZE,
    *,
    at: float | None = None,
    clock: Clock = SYSTEM_CLOCK,
    params: dict[str, Any] | None = None,
) -> int:
    """Add a job inside the caller's transaction (the capture's, so both commit together)."""
    t = clock.now() if at is None else at
    return insert_row(
        conn,
        jobs,
        capture_id=capture_id,
        purpose=purpose,
        params=json.dumps(params) if params else None,
        state="queued",
        attempts=0,
        next_attempt_at=t,
        created_at=t,
        updated_at=t,
    )


def _claimable(t: float):  # type: ignore[no-untyped-def]
    return or_(
        and_(jobs.c.state == "queued", jobs.c.next_attempt_at <= t),
        and_(jobs.c.state == "running", jobs.c.lease_expires_at < t),
    )


def claim(
    store: Store,
    owner: str,
    lease_seconds: float,
    *,
    capture_id: int | None = None,
    purpose: Purpose | None = None,
) -> Job | None:
    """Lease the oldest claimable job to ``owner`` (of one capture/purpose if given)."""
    t = store.now()
    # Analyses before reports (a report is a consumer: it may lag, never block a capture).
    later = case((jobs.c.purpose.in_([str(p) for p in LOW_PRIORITY]), 1), else_=0)
    where = [_claimable(t)]
    if capture_id is not None:
        where.append(jobs.c.capture_id == capture_id)
    if purpose is not None:
        where.append(jobs.c.purpose == str(purpose))
    pick = select(jobs.c.id).where(*where).order_by(later, jobs.c.id).limit(1)
    if not store.is_sqlite:
        pick = pick.with_for_update(skip_locked=True)
    stmt = (
        update(jobs)
        .where(jobs.c.id == pick.scalar_subquery())
        .values(
            state="running",
            lease_owner=owner,
            lease_expires_at=t + lease_seconds,
            attempts=jobs.c.attempts + 1,
            updated_at=t,
        )
        .returning(jobs.c.id, jobs.c.capture_id, jobs.c.attempts, jobs.c.purpose, jobs.c.params)
    )
    with store.begin() as conn:
        row = conn.execute(stmt).first()
    if row is None:
        return None
    return Job(
        id=int(row[0]),
        capture_id=int(row[1]),
        attempts=int(row[2]),
        purpose=str(row[3]),
        owner=owner,
        params=_params(row[4]),
    )


def _params(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {"unreadable": text[:200]}
    return value if isinstance(value, dict) else {"unreadable": text[:200]}


def complete(store: Store, job: Job, effects: Callable[[Connection], None]) -> None:
    """Mark ``job`` done and run ``effects`` (store result, flags, alerts) in one transaction.

    Raises LeaseLost (and commits nothing) when another worker has taken the job over.
    """
    with store.begin() as conn:
        _finish(conn, job, state="done", error=None, t=store.now())
        effects(conn)


def fail(
    store: Store,
    job: Job,
    error: str,
    *,
    max_attempts: int,
    retryable: bool = True,
    on_dead: Callable[[Connection], None] | None = None,
) -> str:
    """Record a failed attempt: back to the queue with backoff, or ``dead`` (then ``on_dead``)."""
    dead = not retryable or job.attempts >= max_attempts
    t = store.now()
    with store.begin() as conn:
        if dead:
            _finish(conn, job, state="dead", error=error, t=t)
            if on_dead is not None:
                on_dead(conn)
        else:
            retry_at = t + backoff(job.attempts)
            _finish(conn, job, state="queued", error=error, t=t, next_attempt_at=retry_at)
    return "dead" if dead else "queued"


def _finish(
    conn: Connection,
    job: Job,
    *,
    state: str,
    error: str | None,
    t: float,
    next_attempt_at: float | None = None,
) -> None:
    values: dict[str, object] = {
        "state": state,
        "last_error": error,
        "updated_at": t,
        "lease_owner": None,
        "lease_expires_at": None,
    }
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    updated = conn.execute(
        update(jobs)
        .where(
            jobs.c.id == job.id,
            jobs.c.state == "running",
            jobs.c.lease_owner == job.owner,
            jobs.c.attempts == job.attempts,  # the lease token: owner + attempt number
        )
        .values(**values)
    )
    if updated.rowcount != 1:
        raise LeaseLost(f"job {job.id}: lease lost")


def release_leases(store: Store, owner_prefix: str) -> int:
    """Return this instance's leftover leases (a previous run that was killed) to the queue.

    The interrupted attempt is not the file's fault, so it is not counted against it.
    """
    t = store.now()
    with store.begin() as conn:
        result = conn.execute(
            update(jobs)
            .where(jobs.c.state == "running", jobs.c.lease_owner.like(f"{owner_prefix}%"))
            .values(
                state="queued",
                lease_owner=None,
                lease_expires_at=None,
                next_attempt_at=t,
                updated_at=t,
                attempts=case((jobs.c.attempts > 0, jobs.c.attempts - 1), else_=0),
            )
        )
    return int(result.rowcount)


@dataclass(frozen=True)
class QueueCounts:
    """Jobs by state, and how many queued ones are due now (for health and status)."""

    by_state: dict[str, int]
    due: int

    @property
    def queued(self) -> int:
        return self.by_state.get("queued", 0)

    @property
    def running(self) -> int:
        return self.by_state.get("running", 0)


def counts(store: Store) -> QueueCounts:
    """The queue's own counts: what ``status``, the health check and the dashboard show."""
    t = store.now()
    with store.engine.connect() as conn:
        rows = conn.execute(select(jobs.c.state, func.count()).group_by(jobs.c.state)).all()
        due = conn.execute(
            select(func.count()).where(jobs.c.state == "queued", jobs.c.next_attempt_at <= t)
        ).scalar_one()
    return QueueCounts({str(state): int(n) for state, n in rows}, int(due))
