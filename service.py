"""The ``platewatch`` command. Thin: it parses options, composes the pieces, prints.

Exit codes: 0 ok, 1 a finding the user asked to fail on (``--fail-on``), 2 bad input or
usage. Errors are one line on stderr naming the file and the cause. ``--json`` prints one
JSON object per line, one per input (DESIGN.md §5.1).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import click
import pandas as pd

from analysis.model import jsonable
from errors import PlatewatchError

EXIT_FINDING = 1
EXIT_BAD_INPUT = 2
FAIL_LEVELS = ("warn", "fail")


def emit(obj: dict[str, Any]) -> None:
    click.echo(json.dumps(jsonable(obj), ensure_ascii=False, separators=(",", ":")))


def fail(message: str) -> NoReturn:
    click.echo(f"platewatch: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def _bad_input(path: Path, exc: PlatewatchError, as_json: bool) -> int:
    """One line on stderr (and a JSON error record); the exit status it calls for."""
    click.echo(f"platewatch: {exc}", err=True)
    if as_json:
        emit({"path": str(path), "error": exc.message})
    return EXIT_BAD_INPUT


def _load_settings(config: Path | None) -> Any:
    from config import load_config

    try:
        return load_config(config)
    except PlatewatchError as exc:
        fail(str(exc))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="platewatch")
def cli() -> None:
    """platewatch: capture plate-reader exports, analyse them, flag failed plates.

    Start with `platewatch analyze PLATE --layout LAYOUT --report out/`.
    """


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file (JSONL).")
def parse(files: tuple[Path, ...], as_json: bool) -> None:
    """Read plate-reader exports and show what was read.

    The format is found from the content, never the file name. Non-numeric wells keep
    their raw token (OVRFLW, MISSED, …) and a status.
    """
    from acquisition.capture import sha256_of
    from acquisition.formats import load_bytes, read_export

    status = 0
    for path in files:
        try:
            data = load_bytes(path)
            export = read_export(path, data)
        except PlatewatchError as exc:
            status = _bad_input(path, exc, as_json)
            continue
        record = {
            "path": str(path),
            "sha256": sha256_of(data),
            "format": export.format,
            "instrument": export.instrument,
            "plates": [
                {"plate": p.plate_id, "barcode": p.barcode, "reads": [r.to_dict() for r in p.reads]}
                for p in export.plates
            ],
            "metadata": export.metadata,
        }
        if as_json:
            emit(record)
            continue
        click.echo(f"{path}: {export.format}, {export.instrument.get('model') or 'unknown reader'}")
        for p in export.plates:
            for r in p.reads:
                bad = int((r.status != "ok").sum())
                when = f" t={r.time_s:g}s" if r.time_s is not None else ""
                click.echo(
                    f"  {p.plate_id}: {r.label or 'read'} {r.wavelength_nm or '?'} nm{when} "
                    f"{r.shape[0]}x{r.shape[1]}, {bad} well(s) not ok"
                )
    sys.exit(status)


@cli.command()
@click.argument("table", type=click.Path(path_type=Path))
@click.option("--dose", required=True, help="Column with the dose/concentration (0 = control).")
@click.option("--response", required=True, help="Column with the response.")
@click.option(
    "--group", "groups", multiple=True, help="Column(s) that split the table into curves."
)
@click.option(
    "--shared",
    default="",
    help="Fit the groups jointly, sharing these parameters (e.g. 'c,d' as drc's pmodels).",
)
@click.option("--config", type=click.Path(path_type=Path), help="Config file (thresholds).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per curve (JSONL).")
def fit(
    table: Path,
    dose: str,
    response: str,
    groups: tuple[str, ...],
    shared: str,
    config: Path | None,
    as_json: bool,
) -> None:
    """Fit LL.4 dose-response curves to a plain CSV/TSV table (drc's LL.4, exactly)."""
    from acquisition.pipeline import response_rules
    from analysis.doseresponse import fit_ll4
    from analysis.jointfit import fit_ll4_joint

    settings = _load_settings(config)
    rules = response_rules(settings)
    level = settings.analysis.confidence_level
    try:
        frame = pd.read_csv(table, sep=None, engine="python")
    except FileNotFoundError:
        fail(f"{table}: file not found")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        fail(f"{table}: not a readable table ({type(exc).__name__})")
    missing = [c for c in (dose, response, *groups) if c not in frame.columns]
    if missing:
        fail(f"{table}: no column {missing[0]!r} (columns: {', '.join(map(str, frame.columns))})")
    for col in (dose, response):
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    shared_params = tuple(p.strip() for p in shared.split(",") if p.strip())
    keys = list(groups)
    parts = list(frame.groupby(keys, sort=False)) if keys else [((), frame)]
    results: list[tuple[dict[str, Any], Any]] = []
    try:
        if shared_params and keys:
            label = frame[keys].astype(str).agg("|".join, axis=1)
            joint = fit_ll4_joint(
                frame[dose], frame[response], label, shared=shared_params, rules=rules, level=level
            )
            for key, _part in parts:
                k = key if isinstance(key, tuple) else (key,)
                results.append((dict(zip(keys, k, strict=True)), joint["|".join(map(str, k))]))
        else:
            for key, part in parts:
                k = key if isinstance(key, tuple) else (key,)
                results.append(
                    (
                        dict(zip(keys, k, strict=True)),
                        fit_ll4(part[dose], part[response], rules=rules, level=level),
                    )
                )
    except ValueError as exc:
        fail(f"{table}: {exc}")
    for group, result in results:
        record = {"group": group, **result.to_dict()}
        if as_json:
            emit(record)
        else:
            name = ", ".join(f"{k}={v}" for k, v in group.items()) or table.name
            ci = f" [{result.ic50_ci[0]:.4g}, {result.ic50_ci[1]:.4g}]" if result.ic50_ci else ""
            q = result.ic50_qualifier if result.ic50_qualifier != "=" else ""
            click.echo(
                f"{name}: IC50 {q}{result.ic50:.5g}{ci}  b={result.b:.4g} c={result.c:.4g} "
                f"d={result.d:.4g}  response={result.response}  p={result.no_effect_p:.3g}"
            )


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--layout", type=click.Path(path_type=Path), help="Plate layout (wellmap TOML or CSV)."
)
@click.option(
    "--report", "report_dir", type=click.Path(path_type=Path), help="Write PNG + HTML reports here."
)
@click.option(
    "--config", type=click.Path(path_type=Path), help="Config file (thresholds, wavelengths)."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per plate (JSONL).")
@click.option(
    "--fail-on",
    "fail_on",
    multiple=True,
    help="Exit 1 when a plate's verdict reaches 'warn' or 'fail', or when a flag code given here is raised.",
)
def analyze(
    files: tuple[Path, ...],
    layout: Path | None,
    report_dir: Path | None,
    config: Path | None,
    as_json: bool,
    fail_on: tuple[str, ...],
) -> None:
    """Analyse plates: blank correction, % of untreated, LL.4 fits, QC flags, a verdict.

    The layout is the file's sidecar `<stem>.layout.toml` if there is one, else --layout.
    """
    from acquisition.pipeline import analyze_file

    settings = _load_settings(config)
    status = 0
    found = False
    for path in files:
        try:
            analysed = analyze_file(path, settings, layout=layout, report_dir=report_dir)
        except PlatewatchError as exc:
            status = _bad_input(path, exc, as_json)
            continue
        for item in analysed:
            result = item.result
            record = result.to_dict(str(path))
            record["layout"] = item.layout_source
            if _fails(result.verdict, [f.code for f in result.flags], fail_on):
                found = True
            if as_json:
                emit(record)
                continue
            click.echo(f"{path} [{item.plate.plate_id}]: {result.verdict.upper()}")
            for curve in result.curves:
                f = curve.fit
                q = f.ic50_qualifier if f.ic50_qualifier != "=" else ""
                ci = f" (95 % CI {f.ic50_ci[0]:.3g}–{f.ic50_ci[1]:.3g})" if f.ic50_ci else ""
                ic50 = f"{q}{f.ic50:.3g}" if f.ic50 is not None else "n/a"
                click.echo(
                    f"  {curve.label}: IC50 {ic50} {curve.unit or ''}{ci}, response {f.response}"
                )
            for flag in result.flags:
                click.echo(f"  [{flag.severity}] {flag.code}: {flag.message}")
            if result.report:
                click.echo(f"  report: {result.report['html']}")
    if status:
        sys.exit(status)
    sys.exit(EXIT_FINDING if found else 0)


def _fails(verdict: str, codes: list[str], fail_on: tuple[str, ...]) -> bool:
    for item in fail_on:
        if item in FAIL_LEVELS:
            if verdict == "fail" or (item == "warn" and verdict == "warn"):
                return True
        elif item in codes:
            return True
    return False


CONFIG_OPTION = click.option(
    "--config",
    type=click.Path(path_type=Path),
    help="Config file (default: the embedded config/platewatch.toml).",
)


@cli.command()
@CONFIG_OPTION
def run(config: Path | None) -> None:
    """Run the daemon in the foreground (systemd runs this).

    Watches the [[watch]] folders, captures every complete export into the archive,
    analyses it in worker processes, stores the result and sends alerts. SIGTERM drains
    in-flight jobs and exits 0; SIGHUP reloads the configuration.
    """
    from daemon import run_daemon

    _load_settings(config)  # a bad config is one line and exit 2, before anything starts
    try:
        sys.exit(run_daemon(config))
    except PlatewatchError as exc:
        fail(str(exc))


def _open(config: Path | None) -> tuple[Any, Any]:
    from acquisition.store import open_store

    settings = _load_settings(config)
    try:
        return settings, open_store(settings.store.url)
    except PlatewatchError as exc:
        fail(str(exc))


@cli.command()
@CONFIG_OPTION
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def status(config: Path | None, as_json: bool) -> None:
    """Health of a platewatch installation: watch folders, queue depth, last capture and error."""
    from acquisition.store import last_capture, last_error, queue_depth

    settings, store = _open(config)
    try:
        record = {
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
            "queue": queue_depth(store),
            "last_capture": last_capture(store),
            "last_error": last_error(store),
            "daemon": _daemon_state(settings.service.state_dir),
        }
    finally:
        store.close()
    if as_json:
        emit(record)
        return
    daemon = record["daemon"]
    if daemon is None:
        click.echo("daemon: not running here (no daemon.json in the state directory)")
    elif not daemon["running"]:
        seen = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(daemon.get("updated_at", 0)))
        click.echo(f"daemon: NOT RUNNING (last seen as pid {daemon['pid']} at {seen})")
    else:
        health = (
            "healthy"
            if daemon.get("healthy")
            else "UNHEALTHY: " + "; ".join(daemon.get("problems", []))
        )
        click.echo(f"daemon: pid {daemon['pid']} running, {health}")
        for w in daemon.get("watchers", []):
            state = "alive" if w["alive"] else "DEAD"
            click.echo(
                f"  watcher {w['path']} ({w['instrument']}): {state}, restarts {w['restarts']}"
            )
        workers = daemon.get("workers", [])
        alive = sum(w["alive"] for w in workers)
        click.echo(
            f"  workers alive {alive}/{len(workers)}, files pending {daemon.get('pending_files')}"
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


def _daemon_state(state_dir: Path) -> dict[str, Any] | None:
    """The running daemon's published state, with ``running`` false when it is stale."""
    path = state_dir / "daemon.json"
    try:
        state: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    try:
        os.kill(int(state["pid"]), 0)
        alive = True
    except (OSError, KeyError, ValueError):
        alive = False
    state["running"] = alive and time.time() - float(state.get("updated_at", 0)) < 120
    return state


@cli.command()
@CONFIG_OPTION
@click.option("--limit", default=50, show_default=True, help="How many results, newest first.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per result (JSONL).")
def results(config: Path | None, limit: int, as_json: bool) -> None:
    """Stored results, newest first."""
    from acquisition.store import list_results

    _, store = _open(config)
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


@cli.command()
@CONFIG_OPTION
@click.option(
    "--since", type=click.DateTime(), help="Only captures made on or after this date (UTC)."
)
def reprocess(config: Path | None, since: Any) -> None:
    """Re-analyse archived captures (after a threshold or layout change), with a progress bar.

    Adds a job per capture and runs them here; a running daemon picks up any left over.
    """
    from rich.progress import Progress

    from acquisition.pipeline import references
    from acquisition.queue import claim
    from acquisition.reprocess import queue_reprocess
    from acquisition.worker import Hooks, process_job
    from monitoring.alerts import alert_for_quarantine, alerts_for_result

    settings, store = _open(config)
    done = 0
    try:
        job_ids = queue_reprocess(store, since)
        table = references(settings)
        hooks = Hooks(on_result=alerts_for_result, on_dead=alert_for_quarantine)
        owner = f"reprocess/{os.getpid()}"
        with Progress(transient=False) as progress:
            task = progress.add_task("re-analysing", total=len(job_ids))
            while done < len(job_ids):
                job = claim(store, owner, settings.service.lease_seconds)
                if job is None:
                    break
                process_job(store, job, settings, hooks, table)
                done += 1
                progress.advance(task)
    finally:
        store.close()
    click.echo(f"re-analysed {done} of {len(job_ids)} capture(s)")


@cli.command()
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
def demo(state_dir: Path, duration: float) -> None:
    """Run the real daemon with a simulated instrument PC feeding it exports.

    Within a minute you see captures, verdicts (one plate fails: inactive asparaginase and
    saturated wells), alerts on the console and in <state>/alerts.jsonl, PNG/HTML reports in
    <state>/reports, and an unreadable export quarantined. Ctrl-C stops it cleanly.
    """
    import logging
    import threading

    from daemon import Daemon
    from monitoring.demo import demo_settings, printer, vendor_pc

    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = demo_settings(state_dir)
    inbox = settings.watch[0].path
    click.echo(f"platewatch demo: watching {inbox}")
    click.echo(
        f"  reports: {settings.service.state_dir / 'reports'}   alerts: {settings.service.state_dir / 'alerts.jsonl'}"
    )
    click.echo("  (the dashboard comes with a later issue)   Ctrl-C stops")
    daemon = Daemon(settings)
    stop = threading.Event()
    threads = [
        threading.Thread(target=vendor_pc, args=(inbox, stop), daemon=True),
        threading.Thread(target=printer, args=(settings, stop, click.echo), daemon=True),
    ]
    for t in threads:
        t.start()
    if duration > 0:
        threading.Timer(duration, daemon.stop).start()
    try:
        code = daemon.run()
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=5)
    sys.exit(code)


def main() -> None:
    cli(prog_name="platewatch")


if __name__ == "__main__":
    main()
