"""Analysis workers: separate processes that claim jobs, run their handler, store the effects.

One handler per job purpose (``HANDLERS``); the analysis itself is chosen by the capture's
kind (``acquisition.kinds``), so a new kind needs no change here. A job's effects — result
rows, flags and the alert rows the rules make — commit in one transaction together with
the job's ``done``, so a retry never stores an analysis twice. Reports are their own
low-priority jobs, rendered from the stored result (never a second analysis). Bad input
(unreadable export, wrong layout) is not retried: the job is ``dead``, the file goes to
quarantine with a one-line reason, and an alert names it.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select, update

from acquisition.capture import Capture, load_capture, quarantine
from acquisition.kinds import Finding, JobContext, analyser_for
from acquisition.queue import Job, LeaseLost, Purpose, claim, complete, enqueue, fail
from acquisition.store import RESULT_FORMAT, dumps, flags, insert_row, open_store, results, utc_now
from config.schema import Settings
from errors import PlatewatchError

log = logging.getLogger(__name__)

# Hooks run inside the job's transaction (DESIGN.md §1: the daemon hands them over).
ResultHook = Callable[[Connection, Capture, list[tuple[int, Finding]], JobContext], None]
DeadHook = Callable[[Connection, Capture, str, JobContext], None]


@dataclass
class Hooks:
    on_result: ResultHook | None = None
    on_dead: DeadHook | None = None


Handler = Callable[[JobContext, Job, Capture, Hooks], str]


def process_job(ctx: JobContext, job: Job, hooks: Hooks) -> str:
    """Run one job to its end state: 'done', 'queued' (retry later) or 'dead'."""
    capture = load_capture(ctx.store, job.capture_id)
    try:
        handler = HANDLERS[Purpose(job.purpose)]
    except ValueError:
        reason = f"{capture.source_path}: job purpose {job.purpose!r} is unknown to this platewatch"
        return _dead(ctx, job, hooks, capture, reason)
    return handler(ctx, job, capture, hooks)


def _analyse_job(ctx: JobContext, job: Job, capture: Capture, hooks: Hooks) -> str:
    settings = ctx.settings
    try:
        findings = analyser_for(capture.kind).analyse(capture, ctx)
    except PlatewatchError as exc:
        return _dead(ctx, job, hooks, capture, str(exc))
    except OSError as exc:
        reason = f"{capture.archive_path}: {exc.strerror or exc}"
        return fail(ctx.store, job, reason, max_attempts=settings.service.max_attempts)
    except Exception as exc:  # a bug: retried with backoff; the queue decides when it is dead
        log.exception("analysis of capture %d failed", job.capture_id)
        reason = (
            f"{capture.source_path}: internal error during analysis ({type(exc).__name__}: {exc})"
        )
        return fail(
            ctx.store,
            job,
            reason,
            max_attempts=settings.service.max_attempts,
            on_dead=_quarantine_effect(ctx, hooks, capture, reason),
        )

    def effects(conn: Connection) -> None:
        stored: list[tuple[int, Finding]] = []
        for finding in findings:
            result_id = insert_row(
                conn,
                results,
                capture_id=job.capture_id,
                job_id=job.id,
                plate=finding.subject,
                kind=finding.kind,
                verdict=finding.verdict,
                analyzed_at=utc_now(ctx.clock),
                body=dumps({"format": RESULT_FORMAT, **finding.body}),
            )
            for flag in finding.flags:
                conn.execute(
                    flags.insert().values(
                        result_id=result_id,
                        code=flag.code,
                        severity=flag.severity,
                        message=flag.message,
                        wells=dumps(flag.wells),
                    )
                )
            stored.append((result_id, finding))
        if hooks.on_result is not None:
            hooks.on_result(conn, capture, stored, ctx)
        if settings.service.reports:
            enqueue(conn, job.capture_id, Purpose.REPORT, clock=ctx.clock)

    complete(ctx.store, job, effects)
    return "done"


def _report_job(ctx: JobContext, job: Job, capture: Capture, hooks: Hooks) -> str:
    """Render the reports of a capture's newest stored results, from their stored bodies."""
    import json

    try:
        with ctx.store.engine.connect() as conn:
            newest_job = conn.execute(
                select(results.c.job_id)
                .where(results.c.capture_id == job.capture_id)
                .order_by(results.c.id.desc())
                .limit(1)
            ).scalar()
            rows = conn.execute(
                select(results.c.id, results.c.plate, results.c.body).where(
                    results.c.job_id == newest_job
                )
            ).all()
        analyser = analyser_for(capture.kind)
        paths: dict[int, dict[str, str]] = {}
        for result_id, subject, body in rows:
            name = f"{job.capture_id:06d}_{capture.source.stem}"
            if len(rows) > 1:
                name += f"_{subject}_{result_id}"
            paths[int(result_id)] = analyser.render(
                capture, json.loads(body), ctx.settings.service.state_dir / "reports", name
            )
    except Exception as exc:  # a consumer: retried with backoff, never touches the result
        log.exception("report for capture %d failed", job.capture_id)
        return fail(
            ctx.store, job, f"report: {exc}", max_attempts=ctx.settings.service.max_attempts
        )

    def effects(conn: Connection) -> None:
        for result_id, files in paths.items():
            conn.execute(
                update(results).where(results.c.id == result_id).values(report=dumps(files))
            )

    complete(ctx.store, job, effects)
    return "done"


def _reanalyse_job(ctx: JobContext, job: Job, capture: Capture, hooks: Hooks) -> str:
    """An archived capture analysed with the layout the job names (uploaded or picked)."""
    layout = job.params.get("layout")
    if not isinstance(layout, str) or not layout:
        reason = f"{capture.source_path}: re-analysis job without a layout"
        return fail(ctx.store, job, reason, max_attempts=1, retryable=False)
    return _analyse_job(replace(ctx, layout_override=Path(layout)), job, capture, hooks)


HANDLERS: dict[Purpose, Handler] = {
    Purpose.ANALYZE: _analyse_job,
    Purpose.REPROCESS: _analyse_job,
    Purpose.REANALYSE: _reanalyse_job,
    Purpose.REPORT: _report_job,
}


def _quarantine_effect(
    ctx: JobContext, hooks: Hooks, capture: Capture, reason: str
) -> Callable[[Connection], None]:
    def on_dead(conn: Connection) -> None:
        quarantine(
            ctx.settings.service.state_dir, capture.id, capture.archive, capture.file_name, reason
        )
        if hooks.on_dead is not None:
            hooks.on_dead(conn, capture, reason, ctx)

    return on_dead


def _dead(ctx: JobContext, job: Job, hooks: Hooks, capture: Capture, reason: str) -> str:
    log.error("capture %d quarantined: %s", job.capture_id, reason)
    return fail(
        ctx.store,
        job,
        reason,
        max_attempts=ctx.settings.service.max_attempts,
        retryable=False,
        on_dead=_quarantine_effect(ctx, hooks, capture, reason),
    )


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this worker when the daemon dies (SIGKILL included).

    Safe by design: a worker killed mid-job leaves a lease that returns to the queue.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the parent-pid check below still applies
        pass


def worker_main(
    settings_json: str,
    owner: str,
    stop: Any,
    doorbell: Any,
    alert_bell: Any,
    hooks: Hooks,
    log_level: int = logging.INFO,
    parent: int | None = None,
) -> None:
    """Entry point of a worker process (spawned by the daemon, whose pid is ``parent``).

    ``settings_json`` is one generation of the daemon's settings: every worker of a
    generation runs exactly these, and a reload replaces every worker.
    """
    _die_with_parent()
    parent = parent if parent is not None else os.getppid()
    if os.getppid() != parent:
        return  # the daemon died while this worker was starting
    logging.basicConfig(
        level=log_level, format=f"%(asctime)s {owner} %(levelname)s %(name)s: %(message)s"
    )
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the daemon decides when workers stop
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    from acquisition.pipeline import references

    settings = Settings.model_validate_json(settings_json)
    store = open_store(settings.store.url, create=False)
    ctx = JobContext(store=store, settings=settings, references=references(settings))
    try:
        while not stop.is_set() and os.getppid() == parent:
            try:
                job = claim(store, owner, settings.service.lease_seconds)
            except Exception:
                log.exception("claim failed; retrying")
                time.sleep(1.0)
                continue
            if job is None:
                doorbell.acquire(timeout=0.5)
                continue
            try:
                state = process_job(ctx, job, hooks)
                log.info("job %d (capture %d): %s", job.id, job.capture_id, state)
                alert_bell.set()
            except LeaseLost:
                log.warning("job %d: lease lost to another worker; result discarded", job.id)
            except Exception:
                log.exception("job %d failed outside the analysis", job.id)
    finally:
        store.close()
