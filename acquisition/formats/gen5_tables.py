"""The data tables of a Gen5 export, each found at its header line.

* Grids (``<TAB>1<TAB>2 …`` then rows ``A``, ``B`` …): one or several datasets, the last
  column naming each row's dataset (``abs450:450``, ``Blank 450``, ``[Concentration]``);
  continuation rows of a well row start with an empty cell.
* Series with one column per well (``Time<TAB>T° 450<TAB>A1<TAB>A2 …`` for kinetic reads,
  ``Wavelength<TAB>A1 …`` for spectral scans), one row per time point or wavelength.
* The same series transposed ("row-wise" export): ``Time<TAB>0:00:00<TAB>0:01:00 …``, an
  optional ``T° 450`` row, then one row per well.
* Well tables (``Well<TAB>Well ID<TAB>…<TAB>450<TAB>Blank 450``), one row per well.

Each reader returns the index of the first line after its table and hands every dataset
it found to :class:`Collector`, which keeps raw reads and lists derived datasets.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from acquisition.formats.gen5_procedure import Procedure, classify
from acquisition.formats.text import grid_to_read, parse_cell, parse_clock
from datamodel import PLATE_FORMATS, PlateRead, parse_well, row_index
from errors import IncompleteFileError

Cells = list[tuple[int, int, str]]


def looks_like_well(text: str) -> bool:
    try:
        parse_well(text)
    except ValueError:
        return False
    return True


def is_grid_header(cells: list[str]) -> bool:
    if len(cells) < 2 or cells[0].strip():
        return False
    numbers = [c.strip() for c in cells[1:] if c.strip()]
    return bool(numbers) and numbers == [str(n) for n in range(1, len(numbers) + 1)]


def axis_value(kind: str, text: str) -> float | None:
    """A series' row key: a clock for time (``0:15:00``, ``0:00.210``), nm for wavelength."""
    if kind == "time":
        return parse_clock(text)
    value, status = parse_cell(text, decimal_comma=False)
    return value if status == "ok" else None


@dataclass
class Collector:
    """The reads and derived datasets of one plate, and where the export may be cut."""

    source: Path
    proc: Procedure
    plate_type: str
    measured_at: str | None
    ends_cleanly: bool
    reads: list[PlateRead] = field(default_factory=list)
    derived: list[str] = field(default_factory=list)
    aborted: bool = False

    def shape(self, cells: Cells) -> tuple[int, int] | None:
        """The plate format the plate type names ("96 WELL PLATE"), if every well fits."""
        max_row = max(r for r, _, _ in cells)
        max_col = max(c for _, c, _ in cells)
        for wells in re.findall(r"(?<![0-9])([0-9]{1,4})(?![0-9])", self.plate_type):
            shape = PLATE_FORMATS.get(int(wells))
            if shape is not None and max_row < shape[0] and max_col < shape[1]:
                return shape
        return None

    def truncated(self, what: str) -> IncompleteFileError:
        return IncompleteFileError(
            f"Gen5 export ends inside {what} (truncated or still being written)",
            source=self.source,
        )

    def add(self, label: str, cells: Cells, **meta: object) -> None:
        """One dataset: a read if its label names a measurement, else a derived dataset."""
        found = classify(label, self.proc)
        if found is None or not cells:
            if label not in self.derived:
                self.derived.append(label)
            return
        shape = self.shape(cells)
        read = grid_to_read(
            cells,
            source=self.source,
            rows=shape[0] if shape else None,
            cols=shape[1] if shape else None,
            label=label,
            wavelength_nm=meta.pop("wavelength_nm", found.wavelength_nm),  # type: ignore[arg-type]
            **meta,  # type: ignore[arg-type]
        )
        read.mode = found.mode
        read.measured_at = self.measured_at
        self.reads.append(read)


def read_grid(lines: list[str], start: int, title: str, out: Collector) -> int:
    """A grid of one or several datasets; returns the index of the first line after it."""
    ncols = len([c for c in lines[start].split("\t")[1:] if c.strip()])
    datasets: dict[str, Cells] = {}
    row = -1
    i = start + 1
    while i < len(lines):
        cells = lines[i].split("\t")
        first = cells[0].strip()
        if not lines[i].strip():
            break
        if first:
            try:
                row = row_index(first)
            except ValueError:
                break
        elif row < 0:
            break
        if len(cells) < ncols + 1 and i == len(lines) - 1 and not out.ends_cleanly:
            raise out.truncated(f"the {title or 'data'} grid")
        label = cells[ncols + 1].strip() if len(cells) > ncols + 1 else ""
        label = label or title or "Results"
        target = datasets.setdefault(label, [])
        for c in range(ncols):
            target.append((row, c, cells[c + 1] if c + 1 < len(cells) else ""))
        i += 1
    if i >= len(lines):
        # A grid that runs into the end of the file is complete only if every row of the
        # plate is there (an export cut at a line end looks clean otherwise).
        shape = out.shape([(row if row >= 0 else 0, max(ncols - 1, 0), "")])
        if not out.ends_cleanly or (out.proc.full_plate and shape and row + 1 < shape[0]):
            raise out.truncated(f"the {title or 'data'} grid")
    if title.strip().lower() in ("layout", "procedure details"):
        return i
    for label, wells in datasets.items():
        out.add(label, wells)
    return i


def _temperature(text: str) -> float | None:
    value, status = parse_cell(text)
    return value if status == "ok" else None


def _is_temperature_name(text: str) -> bool:
    t = text.strip()
    return (
        t.startswith("T")
        and not looks_like_well(t)
        and ("°" in t or "∞" in t or "\ufffd" in t or t.lower().startswith(("t ", "temp")))
    )


def read_series(lines: list[str], start: int, title: str, out: Collector) -> int:
    """``Time|Wavelength<TAB>[T° …<TAB>]A1<TAB>A2 …``: one row per time point or wavelength."""
    header = lines[start].split("\t")
    kind = "time" if header[0].strip() == "Time" else "wavelength"
    temp_col = next((j for j, h in enumerate(header) if j > 0 and _is_temperature_name(h)), None)
    wells = [(j, parse_well(h)) for j, h in enumerate(header) if j > 0 and looks_like_well(h)]
    label = title or ("kinetic" if kind == "time" else "spectrum")
    rows = 0
    i = start + 1
    while i < len(lines) and lines[i].strip():
        cells = lines[i].split("\t")
        rows += 1
        key = axis_value(kind, cells[0])
        if key is None and kind == "time" and not cells[0].strip() and i == start + 1:
            key = 0.0  # the first time cell is left empty by some exports: the first read
        if key is None:
            break
        if len(cells) < len(header) and i == len(lines) - 1 and not out.ends_cleanly:
            raise out.truncated(f"the {label} table")
        if not any(cells[j].strip() for j, _ in wells if j < len(cells)):
            out.aborted = True  # aborted runs pad the table with empty 0:00:00 rows
            i += 1
            continue
        tokens = [(r, c, cells[j] if j < len(cells) else "") for j, (r, c) in wells]
        temp = (
            _temperature(cells[temp_col])
            if temp_col is not None and temp_col < len(cells)
            else None
        )
        if kind == "time":
            out.add(label, tokens, time_s=key, temperature_c=temp)
        else:
            out.add(label, tokens, wavelength_nm=key, temperature_c=temp)
        i += 1
    expected = out.proc.kinetic_reads if kind == "time" else None
    if i >= len(lines) and (not out.ends_cleanly or (expected and rows < expected)):
        raise out.truncated(f"the {label} table")
    return i


def read_series_by_well(lines: list[str], start: int, title: str, out: Collector) -> int:
    """``Time<TAB>0:00:00<TAB>0:01:00 …``, an optional ``T° …`` row, then a row per well."""
    header = lines[start].split("\t")
    kind = "time" if header[0].strip() == "Time" else "wavelength"
    keys = [(j, axis_value(kind, h)) for j, h in enumerate(header) if j > 0 and h.strip()]
    label = title or ("kinetic" if kind == "time" else "spectrum")
    temps: dict[int, float | None] = {}
    series: dict[int, Cells] = {j: [] for j, _ in keys}
    i = start + 1
    while i < len(lines) and lines[i].strip():
        cells = lines[i].split("\t")
        name = cells[0].strip()
        if _is_temperature_name(name):
            temps = {j: _temperature(cells[j]) if j < len(cells) else None for j, _ in keys}
        elif looks_like_well(name):
            if len(cells) < len(header) and i == len(lines) - 1 and not out.ends_cleanly:
                raise out.truncated(f"the {label} table")
            r, c = parse_well(name)
            for j, _ in keys:
                series[j].append((r, c, cells[j] if j < len(cells) else ""))
        else:
            break
        i += 1
    if i >= len(lines) and not out.ends_cleanly:
        raise out.truncated(f"the {label} table")
    for j, key in keys:
        wells = series[j]
        if key is None or not any(t.strip() for _, _, t in wells):
            out.aborted = out.aborted or key is not None
            continue
        if kind == "time":
            out.add(label, wells, time_s=key, temperature_c=temps.get(j))
        else:
            out.add(label, wells, wavelength_nm=key, temperature_c=temps.get(j))
    return i


def read_well_table(lines: list[str], start: int, out: Collector) -> int:
    """``Well<TAB>Well ID<TAB>Conc/Dil<TAB>450<TAB>Blank 450 …``: one row per well."""
    header = [h.strip() for h in lines[start].split("\t")]
    columns: dict[int, Cells] = {j: [] for j, h in enumerate(header) if j > 0 and h}
    i = start + 1
    while i < len(lines) and lines[i].strip():
        cells = lines[i].split("\t")
        if not looks_like_well(cells[0]):
            break
        if len(cells) < len(header) and i == len(lines) - 1 and not out.ends_cleanly:
            raise out.truncated("the well table")
        r, c = parse_well(cells[0])
        for j in columns:
            columns[j].append((r, c, cells[j] if j < len(cells) else ""))
        i += 1
    if i >= len(lines) and not out.ends_cleanly:
        raise out.truncated("the well table")
    for j, wells in columns.items():
        if header[j].lower() in ("well id", "conc/dil", "well", "sample", "name"):
            continue
        out.add(header[j], wells)
    return i


TableReader = Callable[[list[str], int, str, Collector], int]


def table_at(lines: list[str], i: int) -> TableReader | None:
    """The reader of the table whose header is ``lines[i]``, if it is one."""
    cells = lines[i].split("\t")
    first = cells[0].strip()
    if is_grid_header(cells):
        return read_grid
    if first in ("Time", "Wavelength") and len(cells) > 1:
        if any(looks_like_well(c) for c in cells[1:]):
            return read_series
        kind = "time" if first == "Time" else "wavelength"
        keys = [c for c in cells[1:] if c.strip()]
        below = lines[i + 1].split("\t")[0] if i + 1 < len(lines) else ""
        if (
            keys
            and all(axis_value(kind, c) is not None for c in keys)
            and (looks_like_well(below) or _is_temperature_name(below))
        ):
            return read_series_by_well
    if first == "Well" and len(cells) > 1 and i + 1 < len(lines):
        if looks_like_well(lines[i + 1].split("\t")[0]):
            return lambda ls, k, _title, out: read_well_table(ls, k, out)
    return None
