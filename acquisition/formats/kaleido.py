"""Revvity (PerkinElmer) Kaleido CSV exports (EnSight, VICTOR Nivo, EnVision on Kaleido).

Signature: a ``Results for <technology> <n>`` (Kaleido 2/3) or ``Result for …`` (3.5)
title near the top — after blank lines, or after an ``EnSight Results from`` header —
and ``Exported with Kaleido`` as the last line.

Each result is a title, a barcode line — ``Barcode: V-…, PlateRepeat: 1, WellRepeat: 1``
(2.0) or a ``Barcode,Repeat,Loop no,…`` header and a line of values (3.x) — then a
labelled grid ``,1,2,…`` / ``A,…`` of full-precision doubles. ``Analysis Result`` sections
are Kaleido calculations (listed, not read). The technology names the read mode (``ABS``
absorbance, ``FI``/``Fluorescence`` fluorescence, ``LUM``/``Luminescence``
luminescence, ``Alpha`` luminescence); wavelengths come from the measurement settings
(``Excitation wavelength [nm]`` / ``Emission Wavelength [nm]`` of the operation of the
same name). The plate-type section's row/column counts are not used: 3.x exports write
them swapped; the grid itself says the plate. Text can hold no-break spaces (``Results
for\\u00a0ABS mono 1``).

Complete vs incomplete: Kaleido ends every export with ``Exported with Kaleido …``;
without it the file is still being written unless the sections after the results have
begun and the text ends at a line break.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from acquisition.formats.base import Reader, Sample, check_cells, count_cells
from acquisition.formats.grid import split_rows
from acquisition.formats.text import grid_to_read, parse_cell
from datamodel import ExportFile, Plate, PlateRead, ReadMode, row_index
from errors import FormatError, IncompleteFileError

_TITLE = re.compile(r"^\s*Results?\s+for\s+(?P<tech>.+?)\s*$", re.IGNORECASE)
_TRAILER = "Exported with Kaleido"
_AFTER_RESULTS = (
    "Measurement Basic Information",
    "Measurement Information",
    "Instrument Information",
    "Plate Type",
    "Platemap",
    "Measurements:",
    "Measurement Sequence",
)


def _clean(text: str) -> str:
    return text.replace("\u00a0", " ").strip()


def _sniff(sample: Sample) -> str | None:
    lines = [_clean(ln) for ln in sample.head_lines[:40]]
    first = next((ln for ln in lines if ln.strip(" ,;\t")), "")
    if first.startswith(("Plate information", "Plate,Repeat")):
        return None  # EnVision Workstation
    titled = any(_TITLE.match(ln.split(",")[0]) for ln in lines)
    head = sample.head.replace("\u00a0", " ")
    kaleido = (
        first.startswith("EnSight Results from")
        or "Kaleido" in head
        or re.search(r"^Barcode:.*PlateRepeat:", head, re.MULTILINE) is not None
        or re.search(r"^Barcode,Repeat,Loop no", head, re.MULTILINE) is not None
    )
    # (a 'Results for …' title alone is not enough: plain grids can have one)
    return "," if titled and kaleido else None


@dataclass
class _Result:
    title: str
    technology: str
    keys: dict[str, str] = field(default_factory=dict)
    cells: list[tuple[int, int, str]] = field(default_factory=list)
    line: int = 0
    analysis: bool = False


def _mode(technology: str) -> ReadMode:
    low = technology.lower()
    if low.startswith("abs") or "absorbance" in low:
        return "absorbance"
    if low.startswith(("lum", "alpha")) or "luminescence" in low:
        return "luminescence"
    if low.startswith(("fi", "fl", "trf", "fp", "htrf")) or "fluorescence" in low:
        return "fluorescence"
    return "other"


def _settings(rows: list[list[str]]) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """(key → value of the information sections, operation name → its settings)."""
    info: dict[str, str] = {}
    operations: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for cells in rows:
        values = [_clean(c) for c in cells]
        if not values or not values[0]:
            if not any(values):
                current = None
            continue
        key = values[0].rstrip(":")
        rest = [v for v in values[1:] if v]
        value = rest[-1] if rest else ""
        if key in ("Tech", "Operation") and value:
            current = operations.setdefault(value, {})
            continue
        if current is not None:
            current[key] = value
        elif value and key not in info:
            info[key] = value
    return info, operations


def _grid(rows: list[list[str]], start: int) -> tuple[list[tuple[int, int, str]], int]:
    """A labelled grid at ``start`` (its column line); returns (cells, next row)."""
    header = rows[start]
    columns = [
        (j, int(c) - 1)
        for j, c in enumerate(_clean(x) for x in header)
        if j >= 1 and c.isascii() and c.isdigit() and 0 < int(c) <= 48
    ]
    cells: list[tuple[int, int, str]] = []
    i = start + 1
    previous = -1
    while i < len(rows) and rows[i] and _clean(rows[i][0]):
        try:
            r = row_index(_clean(rows[i][0]))
        except ValueError:
            break
        if r <= previous:
            break
        row = rows[i]
        cells.extend((r, col, row[j] if j < len(row) else "") for j, col in columns)
        previous = r
        i += 1
    return cells, i


def _is_column_line(cells: list[str]) -> bool:
    values = [_clean(c) for c in cells]
    return len(values) > 2 and not values[0] and values[1] == "1" and values[2] == "2"


def _read(sample: Sample, delimiter: str) -> ExportFile:
    text = sample.text
    source = str(sample.path)
    check_cells(sample.path, count_cells(text, delimiter))
    rows = split_rows(text, delimiter, sample.path)
    trailer = next(
        (_clean(r[0]) for r in reversed(rows) if r and _clean(r[0]).startswith(_TRAILER)), None
    )
    results: list[_Result] = []
    current: _Result | None = None
    reached_after = False
    ended_inside = None
    i = 0
    while i < len(rows):
        cells = rows[i]
        first = _clean(cells[0]) if cells else ""
        if first.startswith(_AFTER_RESULTS) or first.startswith(_TRAILER):
            reached_after = True
            break
        title = _TITLE.match(first)
        if title:
            current = _Result(title=first, technology=title.group("tech"), line=i + 1)
            results.append(current)
            i += 1
            continue
        if first.startswith("Analysis Result"):
            current = _Result(title=first, technology="", line=i + 1, analysis=True)
            results.append(current)
            i += 1
            continue
        if current is not None and first.startswith("Barcode"):
            i = _barcode(rows, i, current)
            continue
        if current is not None and _is_column_line(cells):
            grid, i = _grid(rows, i)
            if current.cells:  # a second grid under one title: a repeat
                current = _Result(
                    title=current.title,
                    technology=current.technology,
                    line=i,
                    analysis=current.analysis,
                )
                results.append(current)
            current.cells = grid
            if i >= len(rows) and (
                not text.endswith(("\n", "\r")) or len({r for r, _, _ in grid}) < _rows_for(grid)
            ):
                ended_inside = f"the {current.title} grid"
            continue
        i += 1
    complete = trailer is not None or (reached_after and text.endswith(("\n", "\r")))
    if not complete:
        raise IncompleteFileError(
            f"Kaleido export ends inside {ended_inside or 'its results'} before its "
            "'Exported with Kaleido' line (truncated or still being written)",
            source=source,
        )
    info, operations = _settings(rows[i:])
    reads: list[PlateRead] = []
    barcode = None
    derived: list[str] = []
    seen: dict[str, int] = {}
    for result in results:
        if result.analysis or not result.cells:
            if result.cells:
                derived.append(result.title)
            continue
        mode = _mode(result.technology)
        settings = _operation(operations, result.technology)
        label = result.technology
        repeat = result.keys.get("PlateRepeat") or result.keys.get("Repeat") or "1"
        if repeat not in ("", "1"):
            label += f" repeat {repeat}"
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            label += f" #{seen[label]}"
        read = grid_to_read(
            result.cells,
            source=source,
            label=label,
            wavelength_nm=_wavelength(mode, settings),
        )
        read.mode = mode
        read.measured_at = info.get("Measurement Started") or info.get("Measurement Date") or None
        reads.append(read)
        barcode = barcode or result.keys.get("Barcode") or None
    if not reads:
        raise FormatError(
            "Kaleido export without measured results"
            + (f" (only {', '.join(derived)[:80]})" if derived else " (settings only)"),
            source=source,
        )
    software = info.get("Software version") or info.get("Software Version")
    if software is None and trailer is not None:
        software = trailer.removeprefix("Exported with").split(" and ")[0].strip()
    return ExportFile(
        format="kaleido",
        plates=[Plate(plate_id=barcode or "Plate 1", reads=reads, barcode=barcode)],
        instrument={
            "model": None,
            "serial": info.get("Instrument Serial Number"),
            "software": software,
        },
        metadata={
            "protocol": info.get("Protocol Name"),
            "plate_type": info.get("Plate Type Name"),
            "measurement_finished": info.get("Measurement Finished"),
            "derived_datasets": derived,
        },
    )


def _rows_for(cells: list[tuple[int, int, str]]) -> int:
    cols = max((c for _, c, _ in cells), default=0) + 1
    for rows, c in ((8, 12), (16, 24), (32, 48)):
        if cols <= c:
            return rows
    return 32


def _barcode(rows: list[list[str]], i: int, result: _Result) -> int:
    """``Barcode: X, PlateRepeat: 1`` (2.0) or a ``Barcode,Repeat,…`` header + values (3.x)."""
    cells = [_clean(c) for c in rows[i]]
    if ":" in cells[0] and cells[0].split(":", 1)[1].strip():
        for cell in cells:
            if ":" in cell:
                key, value = cell.split(":", 1)
                result.keys[key.strip()] = value.strip()
        return i + 1
    if i + 1 < len(rows):
        values = [_clean(c) for c in rows[i + 1]]
        for n, key in enumerate(cells):
            if key and n < len(values):
                result.keys[key] = values[n]
        return i + 2
    return i + 1


def _operation(operations: dict[str, dict[str, str]], technology: str) -> dict[str, str]:
    if technology in operations:
        return operations[technology]
    low = technology.lower()
    return next((v for k, v in operations.items() if k.lower() == low), {})


def _wavelength(mode: ReadMode, settings: dict[str, str]) -> float | None:
    lower = {k.lower(): v for k, v in settings.items()}
    keys = ["emission wavelength [nm]", "excitation wavelength [nm]"]
    if mode == "absorbance":
        keys.reverse()
    for key in keys:
        value, status = parse_cell(lower.get(key, ""))
        if status == "ok":
            return value
    return None


READER: Reader[str] = Reader(
    name="kaleido",
    kind="plate",
    sniff=_sniff,
    read=_read,
    priority=24,
    max_bytes=32 * 1024 * 1024,
    describe="Revvity Kaleido CSV export",
)
