"""The result sheet shared by Tecan i-control, SparkControl and XFLUOR4 (Sunrise) exports.

A sheet is a header (application, device, serial number, date, time, plate), then one
block per measurement label: settings rows (``Mode``, ``Measurement Wavelength``,
``Excitation/Emission Wavelength``, ``Start Time``, ``Temperature``) and the data, in one
of four layouts:

* a ``<>`` grid (the corner cell ``<>``, columns ``1 … N``, rows ``A …``): an endpoint read;
* i-control kinetic: rows ``Cycle Nr.`` / ``Time [s]`` / ``Temp. [°C]`` with one column per
  cycle, then one row per well;
* SparkControl kinetic ("transposed"): a header ``Cycle Nr. | Time [s] | Temp. [°C] | A1 …``
  then one row per cycle;
* several reads per well: ``Well | Mean | StDev | 1;2 | 0;1 …`` with one row per well (the
  mean is the read; the positions' values stay in the metadata).

German exports say ``Programm:``, ``Gerät:``, ``Datum:``, ``Zeit:``, ``Modus``,
``Messwellenlänge``, ``Zyklus Nr.``, ``Zeit [s]``, ``Temp. [°C]``. Values are numbers or
the tokens ``OVER``, ``Invalid``, ``NaN``; values written from float32 are given back
their float32 text.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acquisition.formats.base import Reader, Sample
from acquisition.formats.text import grid_to_read
from acquisition.formats.workbook import (
    Cells,
    Rows,
    cell,
    first_cells,
    float32_token,
    grid_at,
    header_int,
    is_blank,
    key_value,
    leading_number,
    mode_from,
    number,
    sheets_of,
    well_of,
)
from datamodel import PLATE_FORMATS, ExportFile, Plate, PlateRead, ReadMode, well_name
from errors import FormatError

Sheets = list[tuple[str, Rows]]

_KEYS = {  # settings row key (lower case) → what it is
    "mode": "mode",
    "modus": "mode",
    "measurement mode": "mode",
    "messmodus": "mode",
    "measurement wavelength": "wavelength",
    "messwellenlänge": "wavelength",
    "wavelength": "wavelength",
    "wellenlänge": "wavelength",
    "excitation wavelength": "excitation",
    "anregungswellenlänge": "excitation",
    "emission wavelength": "emission",
    "emissionswellenlänge": "emission",
    "reference wavelength": "reference",
    "referenzwellenlänge": "reference",
    "start time": "start",
    "startzeit": "start",
    "temperature": "temperature",
    "temperatur": "temperature",
    "name": "name",
    "multiple reads per well (circle)": "multiple_reads",
    "multiple reads per well (square)": "multiple_reads",
    "multiple reads per well (fill)": "multiple_reads",
    "number of flashes": "flashes",
    "anzahl der blitze": "flashes",
    "part of plate": "part_of_plate",
    "plattenbereich": "part_of_plate",
    "plate": "plate",
    "platte": "plate",
    "plate-id (stacker)": "plate_id",
    "date": "date",
    "datum": "date",
    "time": "time",
    "zeit": "time",
}
_CYCLE = re.compile(r"^(cycle nr\.?|zyklus ?nr\.?|cycle)$", re.IGNORECASE)
_TIME = re.compile(r"^(time|zeit) ?\[s\]$", re.IGNORECASE)
_TEMP = re.compile(r"^temp(\.|eratur)? ?\[°c\]$", re.IGNORECASE)
_APPLICATION = re.compile(r"^(application|programm|anwendung):", re.IGNORECASE)
_LABEL = re.compile(r"^(label|name|markierung):\s*(.+)$", re.IGNORECASE)


@dataclass
class _Context:
    """The settings in force for the data that follow."""

    label: str = ""
    mode: ReadMode | None = None
    wavelength: float | None = None
    excitation: float | None = None
    emission: float | None = None
    temperature: float | None = None
    start: str | None = None
    fresh_label: bool = False  # set by a 'Label:' row, cleared by the read it names


@dataclass
class TecanSheet:
    """What one result sheet holds."""

    header: dict[str, str] = field(default_factory=dict)
    reads: list[PlateRead] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    multiple_reads: dict[str, dict[str, str]] = field(default_factory=dict)


def _token(text: str) -> str:
    return float32_token(text)


def _shape(header: dict[str, str], cells: Cells) -> tuple[int, int] | None:
    """The plate the header names ('96-well plate', '[GRE384fw] … 384 …'), if it fits."""
    if not cells:
        return None
    max_row = max(r for r, _, _ in cells)
    max_col = max(c for _, c, _ in cells)
    for wells in re.findall(
        r"(?<![0-9])(6|12|24|48|96|384|1536)(?![0-9])", header.get("plate", "")
    ):
        shape = PLATE_FORMATS[int(wells)]
        if max_row < shape[0] and max_col < shape[1]:
            return shape
    return None


def _mode_of(ctx: _Context, values_hint: str) -> ReadMode:
    if ctx.mode is not None:
        return ctx.mode
    return mode_from(values_hint) or "absorbance"


def _wavelength(ctx: _Context) -> float | None:
    if ctx.mode == "fluorescence":
        return ctx.emission or ctx.wavelength
    if ctx.mode == "luminescence":
        return None
    return ctx.wavelength or ctx.emission


def parse_sheet(rows: Rows, source: Path) -> TecanSheet:
    """Every read of one Tecan result sheet (possibly none: a settings-only sheet)."""
    sheet = TecanSheet()
    ctx = _Context()
    i = 0
    while i < len(rows):
        row = rows[i]
        first = cell(row, 0)
        low = first.lower().rstrip(":").strip()
        if first == "<>" or (first.lower() in ("rawdata", "raw data") and i + 1 < len(rows)):
            at = i if first == "<>" else i + 1
            if at > i and not ctx.label:
                ctx.label = first
            grid = grid_at(rows, at) if cell(rows[at], 0) == "<>" else None
            if grid is not None:
                sheet.reads.append(_grid_read(sheet, ctx, grid.cells, source))
                i = grid.end
                continue
        if _CYCLE.match(first):
            end = _kinetic(rows, i, sheet, ctx, source)
            if end > i:
                i = end
                continue
        if low in ("well", "well position", "well positions") and any(
            cell(row, j).lower() == "mean" for j in range(1, min(len(row), 4))
        ):
            i = _multiple_reads(rows, i, sheet, ctx, source)
            continue
        _setting(row, first, low, sheet, ctx)
        i += 1
    return sheet


def _setting(row: list[str], first: str, low: str, sheet: TecanSheet, ctx: _Context) -> None:
    if not first:
        # 'None | Temperature: 30.6 °C' right above an i-control grid
        second = cell(row, 1)
        if second.lower().startswith(("temperature:", "temperatur:")):
            ctx.temperature = leading_number(second)
        return
    match = _LABEL.match(first)
    if match and match.group(1).lower() != "name":
        ctx.label = match.group(2).strip()
        ctx.mode = None
        ctx.fresh_label = True
        return
    for prefix, key in (
        ("application:", "application"),
        ("programm:", "application"),
        ("device:", "device"),
        ("gerät:", "device"),
        ("firmware:", "firmware"),
        ("method name:", "method"),
    ):
        if first.lower().startswith(prefix):
            sheet.header[key] = first[len(prefix) :].strip()
            extra = [c.strip() for c in row[1:] if c.strip()]
            if key == "application" and extra:  # 'Tecan i-control , 2.0.10.0' or 'V2.1'
                sheet.header["application_version"] = extra[0].split(",")[-1].strip()
            if key == "device" and extra:
                serial = re.sub(r"^(serial number|seriennummer):\s*", "", extra[0], flags=re.I)
                sheet.header["serial"] = serial.strip()
            return
    key, value, unit = key_value(row)
    what = _KEYS.get(key.lower())
    if what is None:
        if value and len(sheet.settings) < 200:
            sheet.settings.setdefault(key, f"{value} {unit}".strip())
        return
    if what in ("date", "time", "plate", "plate_id"):
        if value and what not in sheet.header:
            sheet.header[what] = value
        return
    if what == "mode":
        if not ctx.fresh_label:  # a SparkControl block: 'Mode' first, then 'Name'
            ctx.label = ""
        ctx.mode = mode_from(value) or ctx.mode
        sheet.settings.setdefault("mode", value)
    elif what == "name":
        if value and not ctx.label:
            ctx.label = value
    elif what in ("wavelength", "excitation", "emission"):
        setattr(ctx, what, number(value))
    elif what == "temperature":
        ctx.temperature = number(value) if number(value) is not None else leading_number(value)
    elif what == "start":
        ctx.start = value
    elif value:
        sheet.settings.setdefault(what, f"{value} {unit}".strip())


def _measured_at(sheet: TecanSheet, ctx: _Context) -> str | None:
    if ctx.start:
        return ctx.start
    date, time = sheet.header.get("date"), sheet.header.get("time")
    if date and time:
        return f"{date.removesuffix(' 00:00:00')} {time}"
    return date or time


def _new_read(
    sheet: TecanSheet,
    ctx: _Context,
    cells: Cells,
    source: Path,
    *,
    time_s: float | None = None,
    temperature_c: float | None = None,
) -> PlateRead:
    shape = _shape(sheet.header, cells)
    read = grid_to_read(
        [(r, c, _token(t)) for r, c, t in cells],
        source=source,
        rows=shape[0] if shape else None,
        cols=shape[1] if shape else None,
        label=ctx.label or "Label1",
        wavelength_nm=_wavelength(ctx),
        time_s=time_s,
        temperature_c=temperature_c,
    )
    read.mode = _mode_of(ctx, ctx.label)
    read.measured_at = _measured_at(sheet, ctx)
    ctx.fresh_label = False
    return read


def _grid_read(sheet: TecanSheet, ctx: _Context, cells: Cells, source: Path) -> PlateRead:
    return _new_read(sheet, ctx, cells, source, temperature_c=ctx.temperature)


def _kinetic(rows: Rows, i: int, sheet: TecanSheet, ctx: _Context, source: Path) -> int:
    """A kinetic table starting at the ``Cycle Nr.`` row; returns the row after it (or i)."""
    header = rows[i]
    if _TIME.match(cell(header, 1)) or well_of(cell(header, 1)) is not None:
        return _kinetic_by_cycle(rows, i, sheet, ctx, source)
    return _kinetic_by_well(rows, i, sheet, ctx, source)


def _kinetic_by_well(rows: Rows, i: int, sheet: TecanSheet, ctx: _Context, source: Path) -> int:
    """i-control: cycles are columns, one row per well."""
    cycles = [j for j in range(1, len(rows[i])) if header_int(rows[i][j]) is not None]
    times: dict[int, float | None] = {}
    temps: dict[int, float | None] = {}
    k = i + 1
    while k < len(rows):
        name = cell(rows[k], 0)
        if _TIME.match(name):
            times = {j: number(cell(rows[k], j)) for j in cycles}
        elif _TEMP.match(name):
            temps = {j: number(cell(rows[k], j)) for j in cycles}
        else:
            break
        k += 1
    wells: list[tuple[int, int, list[str]]] = []
    while k < len(rows) and (rc := well_of(cell(rows[k], 0))) is not None:
        wells.append((rc[0], rc[1], rows[k]))
        k += 1
    if not wells:
        return i
    # Only cycles that were measured: a cycle column with a time or any value.
    for j in cycles:
        tokens = [(r, c, row[j] if j < len(row) else "") for r, c, row in wells]
        if times.get(j) is None and not any(t.strip() for _, _, t in tokens):
            continue
        sheet.reads.append(
            _new_read(sheet, ctx, tokens, source, time_s=times.get(j), temperature_c=temps.get(j))
        )
    return k


def _kinetic_by_cycle(rows: Rows, i: int, sheet: TecanSheet, ctx: _Context, source: Path) -> int:
    """SparkControl: ``Cycle Nr. | Time [s] | Temp. [°C] | A1 | A2 …``, one row per cycle."""
    header = rows[i]
    time_col = next((j for j, h in enumerate(header) if _TIME.match(h.strip())), None)
    temp_col = next((j for j, h in enumerate(header) if _TEMP.match(h.strip())), None)
    wells = [(j, rc) for j, h in enumerate(header) if (rc := well_of(h)) is not None]
    if not wells:
        return i
    k = i + 1
    while k < len(rows) and header_int(cell(rows[k], 0)) is not None:
        row = rows[k]
        tokens = [(r, c, row[j] if j < len(row) else "") for j, (r, c) in wells]
        time_s = number(cell(row, time_col)) if time_col is not None else None
        temp = number(cell(row, temp_col)) if temp_col is not None else None
        sheet.reads.append(_new_read(sheet, ctx, tokens, source, time_s=time_s, temperature_c=temp))
        k += 1
    return k


def _multiple_reads(rows: Rows, i: int, sheet: TecanSheet, ctx: _Context, source: Path) -> int:
    """``Well | Mean | StDev | 1;2 …``: the mean is the read, positions go to metadata."""
    header = [c.strip() for c in rows[i]]
    mean_col = next(j for j, h in enumerate(header) if h.lower() == "mean")
    positions = [(j, h) for j, h in enumerate(header) if re.fullmatch(r"[0-9]+;[0-9]+", h)]
    cells: Cells = []
    k = i + 1
    while k < len(rows) and (rc := well_of(cell(rows[k], 0))) is not None:
        row = rows[k]
        cells.append((rc[0], rc[1], row[mean_col] if mean_col < len(row) else ""))
        sheet.multiple_reads[well_name(*rc)] = {
            h: _token(row[j]) for j, h in positions if j < len(row) and row[j].strip()
        }
        k += 1
    if cells:
        sheet.reads.append(_grid_read(sheet, ctx, cells, source))
    return k if k > i + 1 else i + 1


def plates_of(
    sheets: list[tuple[str, Rows]], source: Path
) -> tuple[list[Plate], dict[str, str], dict[str, Any]]:
    """One plate per sheet with reads, or per header block when a sheet repeats its
    ``Application:`` header (a stacker run); the first plate's header; metadata."""
    plates: list[Plate] = []
    header: dict[str, str] = {}
    metadata: dict[str, Any] = {}
    for name, sheet_rows in sheets:
        if all(is_blank(r) for r in sheet_rows):
            continue
        starts = [i for i, r in enumerate(sheet_rows) if _APPLICATION.match(cell(r, 0))]
        cuts = [0, *[i for i in starts if i > 0], len(sheet_rows)]
        segments = [sheet_rows[a:b] for a, b in itertools.pairwise(cuts)]
        for k, rows in enumerate(segments):
            parsed = parse_sheet(rows, source)
            if not parsed.reads:
                continue
            if not header:
                header = parsed.header
                metadata = {"header": parsed.header, "settings": parsed.settings}
                if parsed.multiple_reads:
                    metadata["multiple_reads_per_well"] = parsed.multiple_reads
            fallback = name if len(segments) == 1 else f"{name} #{k + 1}"
            plate_id = parsed.header.get("plate_id") or fallback or f"Plate {len(plates) + 1}"
            plates.append(Plate(plate_id=plate_id, reads=parsed.reads))
    return plates, header, metadata


def tecan_export(
    source: Path, sheets: list[tuple[str, Rows]], *, fmt: str, describe: str
) -> ExportFile:
    """The ExportFile of the Tecan result sheets; FormatError when none holds data."""
    plates, header, metadata = plates_of(sheets, source)
    if not plates:
        raise FormatError(
            f"{describe} without measurement data (settings only, or a layout it does not "
            "know: expected a '<>' grid, a 'Cycle Nr.' table or a 'Well | Mean' list)",
            source=source,
        )
    software = header.get("application")
    version = header.get("application_version", "")
    if software and version and version not in software:
        software = f"{software} {version.lstrip(', ')}"
    return ExportFile(
        format=fmt,
        plates=plates,
        instrument={
            "model": header.get("device"),
            "serial": header.get("serial"),
            "software": software,
        },
        metadata=metadata,
    )


def application_reader(name: str, application: str, priority: int, describe: str) -> Reader[Sheets]:
    """The reader of one Tecan application's workbooks: sheets whose first rows hold
    ``Application: <application>`` (German ``Programm:``/``Anwendung:``)."""
    signature = re.compile(
        rf"^(application|programm|anwendung):\s*{re.escape(application)}", re.IGNORECASE
    )

    def sniff(sample: Sample) -> Sheets | None:
        if not sample.is_zip:
            return None
        found = [
            (title, rows)
            for title, rows in sheets_of(sample)
            if any(signature.match(c) for c in first_cells(rows, 3))
        ]
        return found or None

    def read(sample: Sample, sheets: Sheets) -> ExportFile:
        return tecan_export(sample.path, sheets, fmt=name, describe=describe)

    return Reader(
        name=name,
        kind="plate",
        sniff=sniff,
        read=read,
        priority=priority,
        max_bytes=32 * 1024 * 1024,
        signature=lambda head: head[:4] == b"PK\x03\x04",
        describe=describe,
    )
