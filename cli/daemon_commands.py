"""`run`, `status`, `results`, `reprocess`, `demo`: the daemon and what it stored."""

from __future__ import annotations

import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from cli.common import CONFIG_OPTION, emit, fail, load_settings, open_store_or_fail
from errors import PlatewatchError


@click.command()
@CONFIG_OPTION
def run(config: Path | None) -> None:
    """Run the daemon in the foreground (systemd runs this).

    Watches the [[watch]] folders, captures every complete export into the archive,
    analyses it in worker processes, stores the result and sends alerts. SIGTERM drains
    in-flight jobs and exits 0; SIGHUP reloads the configuration.
    """
    from daemon import run_daemon
    from monitoring.web.security import access_for

    settings = load_settings(config)  # a bad config is one line and exit 2, before anything starts
    if settings.web.enabled:
        try:
            access_for(settings.web.bind, settings.web.token, read_only=False)
        except PlatewatchError as exc:
            fail(str(exc))
    try:
        sys.exit(run_daemon(config))
    except PlatewatchError as exc:
        fail(str(exc))


@click.command()
@CONFIG_OPTION
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def status(config: Path | None, as_json: bool) -> None:
    """Health of a platewatch installation: the live daemon, queue depth, last capture and error."""
    from acquisition.daemon_state import load_state
    from acquisition.queue import counts
    from acquisition.store import last_capture, last_error

    settings, store = open_store_or_fail(config)
    try:
        state, running = load_state(settings.service.state_dir, time.time())
        record: dict[str, Any] = {
            "store": store.engine.url.render_as_string(hide_password=True),
            "watch": [
                {
                    "path": str(w.path),
                    "instrument": w.instrument,
                    "polling": w.polling,
                    "exists": w.path.is_dir(),
                }
                for w in settings.watch
            ],
            "queue": counts(store).by_state,
            "last_capture": last_capture(store),
            "last_error": last_error(store),
            "daemon": (asdict(state) | {"running": running}) if state else None,
        }
    finally:
        store.close()
    if as_json:
        emit(record)
        return
    _print_status(record)


def _print_status(record: dict[str, Any]) -> None:
    daemon = record["daemon"]
    if daemon is None:
        click.echo("daemon: not running here (no daemon.json in the state directory)")
    elif not daemon["running"]:
        seen = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(daemon["updated_at"]))
        click.echo(f"daemon: NOT RUNNING (last seen as pid {daemon['pid']} at {seen})")
    else:
        health = "healthy" if daemon["healthy"] else "UNHEALTHY: " + "; ".join(daemon["problems"])
        click.echo(
            f"daemon: pid {daemon['pid']} running, {health}, settings generation {daemon['generation']}"
        )
        for w in daemon["watchers"]:
            state = "alive" if w["alive"] else "DEAD"
            click.echo(
                f"  watcher {w['path']} ({w['instrument']}): {state}, restarts {w['restarts']}"
            )
        for r in daemon["readers"]:
            error = f", last error: {r['last_error']}" if r["last_error"] else ""
            click.echo(
                f"  reader {r['name']} ({r['protocol']} on {r['port']}): {r['state']}{error}"
            )
        workers = daemon["workers"]
        alive = sum(w["alive"] for w in workers)
        click.echo(
            f"  workers alive {alive}/{len(workers)}, files pending {daemon['pending_files']}"
        )
    click.echo(f"store: {record['store']}")
    for w in record["watch"]:
        click.echo(f"watch: {w['path']} ({w['instrument']}){'' if w['exists'] else '  MISSING'}")
    click.echo(
        "queue: " + (", ".join(f"{k} {v}" for k, v in sorted(record["queue"].items())) or "empty")
    )
    cap = record["last_capture"]
    click.echo(
        f"last capture: {cap['captured_at']} {cap['source_path']}" if cap else "last capture: none"
    )
    err = record["last_error"]
    click.echo(f"last error: {err['last_error']}" if err else "last error: none")


@click.command()
@CONFIG_OPTION
@click.option(
    "--limit",
    default=50,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="How many results, newest first.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per result (JSONL).")
def results(config: Path | None, limit: int, as_json: bool) -> None:
    """Stored results, newest first."""
    from acquisition.store import list_results

    _, store = open_store_or_fail(config)
    try:
        rows = list_results(store, limit)
    finally:
        store.close()
    for row in rows:
        if as_json:
            emit(row)
        else:
            codes = ", ".join(f["code"] for f in row["flags"] if f["severity"] != "info") or "-"
            click.echo(
                f"{row['analyzed_at']}  {row['verdict'].upper():4s}  {row['instrument']}  {row['path']}  {codes}"
            )


@click.command()
@CONFIG_OPTION
@click.option(
    "--since", type=click.DateTime(), help="Only captures made on or after this date (UTC)."
)
@click.option(
    "--workers",
    type=click.IntRange(min=1, max=64),
    help="Analysis processes (default: one per core).",
)
@click.option(
    "--reports/--no-reports",
    default=True,
    show_default=True,
    help="Re-render each capture's PNG + HTML report (most of the time of a re-analysis).",
)
def reprocess(config: Path | None, since: Any, workers: int | None, reports: bool) -> None:
    """Re-analyse archived captures (after a threshold or layout change), with a progress bar.

    Adds a job per capture and runs them here on every core (--workers); a running daemon
    shares the work and picks up any left over. Each capture gets a new result; the old
    ones stay in the store.
    """
    from rich.progress import Progress

    from acquisition.reprocess import drain, queue_reprocess
    from acquisition.worker import Hooks
    from monitoring.rules import alert_for_quarantine, alerts_for_result

    settings, store = open_store_or_fail(config)
    if not reports:
        service = settings.service.model_copy(update={"reports": False})
        settings = settings.model_copy(update={"service": service})
    try:
        job_ids = queue_reprocess(store, since)
        hooks = Hooks(on_result=alerts_for_result, on_dead=alert_for_quarantine)
        with Progress(transient=False, disable=not sys.stderr.isatty()) as progress:
            task = progress.add_task("re-analysing", total=len(job_ids))
            done = drain(
                store,
                settings,
                job_ids,
                hooks,
                workers=workers,
                progress=lambda n: progress.update(task, completed=n),
            )
    finally:
        store.close()
    click.echo(f"re-analysed {done} of {len(job_ids)} capture(s)")


@click.command()
@click.option(
    "--state",
    "state_dir",
    type=click.Path(path_type=Path),
    default=Path("var"),
    show_default=True,
    help="State directory (database, inbox, archive, reports, alerts.jsonl).",
)
@click.option(
    "--duration", type=float, default=0.0, help="Stop after this many seconds (0: until Ctrl-C)."
)
@click.option(
    "--bind", default="127.0.0.1:8080", show_default=True, help="Where the dashboard listens."
)
def demo(state_dir: Path, duration: float, bind: str) -> None:
    """Run the real daemon with simulated instruments feeding it.

    A simulated vendor PC writes Gen5 plates (one fails: inactive asparaginase and
    saturated wells), an unreadable export and an Annexin V/PI FCS experiment into the
    inboxes; a simulated SpectraMax on a pseudo-terminal is read by the scheduler through
    an accelerated timecourse (a read every 4 s, the plate ageing an hour per second).
    Within a minute you see captures, verdicts, the timecourse moving, alerts on the
    console and in <state>/alerts.jsonl, reports in <state>/reports, and the dashboard.
    Ctrl-C stops it cleanly.
    """
    import logging
    import threading

    from daemon import Daemon
    from monitoring.demo import (
        demo_settings,
        plan_demo_timecourse,
        printer,
        start_simulated_reader,
        vendor_pc,
    )

    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = demo_settings(state_dir, bind)
    plates, cyto = settings.watch[0].path, settings.watch[1].path
    for inbox in (plates, cyto):
        inbox.mkdir(parents=True, exist_ok=True)
    fake = start_simulated_reader(settings)

    def announce(url: str) -> None:
        click.echo(
            f"platewatch demo: dashboard at {url}\n  inboxes: {plates}  {cyto}\n"
            f"  reports: {settings.service.state_dir / 'reports'}   alerts: "
            f"{settings.service.state_dir / 'alerts.jsonl'}   Ctrl-C stops"
        )

    daemon = Daemon(settings, on_web_url=announce)
    stop = threading.Event()
    threads = [
        threading.Thread(target=vendor_pc, args=((plates, cyto), stop), daemon=True),
        threading.Thread(target=printer, args=(settings, stop, click.echo), daemon=True),
    ]
    timer = threading.Timer(duration, daemon.stop) if duration > 0 else None
    try:
        tc_id = plan_demo_timecourse(settings)
        click.echo(
            f"  timecourse {tc_id}: {READ_EVERY} on the simulated SpectraMax ({settings.reader[0].port})"
        )
        for t in threads:
            t.start()
        if timer is not None:
            timer.daemon = True
            timer.start()
        code = daemon.run()
    finally:
        stop.set()
        if timer is not None:
            timer.cancel()
        for t in threads:
            t.join(timeout=5)
        fake.stop()  # type: ignore[attr-defined]
    sys.exit(code)


READ_EVERY = "a read every 4 s for 72 s"
