"""Re-analysing archived captures (after a threshold or layout change), on every core.

``queue_reprocess`` adds one 'reprocess' job per capture; ``drain`` runs the queue dry
here, in worker processes that claim jobs exactly as the daemon's workers do (leases,
guarded completion), so a daemon running at the same time simply shares the work and a
reprocess killed half-way leaves nothing half-stored: the leases expire and the jobs
return to the queue.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from sqlalchemy import func, select

from acquisition.kinds import JobContext
from acquisition.queue import LeaseLost, Purpose, claim, enqueue
from acquisition.store import Store, captures, jobs, open_store
from acquisition.worker import Hooks, process_job
from config.schema import Settings

INLINE_BELOW = 8  # fewer jobs than this: one process, whatever was asked
AUTO_INLINE_BELOW = 60  # with the default worker count: about the workers' start-up time
ENDED = ("done", "dead")


def queue_reprocess(store: Store, since: datetime | None = None) -> list[int]:
    """One 'reprocess' job per capture made on or after ``since``; returns the job ids."""
    query = select(captures.c.id).order_by(captures.c.id)
    if since is not None:
        stamp = (since if since.tzinfo else since.replace(tzinfo=UTC)).isoformat()
        query = query.where(captures.c.captured_at >= stamp)
    with store.begin() as conn:
        ids = [int(i) for i in conn.execute(query).scalars()]
        return [
            enqueue(conn, capture_id, Purpose.REPROCESS, clock=store.clock) for capture_id in ids
        ]


def ended(store: Store, job_ids: Sequence[int]) -> int:
    """How many of ``job_ids`` reached an end state (done or dead)."""
    total = 0
    with store.begin() as conn:
        for start in range(0, len(job_ids), 500):  # stay under every backend's bind limit
            chunk = list(job_ids[start : start + 500])
            total += int(
                conn.execute(
                    select(func.count()).where(jobs.c.id.in_(chunk), jobs.c.state.in_(ENDED))
                ).scalar_one()
            )
    return total


def run_jobs(ctx: JobContext, owner: str, hooks: Hooks, on_job: Callable[[], None]) -> None:
    """Claim and run jobs until none is claimable now (a job waiting on backoff stays queued)."""
    while (job := claim(ctx.store, owner, ctx.settings.service.lease_seconds)) is not None:
        try:
            process_job(ctx, job, hooks)
        except LeaseLost:
            pass  # another worker (a daemon's, say) took it over; its result stands
        on_job()


def _drain_worker(settings_json: str, owner: str, hooks: Hooks) -> None:
    """Entry point of one reprocess worker process."""
    from acquisition.pipeline import references

    settings = Settings.model_validate_json(settings_json)
    store = open_store(settings.store.url, create=False)
    try:
        run_jobs(JobContext(store, settings, references(settings)), owner, hooks, lambda: None)
    finally:
        store.close()


def drain(
    store: Store,
    settings: Settings,
    job_ids: Sequence[int],
    hooks: Hooks,
    *,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Run the queue dry with ``workers`` processes (default: one per core); returns how many
    of ``job_ids`` ended. ``progress`` is called with that count as it grows."""
    report = progress or (lambda _n: None)
    count = workers if workers is not None else (os.cpu_count() or 1)
    owner = f"reprocess/{os.getpid()}"
    inline_below = INLINE_BELOW if workers is not None else AUTO_INLINE_BELOW
    if count <= 1 or len(job_ids) < inline_below:
        from acquisition.pipeline import references

        ctx = JobContext(store, settings, references(settings))
        run_jobs(ctx, owner, hooks, lambda: report(ended(store, job_ids)))
        return ended(store, job_ids)
    context = mp.get_context("spawn")  # like the daemon: no inherited locks or connections
    as_json = settings.model_dump_json()
    procs = [
        context.Process(
            target=_drain_worker, args=(as_json, f"{owner}.{n}", hooks), name=f"reprocess-{n}"
        )
        for n in range(min(count, len(job_ids)))
    ]
    for proc in procs:
        proc.start()
    try:
        while any(proc.is_alive() for proc in procs):
            report(ended(store, job_ids))
            for proc in procs:
                proc.join(timeout=0.2 / len(procs))
    finally:
        for proc in procs:
            if proc.is_alive():  # Ctrl-C or an error here: the leases return the jobs
                proc.terminate()
            proc.join()
    done = ended(store, job_ids)
    report(done)
    return done
