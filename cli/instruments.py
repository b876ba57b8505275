"""`read`, `readers`: the readers platewatch drives itself (``[[reader]]`` in the config)."""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from cli.common import CONFIG_OPTION, emit, fail, load_settings
from errors import PlatewatchError


def _reader_settings(settings: Any, name: str) -> Any:
    for reader in settings.reader:
        if reader.name == name:
            return reader
    known = ", ".join(r.name for r in settings.reader) or "none configured"
    fail(f"--reader: no reader named {name!r} in the config (readers: {known})")


@click.command()
@CONFIG_OPTION
@click.option("--reader", "name", required=True, help="The [[reader]] to read with (its name).")
@click.option(
    "--wavelength",
    type=click.FloatRange(min=200, max=1100),
    required=True,
    help="Measurement wavelength (nm).",
)
@click.option(
    "--reference",
    type=click.FloatRange(min=200, max=1100),
    help="Reference wavelength (nm), read as well.",
)
@click.option(
    "--store", "store_it", is_flag=True, help="Also capture the read (archive, queue, analyse)."
)
@click.option(
    "--json", "as_json", is_flag=True, help="The read as one JSON object (the parse --json shape)."
)
def read(
    config: Path | None,
    name: str,
    wavelength: float,
    reference: float | None,
    store_it: bool,
    as_json: bool,
) -> None:
    """Perform one read now with a configured reader and print it.

    The read comes back in the `parse --json` shape: one plate, one read per wavelength,
    saturated wells with status `overflow`. With --store it is captured like a file export
    (archived, queued and analysed with the reader's `layout`). A wrong port, a timeout or
    a firmware error is one line naming the reader and exit 2.
    """
    from acquisition.formats.driver_read import read_document
    from acquisition.instruments import open_reader_session, read_now

    settings = load_settings(config)
    reader = _reader_settings(settings, name)
    wavelengths = [wavelength] + ([reference] if reference is not None else [])
    try:
        with open_reader_session(reader) as session:
            export = read_now(session, reader, wavelengths)
    except PlatewatchError as exc:
        fail(str(exc))
    document = read_document(
        export, reader=reader.name, protocol=reader.protocol, port=reader.port, read_at=""
    )
    record: dict[str, Any] = {
        "path": f"driver:{reader.name}",
        "sha256": hashlib.sha256(document).hexdigest(),
        "format": export.format,
        "instrument": export.instrument,
        "plates": [
            {"plate": p.plate_id, "barcode": p.barcode, "reads": [r.to_dict() for r in p.reads]}
            for p in export.plates
        ],
        "metadata": export.metadata,
    }
    if store_it:
        record["capture"] = _store(settings, reader, export)
    if as_json:
        emit(record)
        return
    for plate in record["plates"]:
        for r in plate["reads"]:
            over = sum(s == "overflow" for row in r["status"] for s in row)
            click.echo(
                f"{reader.name}: {r['label']} {r['wavelength_nm']:g} nm {r['rows']}x{r['cols']}"
                f", {over} saturated well(s)"
                + (f", {r['temperature_c']:g} °C" if r["temperature_c"] is not None else "")
            )
    if store_it:
        click.echo(f"captured as {record['capture']}")


def _store(settings: Any, reader: Any, export: Any) -> dict[str, Any]:
    from acquisition.capture import Capturer
    from acquisition.daemon_state import load_state
    from acquisition.instruments import capture_read
    from acquisition.store import open_store

    try:
        store = open_store(settings.store.url)
    except PlatewatchError as exc:
        fail(str(exc))
    try:
        outcome = capture_read(
            Capturer(store, settings.service.state_dir), reader, export, clock=store.clock
        )
        _, running = load_state(settings.service.state_dir, time.time())
        result: dict[str, Any] = {"outcome": outcome.outcome, "capture_id": outcome.capture_id}
        if outcome.capture_id is not None and not running:
            result["analysed"] = _analyse_here(store, settings, outcome.capture_id)
        return result
    finally:
        store.close()


def _analyse_here(store: Any, settings: Any, capture_id: int) -> str:
    """No daemon is running: run this capture's analysis job here, as a worker would."""
    from acquisition.kinds import JobContext
    from acquisition.pipeline import references
    from acquisition.queue import Purpose, claim
    from acquisition.worker import Hooks, process_job
    from monitoring.rules import alert_for_quarantine, alerts_for_result

    ctx = JobContext(store=store, settings=settings, references=references(settings))
    hooks = Hooks(on_result=alerts_for_result, on_dead=alert_for_quarantine)
    outcome = "queued"
    for purpose in (Purpose.ANALYZE, Purpose.REPORT):
        owner = f"read/{os.getpid()}"
        job = claim(
            store, owner, settings.service.lease_seconds, capture_id=capture_id, purpose=purpose
        )
        if job is not None:
            state = process_job(ctx, job, hooks)
            outcome = state if purpose == Purpose.ANALYZE else outcome
    return outcome


@click.command()
@CONFIG_OPTION
@click.option("--json", "as_json", is_flag=True, help="One JSON object per reader (JSONL).")
def readers(config: Path | None, as_json: bool) -> None:
    """The configured readers and their state (connected, busy, last error, last read).

    With the daemon running, its live view of each reader; otherwise each reader is asked
    for its status now.
    """
    from acquisition.daemon_state import load_state

    settings = load_settings(config)
    state, running = load_state(settings.service.state_dir, time.time())
    rows: list[dict[str, Any]] = []
    if running and state is not None:
        live = {r.name: asdict(r) for r in state.readers}
        for reader in settings.reader:
            row = live.get(reader.name) or {"name": reader.name, "state": "unknown"}
            rows.append(
                row | {"source": "daemon", "protocol": reader.protocol, "port": reader.port}
            )
    else:
        rows = [_probe(reader) for reader in settings.reader]
    for row in rows:
        if as_json:
            emit(row)
        else:
            error = f"  last error: {row['last_error']}" if row.get("last_error") else ""
            when = row.get("last_read_at")
            seen = (
                f"  last read {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(when))}"
                if isinstance(when, int | float)
                else ""
            )
            click.echo(
                f"{row['name']:<16} {row['protocol']:<10} {row['port']:<28} {row['state']:<8}{seen}{error}"
            )
    if not rows and not as_json:
        click.echo("no [[reader]] configured")


def _probe(reader: Any) -> dict[str, Any]:
    from acquisition.instruments import open_reader_session

    row: dict[str, Any] = {
        "name": reader.name,
        "protocol": reader.protocol,
        "port": reader.port,
        "source": "probe",
    }
    try:
        with open_reader_session(reader) as session:
            status = session.status()
            identity = session.identify() if status.state != "offline" else {}
            snap = session.state()
        row |= {
            "state": status.state,
            "message": status.message,
            "connected": snap.connected,
            "identity": identity,
            "last_error": snap.last_error,
            "last_read_at": None,
        }
    except PlatewatchError as exc:
        row |= {
            "state": "offline",
            "connected": False,
            "last_error": str(exc),
            "last_read_at": None,
        }
    return row
