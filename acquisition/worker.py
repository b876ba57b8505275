"""Analysis workers: separate processes that claim jobs, analyse and store the results.

A job's effects — result rows, flags and the alert rows the rules make — commit in one
transaction together with the job's ``done``, so a retry never stores an analysis twice.
Reports (matplotlib, slow) are written after that commit: a consumer, not the capture.
Bad input (unreadable export, wrong layout) is not retried: the job is ``dead``, the file
goes to quarantine with a one-line reason, and an alert names it.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select, update

from acquisition.capture import quarantine
from acquisition.formats import read_export
from acquisition.pipeline import AnalysedPlate, analyze_export, references
from acquisition.queue import Job, LeaseLost, claim, complete, enqueue, fail
from acquisition.store import (
    RESULT_FORMAT,
    Store,
    captures,
    dumps,
    flags,
    insert_row,
    open_store,
    results,
    utc_now,
)
from analysis.report import write_report
from config.schema import Settings
from errors import PlatewatchError

log = logging.getLogger(__name__)

# Hooks run inside the job's transaction (DESIGN.md §1: service.py hands them over).
ResultHook = Callable[[Connection, dict[str, Any], list[tuple[int, AnalysedPlate]], Settings], None]
DeadHook = Callable[[Connection, dict[str, Any], str, Settings], None]


@dataclass
class Hooks:
    on_result: ResultHook | None = None
    on_dead: DeadHook | None = None


def capture_row(store: Store, capture_id: int) -> dict[str, Any]:
    with store.engine.connect() as conn:
        row = conn.execute(select(captures).where(captures.c.id == capture_id)).mappings().one()
    return dict(row)


def layout_for(settings: Settings, instrument: str) -> Path | None:
    for watch in settings.watch:
        if watch.instrument == instrument and watch.layout is not None:
            return watch.layout
    return None


def _analyse(
    capture: dict[str, Any], settings: Settings, table: dict[str, Any]
) -> list[AnalysedPlate]:
    source = Path(capture["source_path"])
    data = Path(capture["archive_path"]).read_bytes()
    export = read_export(source, data)
    return analyze_export(
        source,
        export,
        settings,
        layout=layout_for(settings, capture["instrument"]),
        layouts_dir=settings.service.state_dir / "layouts",
        reference_table=table,
    )


def process_job(
    store: Store, job: Job, settings: Settings, hooks: Hooks, reference_table: dict[str, Any]
) -> str:
    """Run one job to its end state: 'done', 'queued' (retry later) or 'dead'."""
    capture = capture_row(store, job.capture_id)
    if job.purpose == "report":
        return _report_job(store, job, settings, capture, reference_table)
    source = Path(capture["source_path"])
    try:
        analysed = _analyse(capture, settings, reference_table)
    except PlatewatchError as exc:
        return _dead(store, job, settings, hooks, capture, str(exc))
    except OSError as exc:
        return fail(
            store,
            job,
            f"{capture['archive_path']}: {exc.strerror}",
            max_attempts=settings.service.max_attempts,
        )
    except Exception as exc:  # a bug: retry with backoff, then give up loudly
        log.exception("analysis of capture %d failed", job.capture_id)
        reason = f"{source}: internal error during analysis ({type(exc).__name__}: {exc})"
        if job.attempts >= settings.service.max_attempts:
            return _dead(store, job, settings, hooks, capture, reason)
        return fail(store, job, reason, max_attempts=settings.service.max_attempts)

    stored: list[tuple[int, AnalysedPlate]] = []

    def effects(conn: Connection) -> None:
        for item in analysed:
            body = {
                "format": RESULT_FORMAT,
                **item.result.to_dict(str(source)),
                "layout": item.layout_source,
            }
            result_id = insert_row(
                conn,
                results,
                capture_id=job.capture_id,
                job_id=job.id,
                plate=item.plate.plate_id,
                kind="plate",
                verdict=item.result.verdict,
                analyzed_at=utc_now(),
                body=dumps(body),
            )
            for flag in item.result.flags:
                conn.execute(
                    flags.insert().values(
                        result_id=result_id,
                        code=flag.code,
                        severity=flag.severity,
                        message=flag.message,
                        wells=dumps(flag.wells),
                    )
                )
            stored.append((result_id, item))
        if hooks.on_result is not None:
            hooks.on_result(conn, capture, stored, settings)
        if settings.service.reports:
            enqueue(conn, job.capture_id, "report")

    complete(store, job, effects)
    return "done"


def _report_job(
    store: Store, job: Job, settings: Settings, capture: dict[str, Any], table: dict[str, Any]
) -> str:
    """Render the PNG + HTML report of a capture's newest results (re-running its analysis)."""
    try:
        analysed = _analyse(capture, settings, table)
        with store.engine.connect() as conn:
            newest_job = conn.execute(
                select(results.c.job_id)
                .where(results.c.capture_id == job.capture_id)
                .order_by(results.c.id.desc())
                .limit(1)
            ).scalar()
        paths: dict[str, dict[str, str]] = {}
        for item in analysed:
            name = f"{job.capture_id:06d}_{item.path.stem}"
            if len(analysed) > 1:
                name += f"_{item.plate.plate_id}"
            paths[item.plate.plate_id] = write_report(
                item.result, settings.service.state_dir / "reports", name, source=str(item.path)
            )
    except Exception as exc:  # a consumer: retried with backoff, never touches the result
        log.exception("report for capture %d failed", job.capture_id)
        return fail(store, job, f"report: {exc}", max_attempts=settings.service.max_attempts)

    def effects(conn: Connection) -> None:
        for plate, files in paths.items():
            conn.execute(
                update(results)
                .where(results.c.job_id == newest_job, results.c.plate == plate)
                .values(report=dumps(files))
            )

    complete(store, job, effects)
    return "done"


def _dead(
    store: Store, job: Job, settings: Settings, hooks: Hooks, capture: dict[str, Any], reason: str
) -> str:
    def on_dead(conn: Connection) -> None:
        quarantine(
            settings.service.state_dir,
            job.capture_id,
            Path(capture["archive_path"]),
            capture["file_name"],
            reason,
        )
        if hooks.on_dead is not None:
            hooks.on_dead(conn, capture, reason, settings)

    log.error("capture %d quarantined: %s", job.capture_id, reason)
    return fail(
        store,
        job,
        reason,
        max_attempts=settings.service.max_attempts,
        retryable=False,
        on_dead=on_dead,
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
    """Entry point of a worker process (spawned by the daemon, whose pid is ``parent``)."""
    _die_with_parent()
    parent = parent if parent is not None else os.getppid()
    if os.getppid() != parent:
        return  # the daemon died while this worker was starting
    logging.basicConfig(
        level=log_level, format=f"%(asctime)s {owner} %(levelname)s %(name)s: %(message)s"
    )
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the daemon decides when workers stop
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    settings = Settings.model_validate_json(settings_json)
    store = open_store(settings.store.url, create=False)
    table = references(settings)
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
                state = process_job(store, job, settings, hooks, table)
                log.info("job %d (capture %d): %s", job.id, job.capture_id, state)
                alert_bell.set()
            except LeaseLost:
                log.warning("job %d: lease lost to another worker; result discarded", job.id)
            except Exception:
                log.exception("job %d failed outside the analysis", job.id)
    finally:
        store.close()
