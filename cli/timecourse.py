"""`timecourse start|status|stop`: scheduled reads of one plate over 48–72 h."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from cli.common import CONFIG_OPTION, emit, fail, open_store_or_fail
from errors import PlatewatchError

_UNITS = {"s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(s|sec|min|m|h|d)\s*$")


def parse_duration(text: str, option: str) -> float:
    """'30s' → 30, '2h' → 7200, '90min' → 5400, '1.5d' → 129600; exit 2 on anything else."""
    match = _DURATION.match(text)
    if match is None:
        fail(f"{option}: {text!r} is not a duration (a number and s, min, h or d: 30s, 2h, 3d)")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0 and option == "--every":
        fail(f"{option}: {text!r} must be longer than 0")
    return seconds


def parse_start(text: str) -> float:
    if text == "now":
        return time.time()
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        fail(f"--start: {text!r} is neither 'now' nor an ISO date-time (2026-12-01T18:00)")
    if when.tzinfo is None:
        when = when.astimezone()  # the PC's local time, as a person typing it means
    return when.timestamp()


def _when(t: float | None) -> str:
    return (
        "—"
        if t is None
        else datetime.fromtimestamp(t, UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    )


@click.group()
def timecourse() -> None:
    """Plan, show and end scheduled reads of a plate (48–72 h timecourses)."""


@timecourse.command()
@CONFIG_OPTION
@click.option("--reader", "reader_name", required=True, help="The [[reader]] that reads the plate.")
@click.option(
    "--layout", type=click.Path(path_type=Path), help="Plate layout (default: the reader's)."
)
@click.option("--every", required=True, help="Interval between reads: 30s, 15min, 2h, 1d.")
@click.option("--for", "for_", required=True, help="How long: 72h, 3d (reads at 0, every, …, for).")
@click.option("--wavelength", type=click.FloatRange(200, 1100), default=570.0, show_default=True)
@click.option("--reference", type=click.FloatRange(200, 1100), help="Reference wavelength (nm).")
@click.option(
    "--start", default="now", show_default=True, help="ISO date-time of the first read, or now."
)
@click.option("--name", help="A name for it (default: reader + start time).")
@click.option("--json", "as_json", is_flag=True, help="The plan as one JSON object.")
def start(
    config: Path | None,
    reader_name: str,
    layout: Path | None,
    every: str,
    for_: str,
    wavelength: float,
    reference: float | None,
    start: str,
    name: str | None,
    as_json: bool,
) -> None:
    """Plan a timecourse; the running daemon performs each read at its time.

    Prints the id and the planned reads. A read done within its grace (a quarter of the
    interval, at most 10 min) is done (or late, with its delay); past it, missed and alerted.
    """
    from acquisition.scheduler import Plan, plan_timecourse

    settings, store = open_store_or_fail(config)
    try:
        readers = {r.name: r for r in settings.reader}
        if reader_name not in readers:
            fail(
                f"--reader: no reader named {reader_name!r} (readers: {', '.join(readers) or 'none configured'})"
            )
        layout_path = layout or readers[reader_name].layout
        if layout_path is None:
            fail(f"--layout: reader {reader_name} has no layout in the config; give one")
        if not layout_path.is_file():
            fail(f"{layout_path}: --layout: file not found")
        from analysis.layout import load_layout

        try:
            load_layout(layout_path)
        except PlatewatchError as exc:
            fail(str(exc))
        every_s, for_s = parse_duration(every, "--every"), parse_duration(for_, "--for")
        start_at = parse_start(start)
        plan = Plan(
            name=name
            or f"{reader_name}-{datetime.fromtimestamp(start_at, UTC).strftime('%Y%m%dT%H%M%SZ')}",
            reader=reader_name,
            layout=str(layout_path.resolve()),
            every_s=every_s,
            for_s=for_s,
            start_at=start_at,
            wavelengths=(wavelength,) + ((reference,) if reference is not None else ()),
        )
        try:
            tc_id, due = plan_timecourse(store, plan)
        except PlatewatchError as exc:
            fail(str(exc))
    finally:
        store.close()
    if as_json:
        emit(
            {
                "id": tc_id,
                "name": plan.name,
                "reader": reader_name,
                "every_s": every_s,
                "for_s": for_s,
                "due": due,
            }
        )
        return
    click.echo(
        f"timecourse {tc_id} ({plan.name}): {len(due)} reads on {reader_name}, every {every} for {for_}"
    )
    shown = due if len(due) <= 12 else due[:6] + due[-3:]
    for i, t in enumerate(shown):
        index = i if len(due) <= 12 or i < 6 else len(due) - 3 + (i - 6)
        if len(due) > 12 and i == 6:
            click.echo("  …")
        click.echo(f"  #{index:<3} {_when(t)}")


@timecourse.command()
@CONFIG_OPTION
@click.argument("tc_id", required=False, type=int)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per timecourse (JSONL).")
def status(config: Path | None, tc_id: int | None, as_json: bool) -> None:
    """Timecourses with their reads: planned, done, late, missed; flags and growth."""
    from acquisition.timecourses import list_timecourses

    _, store = open_store_or_fail(config)
    try:
        rows = list_timecourses(store, tc_id)
    finally:
        store.close()
    if tc_id is not None and not rows:
        fail(f"no timecourse with id {tc_id}")
    for row in rows:
        if as_json:
            emit(row)
            continue
        _print(row)


def _print(row: dict[str, Any]) -> None:
    c = row["counts"]
    click.echo(
        f"{row['id']:>4}  {row['name']}  [{row['state']}]  reader {row['reader']}  "
        f"planned {c['planned']}  done {c['done']}  late {c['late']}  missed {c['missed']}"
    )
    summary = row.get("summary") or {}
    if summary.get("sparkline"):
        growth = summary.get("growth") or {}
        doubling = growth.get("doubling_time_h")
        extra = f"  doubling time {doubling:.1f} h" if isinstance(doubling, int | float) else ""
        click.echo(f"      untreated growth {summary['sparkline']}{extra}")
    for flag in row.get("flags") or []:
        click.echo(f"      [{flag['severity']}] {flag['code']}: {flag['message']}")
    nxt = next((r for r in row["reads"] if r["state"] == "planned"), None)
    if nxt is not None and row["state"] == "running":
        click.echo(f"      next read #{nxt['index']} at {_when(nxt['due_at'])}")


@timecourse.command()
@CONFIG_OPTION
@click.argument("tc_id", type=int)
def stop(config: Path | None, tc_id: int) -> None:
    """End a timecourse: its remaining planned reads are cancelled."""
    from acquisition.scheduler import stop_timecourse

    _, store = open_store_or_fail(config)
    try:
        cancelled = stop_timecourse(store, tc_id)
    except PlatewatchError as exc:
        fail(str(exc))
    finally:
        store.close()
    click.echo(f"timecourse {tc_id} stopped: {cancelled} planned read(s) cancelled")
