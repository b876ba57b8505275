"""`parse`, `fit`, `analyze`: reading exports and analysing plates from the command line."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from cli.common import (
    EXIT_FINDING,
    bad_input,
    emit,
    fail,
    internal_error,
    load_settings,
    output_dir,
    worst,
)
from errors import PlatewatchError

FAIL_LEVELS = ("warn", "fail")


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file (JSONL).")
def parse(files: tuple[Path, ...], as_json: bool) -> None:
    """Read plate-reader exports and show what was read.

    The format is found from the content, never the file name. Non-numeric wells keep
    their raw token (OVRFLW, MISSED, …) and a status.
    """
    import hashlib

    from acquisition.formats import load_bytes, read_any

    status = 0
    for path in files:
        try:
            data = load_bytes(path)
            export = read_any(path, data)
            sha = hashlib.sha256(data).hexdigest()
            record = {"path": str(path), "sha256": sha, **_export_record(export, str(path), sha)}
        except PlatewatchError as exc:
            status = worst(status, bad_input(path, exc, as_json))
            continue
        except Exception as exc:
            status = worst(status, internal_error(path, exc, as_json))
            continue
        if as_json:
            emit(record)
            continue
        _print_export(path, record)
    sys.exit(status)


def _export_record(export: Any, path: str, sha: str) -> dict[str, Any]:
    if export.kind == "cytometry":
        from acquisition.formats.fcs import fcs_record

        return fcs_record(export, path=path, sha256=sha)
    return {
        "format": export.format,
        "instrument": export.instrument,
        "plates": [
            {"plate": p.plate_id, "barcode": p.barcode, "reads": [r.to_dict() for r in p.reads]}
            for p in export.plates
        ],
        "metadata": export.metadata,
    }


def _print_export(path: Path, record: dict[str, Any]) -> None:
    if "datasets" in record:
        click.echo(f"{path}: {record['format']}")
        for n, ds in enumerate(record["datasets"]):
            names = ", ".join(
                p["name"] + (f"={p['label']}" if p.get("label") else "") for p in ds["parameters"]
            )
            click.echo(f"  dataset {n + 1}: {ds['version']}, {ds['events']} events: {names}")
        return
    model = (record.get("instrument") or {}).get("model") or "unknown reader"
    click.echo(f"{path}: {record['format']}, {model}")
    for p in record["plates"]:
        for r in p["reads"]:
            bad = sum(s != "ok" for row in r["status"] for s in row)
            when = f" t={r['time_s']:g}s" if r["time_s"] is not None else ""
            what = f"{r['wavelength_nm']:g} nm" if r["wavelength_nm"] is not None else r["mode"]
            click.echo(
                f"  {p['plate']}: {r['label'] or 'read'} {what} ({r['unit'] or 'no unit'}){when} "
                f"{r['rows']}x{r['cols']}, {bad} well(s) not ok"
            )


@click.command()
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
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Processes for the fits (default: every usable core; a big table uses them all).",
)
def fit(
    table: Path,
    dose: str,
    response: str,
    groups: tuple[str, ...],
    shared: str,
    config: Path | None,
    as_json: bool,
    workers: int | None,
) -> None:
    """Fit LL.4 dose-response curves to a plain CSV/TSV table (drc's LL.4, exactly).

    The IC50's 95 % CI is drc's interval = "fls" (back-transformed from log e, never below
    zero); drc's delta interval is given as ic50_ci_delta. Curves are fitted in batches on
    every core, written out in table order as they finish; on a terminal, stderr shows a
    progress bar.
    """
    from acquisition.tables import read_table

    settings = load_settings(config)
    shared_params = tuple(p.strip() for p in shared.split(",") if p.strip())
    bad = [p for p in shared_params if p not in ("b", "c", "d", "e")]
    if bad:
        fail(f"--shared: {bad[0]!r} is not an LL.4 parameter (b, c, d, e)")
    if shared_params and not groups:
        fail("--shared needs --group: parameters are shared between groups")
    try:
        frame = read_table(table, [dose, response, *groups], numeric=[dose, response])
    except PlatewatchError as exc:
        fail(str(exc))
    from acquisition.pipeline import response_rules

    rules = response_rules(settings)
    level = settings.analysis.confidence_level
    keys = list(groups)
    if shared_params and keys:
        _fit_joint(table, frame, dose, response, keys, shared_params, rules, level, as_json)
        return
    from acquisition.fitting import iter_lines

    curves, labels = _curves_of(frame, dose, response, keys)
    with _progress(len(curves)) as advance:
        try:
            for line in iter_lines(
                curves, labels, as_json=as_json, rules=rules, level=level, workers=workers,
                progress=advance,
            ):  # fmt: skip
                click.echo(line if as_json or keys else f"{table.name}: {line}")
        except ValueError as exc:
            fail(f"{table}: {exc}")


def _curves_of(
    frame: Any, dose: str, response: str, keys: list[str]
) -> tuple[list[tuple[Any, Any]], list[dict[str, Any]]]:
    """The table's curves (dose and response arrays) and their groups, in table order."""
    import numpy as np

    x = frame[dose].to_numpy(dtype=float)
    y = frame[response].to_numpy(dtype=float)
    if not keys:
        return [(x, y)], [{}]
    codes = frame.groupby(keys, sort=False).ngroup().to_numpy()
    keep = np.flatnonzero(codes >= 0)
    order = keep[np.argsort(codes[keep], kind="stable")]
    edges = np.cumsum(np.bincount(codes[keep]))[:-1]
    firsts = order[np.r_[0, edges]] if len(order) else order
    values = frame[keys].to_numpy()[firsts]
    labels = [dict(zip(keys, row, strict=True)) for row in values.tolist()]
    return list(zip(np.split(x[order], edges), np.split(y[order], edges), strict=True)), labels


def _fit_joint(
    table: Path,
    frame: Any,
    dose: str,
    response: str,
    keys: list[str],
    shared: tuple[str, ...],
    rules: Any,
    level: float,
    as_json: bool,
) -> None:
    """Groups fitted together, sharing parameters (drc's pmodels)."""
    from acquisition.fitting import json_line, text_line
    from analysis.jointfit import fit_ll4_joint

    label = frame[keys].astype(str).agg("|".join, axis=1)
    try:
        joint = fit_ll4_joint(
            frame[dose], frame[response], label, shared=shared, rules=rules, level=level
        )
    except ValueError as exc:
        fail(f"{table}: {exc}")
    for key, _part in frame.groupby(keys, sort=False):
        k = key if isinstance(key, tuple) else (key,)
        group, result = dict(zip(keys, k, strict=True)), joint["|".join(map(str, k))]
        click.echo(json_line(group, result) if as_json else text_line(group, result))


@contextlib.contextmanager
def _progress(total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr when it is a terminal (curves, fits/s, time left); the
    lines written meanwhile go above it, and stdout keeps only what the command prints."""
    if not sys.stderr.isatty():
        yield lambda _done: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        Task,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text(
                f"{speed:,.0f} fits/s" if speed else "- fits/s", style="progress.data.speed"
            )

    columns = (
        TextColumn("fitting"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("curves"),
        Rate(),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
    )
    console = Console(stderr=True)
    # stdout redirected to a file or a pipe stays untouched; on the same terminal the
    # lines are printed above the bar.
    with Progress(
        *columns, console=console, redirect_stdout=sys.stdout.isatty(), redirect_stderr=False
    ) as bar:
        task = bar.add_task("fit", total=total)
        yield lambda done: bar.advance(task, done)


def _fail_on_values(values: tuple[str, ...]) -> tuple[str, ...]:
    from analysis.model import FLAG_CODES

    out = []
    for value in values:
        item = value.strip().lower() if value.strip().lower() in FAIL_LEVELS else value.strip()
        if item not in FAIL_LEVELS and item not in FLAG_CODES:
            fail(
                f"--fail-on: {value!r} is neither a level (warn, fail) nor a flag code "
                f"(codes: {', '.join(sorted(FLAG_CODES))})"
            )
        out.append(item)
    return tuple(out)


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--layout",
    type=click.Path(path_type=Path),
    help="Plate layout (wellmap TOML or CSV); wins over a sidecar <stem>.layout.toml.",
)
@click.option(
    "--report", "report_dir", type=click.Path(path_type=Path), help="Write PNG + HTML reports here."
)
@click.option(
    "--config", type=click.Path(path_type=Path), help="Config file (thresholds, wavelengths)."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per plate or tube (JSONL).")
@click.option(
    "--fail-on",
    "fail_on",
    multiple=True,
    help="Exit 1 when a verdict reaches 'warn' or 'fail', or when a flag code given here is raised.",
)
@click.option(
    "--channel",
    "channel_opts",
    multiple=True,
    metavar="ROLE=NAME",
    help="FCS: the channel ($PnN) of annexin, pi (or fsc_a, fsc_h, fsc_w, ssc_a, time).",
)
@click.option(
    "--control",
    "control_opts",
    multiple=True,
    metavar="ROLE=FILE",
    help="FCS: a control tube: unstained, annexin_only, pi_only or untreated.",
)
def analyze(
    files: tuple[Path, ...],
    layout: Path | None,
    report_dir: Path | None,
    config: Path | None,
    as_json: bool,
    fail_on: tuple[str, ...],
    channel_opts: tuple[str, ...],
    control_opts: tuple[str, ...],
) -> None:
    """Analyse plates (blank correction, % of untreated, LL.4 fits, QC flags, a verdict) and
    FCS files (given together: one Annexin V/PI batch whose controls are found among them).

    The layout is --layout if given, else the file's sidecar `<stem>.layout.toml`; the
    layout used is named in the output. Exit 0 ok, 1 when --fail-on matches, 2 bad input.
    """
    levels = _fail_on_values(fail_on)
    settings = load_settings(config)
    reports = output_dir(report_dir, "--report")
    if layout is not None and not layout.is_file():
        fail(f"{layout}: --layout: {'is a directory' if layout.is_dir() else 'file not found'}")
    from acquisition.pipeline import analyze_file, report_name

    fcs_files = [p for p in files if _looks_like_fcs(p)]
    plate_files = [p for p in files if p not in fcs_files]
    status = 0
    found = False
    if fcs_files or control_opts:
        status, found = _analyze_fcs(
            fcs_files, settings, reports, as_json, levels, channel_opts, control_opts
        )
    used_names: set[str] = set()
    for path in plate_files:
        try:
            analysed = analyze_file(path, settings, layout=layout)
            for item in analysed:
                result = item.result
                record = result.to_dict(str(path)) | {"layout": item.layout_source}
                if reports is not None:
                    name = _unique(report_name(path, item.plate, len(analysed)), used_names)
                    from analysis.report import write_report

                    record["report"] = write_report(record, reports, name, source=str(path))
                if _fails(result.verdict, [f.code for f in result.flags], levels):
                    found = True
                if as_json:
                    emit(_printed(record))
                else:
                    _print_plate(path, item.plate.plate_id, record)
        except PlatewatchError as exc:
            status = worst(status, bad_input(path, exc, as_json))
        except Exception as exc:
            status = worst(status, internal_error(path, exc, as_json))
    sys.exit(worst(status, EXIT_FINDING if found else 0))


def _looks_like_fcs(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            head = fh.read(10)
    except OSError:
        return False  # the plate path reports why it cannot be read
    return head[:3] == b"FCS" and head[3:6].replace(b".", b"").isdigit()


def _pairs(options: tuple[str, ...], option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in options:
        role, sep, value = item.partition("=")
        if not sep or not role.strip() or not value.strip():
            fail(f"{option}: {item!r} is not ROLE=VALUE")
        out[role.strip()] = value.strip()
    return out


def _analyze_fcs(
    paths: list[Path],
    settings: Any,
    reports: Path | None,
    as_json: bool,
    levels: tuple[str, ...],
    channel_opts: tuple[str, ...],
    control_opts: tuple[str, ...],
) -> tuple[int, bool]:
    """One Annexin V/PI batch; (exit status, whether --fail-on matched)."""
    from acquisition.cytometry import analyze_fcs_batch

    channels = _pairs(channel_opts, "--channel")
    controls = {role: Path(p) for role, p in _pairs(control_opts, "--control").items()}
    cyto = settings.cytometry
    patterns = cyto.control_patterns
    try:
        batch = analyze_fcs_batch(
            paths,
            channels=channels,
            controls=controls,
            thresholds=cyto,
            patterns={k: tuple(v) for k, v in patterns.items()} if patterns else None,
            report_dir=reports,
        )
    except PlatewatchError as exc:
        return bad_input(paths[0] if paths else "FCS batch", exc, as_json), False
    except Exception as exc:
        return internal_error(paths[0] if paths else None, exc, as_json), False
    for path, why in batch.skipped:
        click.echo(f"platewatch: {path}: left out of the batch: {why}", err=True)
    found = False
    for result in batch.results:
        record = result.to_dict()
        if _fails(record["verdict"], [f["code"] for f in record["flags"]], levels):
            found = True
        if as_json:
            emit(record)
            continue
        pops = record["populations"]
        shares = ", ".join(
            f"{k.replace('_', ' ')} {v['percent']:.1f} %"
            for k, v in pops.items()
            if v.get("percent") is not None
        )
        click.echo(f"{record['path']} [{record['role']}]: {record['verdict'].upper()}  {shares}")
        for flag in record["flags"]:
            click.echo(f"  [{flag['severity']}] {flag['code']}: {flag['message']}")
        if record.get("report"):
            click.echo(f"  report: {record['report']}")
    return 0, found


def _printed(record: dict[str, Any]) -> dict[str, Any]:
    """The JSON a user sees: the stored record without the report's drawing data."""
    out = {k: v for k, v in record.items() if k != "grid"}
    out["curves"] = [{k: v for k, v in c.items() if k not in ("vcov",)} for c in record["curves"]]
    return out


def _unique(name: str, used: set[str]) -> str:
    candidate, n = name, 2
    while candidate in used:
        candidate, n = f"{name}-{n}", n + 1
    used.add(candidate)
    return candidate


def _print_plate(path: Path, plate_id: str, record: dict[str, Any]) -> None:
    click.echo(f"{path} [{plate_id}]: {record['verdict'].upper()}  (layout {record['layout']})")
    for curve in record["curves"]:
        label = " × ".join(
            p for p in (curve["group"]["compound"], curve["group"]["cell_line"]) if p
        )
        unit = f" {curve['unit']}" if curve.get("unit") else ""
        if not curve["converged"]:
            click.echo(f"  {label}: no fit — {curve['message']}")
        elif curve["response"] == "none":
            click.echo(f"  {label}: no dose response up to {curve['dose_range'][1]:.3g}{unit}")
        else:
            q = curve["ic50_qualifier"] if curve["ic50_qualifier"] != "=" else ""
            ci = curve.get("ic50_ci")
            ci_text = f" (95 % CI {ci[0]:.3g}–{ci[1]:.3g}, {curve['ic50_ci_method']})" if ci else ""
            click.echo(
                f"  {label}: IC50 {q}{curve['ic50']:.3g}{unit}{ci_text}, response {curve['response']}"
            )
    for flag in record["flags"]:
        click.echo(f"  [{flag['severity']}] {flag['code']}: {flag['message']}")
    if record.get("report"):
        click.echo(f"  report: {record['report']['html']}")


def _fails(verdict: str, codes: list[str], fail_on: tuple[str, ...]) -> bool:
    for item in fail_on:
        if item in FAIL_LEVELS:
            if verdict == "fail" or (item == "warn" and verdict == "warn"):
                return True
        elif item in codes:
            return True
    return False


@click.command(name="export")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--asm",
    "as_asm",
    is_flag=True,
    required=True,
    help="Allotrope Simple Model JSON (plate-reader schema).",
)
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    help="Write <stem>.asm.json here (default: stdout, JSONL).",
)
@click.option(
    "--layout",
    type=click.Path(path_type=Path),
    help="Also analyse with this layout: IC50s, QC and flags go in the document.",
)
@click.option(
    "--config", type=click.Path(path_type=Path), help="Config file (thresholds) for --layout."
)
def export_cmd(
    files: tuple[Path, ...],
    as_asm: bool,
    out_dir: Path | None,
    layout: Path | None,
    config: Path | None,
) -> None:
    """Write plate-reader exports as Allotrope Simple Model JSON, for a LIMS or ELN.

    The reads go in as measurements (raw tokens of unreadable wells kept as errors);
    with --layout the analysis (IC50s and their CIs, QC numbers, verdict and flags) goes in
    where the schema has room.
    """
    import hashlib
    import json as jsonlib

    from acquisition.asm import asm_document
    from acquisition.formats import load_bytes, read_export

    target = output_dir(out_dir, "-o") if out_dir is not None else None
    settings = load_settings(config)
    status = 0
    for path in files:
        try:
            data = load_bytes(path)
            export = read_export(path, data)
            analysed = None
            if layout is not None:
                from acquisition.pipeline import analyze_export

                plates = analyze_export(path, export, settings, explicit_layout=layout)
                analysed = [p.result.to_dict(str(path)) for p in plates]
            doc = asm_document(
                export, source=str(path), sha256=hashlib.sha256(data).hexdigest(), results=analysed
            )
        except PlatewatchError as exc:
            status = worst(status, bad_input(path, exc, False))
            continue
        except Exception as exc:
            status = worst(status, internal_error(path, exc, False))
            continue
        text = jsonlib.dumps(doc, ensure_ascii=False, allow_nan=False)
        if target is None:
            click.echo(text)
        else:
            dest = target / f"{path.stem}.asm.json"
            dest.write_text(text + "\n", encoding="utf-8")
            click.echo(str(dest), err=True)
    sys.exit(status)
