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
from acquisition.queue import Job, LeaseLost, claim, complete, fail
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


def process_job(
    store: Store, job: Job, settings: Settings, hooks: Hooks, reference_table: dict[str, Any]
) -> str:
    """Run one job to its end state: 'done', 'queued' (retry later) or 'dead'."""
    capture = capture_row(store, job.capture_id)
    source = Path(capture["source_path"])
    archived = Path(capture["archive_path"])
    try:
        data = archived.read_bytes()
        export = read_export(source, data)
        analysed = analyze_export(
            source,
            export,
            settings,
            layout=layout_for(settings, capture["instrument"]),
            layouts_dir=settings.service.state_dir / "layouts",
            reference_table=reference_table,
        )
    except PlatewatchError as exc:
        return _dead(store, job, settings, hooks, capture, str(exc))
    except OSError as exc:
        return fail(
            store, job, f"{archived}: {exc.strerror}", max_attempts=settings.service.max_attempts
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

    complete(store, job, effects)
    _write_reports(store, settings, job.capture_id, stored)
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


def _write_reports(
    store: Store, settings: Settings, capture_id: int, stored: list[tuple[int, AnalysedPlate]]
) -> None:
    for result_id, item in stored:
        try:
            name = f"{capture_id:06d}_{item.path.stem}"
            paths = write_report(
                item.result, settings.service.state_dir / "reports", name, source=str(item.path)
            )
            item.result.report = paths
            with store.begin() as conn:
                conn.execute(
                    update(results).where(results.c.id == result_id).values(report=dumps(paths))
                )
        except Exception:  # a report is a consumer: log it, never lose the result
            log.exception("report for result %d failed", result_id)


def worker_main(
    settings_json: str,
    owner: str,
    stop: Any,
    doorbell: Any,
    alert_bell: Any,
    hooks: Hooks,
    log_level: int = logging.INFO,
) -> None:
    """Entry point of a worker process (spawned by the daemon)."""
    logging.basicConfig(
        level=log_level, format=f"%(asctime)s {owner} %(levelname)s %(name)s: %(message)s"
    )
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the daemon decides when workers stop
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    settings = Settings.model_validate_json(settings_json)
    store = open_store(settings.store.url, create=False)
    table = references(settings)
    parent = os.getppid()
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
