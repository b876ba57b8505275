"""PerkinElmer (Revvity) EnVision Workstation CSV exports.

Signature: the first line is ``Plate information`` (or, when the export places the plate
information at the end of each plate, a ``Plate,Repeat,Barcode,…`` line or the
``Exported with EnVision Workstation`` trailer in the head).

One read per ``Plate information`` block: a header line ``Plate,Repeat,Barcode,Measured
height,…,Label,ScanX,ScanY,Measinfo,Kinetics,Measurement date`` and one line of values
(``Barcode`` written as ``="…"``). Blocks whose header has ``Formula`` instead of
``Label`` belong to calculated results. Each block is followed (or, with ``Place plate
information at … End of plate``, preceded) by its results: a titled labelled grid
(``Results for A450(1) - channel 1 (A)``, ``,01,02,…`` then ``A,…``; rows that were not
read can be left out), an untitled labelled grid, or — export format ``Plate2`` — a bare
matrix without row or column labels (8×12, 16×24, 32×48). ``Calculated results: …``
grids are EnVision calculations: listed in the metadata, never read as raw data.

The read mode comes from ``Measinfo`` (``De=USLum`` luminescence; an excitation without an
emission (``Ex=Btm Em=N/A``) absorbance; both fluorescence; an emission only
luminescence/Alpha) and then from label keywords. Wavelengths come from the ``Labels:``
and ``Filters:`` sections at the end (``Excitation wavelength``, ``Exc. filter``/``Ems.
filter`` and their ``CWL=…nm``), or from the label (``A450``).

Complete vs incomplete: the export ends with ``Exported with EnVision Workstation
version …``; without that line a file that ends inside a grid, or after a ``Plate
information`` block whose results have not been written, is still being written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from acquisition.formats.base import Reader, Sample, check_cells, count_cells
from acquisition.formats.grid import split_rows
from acquisition.formats.text import (
    grid_to_read,
    is_number,
    numbered_columns,
    parse_cell,
    wavelength_from_label,
)
from datamodel import PLATE_FORMATS, ExportFile, Plate, PlateRead, ReadMode, row_index
from errors import FormatError, IncompleteFileError

_TRAILER = "Exported with EnVision"
_END_SECTIONS = (
    "Protocol information",
    "Platemap:",
    "Calculations:",
    "Auto export parameters:",
    "Operations:",
    "Labels:",
    "Filters:",
    "Instrument:",
    "Normalization:",
    _TRAILER,
)
_SKIPPED_SECTIONS = ("Background information", "Basic assay information", "Error", "Warning")
_CHANNEL = re.compile(r"channel\s+([0-9]+)", re.IGNORECASE)
_CWL = re.compile(r"(?:CWL|Longpass)\s*=\s*([0-9]+(?:\.[0-9]+)?)\s*nm", re.IGNORECASE)
_NM = re.compile(r"([0-9]+(?:[.,][0-9]+)?)\s*nm")
_MEASINFO = re.compile(r"\b(De|Ex|Em)=(\S+)")


def _sniff(sample: Sample) -> str | None:
    """The delimiter when the head looks like an EnVision export, else None."""
    lines = sample.head_lines
    first = next((ln.strip() for ln in lines[:20] if ln.strip(" ,;\t")), "")
    first = first.lstrip("\ufeff")
    head = sample.head
    if len(lines) == 1 and len(first) >= 5 and "Plate information".startswith(first):
        return ","  # cut inside its first line: an export being written (read says so)
    if not (
        first.startswith("Plate information")
        or re.search(r"^Plate[,;\t]Repeat[,;\t]Barcode", head, re.MULTILINE)
        or _TRAILER in head
    ):
        return None
    for line in lines[:200]:
        if line.startswith("Plate") and "Barcode" in line:
            return max((",", ";", "\t"), key=line.count)
    return ","


@dataclass
class _Grid:
    title: str
    cells: list[tuple[int, int, str]]
    line: int
    shape: tuple[int, int]


@dataclass
class _Settings:
    """What the sections after the data say (plate type, labels, filters, instrument)."""

    placement_end: bool = False
    plate_shape: tuple[int, int] | None = None
    labels: dict[str, dict[str, str]] = field(default_factory=dict)
    filters: dict[str, float] = field(default_factory=dict)
    instrument: dict[str, str] = field(default_factory=dict)
    software: str | None = None
    assay: dict[str, str] = field(default_factory=dict)


def _key_value(cells: list[str]) -> tuple[str, str]:
    values = [c.strip() for c in cells[1:] if c.strip()]
    return cells[0].strip().rstrip(":").strip(), values[-1] if values else ""


def _settings(rows: list[list[str]]) -> _Settings:
    out = _Settings()
    section = ""
    block_name = ""
    for cells in rows:
        first = cells[0].strip() if cells else ""
        if not first:
            block_name = ""
            continue
        if first.startswith(_TRAILER):
            out.software = "EnVision Workstation " + first.split("version", 1)[-1].strip()
            continue
        if (first.endswith(":") and not any(c.strip() for c in cells[1:])) or first in (
            "Basic assay information",
            "Protocol information",
        ):
            section = first
            block_name = ""
            continue
        key, value = _key_value(cells)
        if section == "Auto export parameters:" and key == "Place plate information at":
            out.placement_end = value.lower().startswith("end")
        elif section == "Plate type:" and key in ("Number of rows", "Number of columns"):
            number = value.strip()
            if number.isascii() and number.isdigit():
                rows_, cols_ = out.plate_shape or (0, 0)
                shape = (int(number), cols_) if key == "Number of rows" else (rows_, int(number))
                out.plate_shape = shape
        elif section in ("Labels:", "Filters:"):
            if not block_name:
                block_name = key
                if section == "Labels:":
                    out.labels[block_name] = {}
                continue
            if section == "Labels:":
                out.labels[block_name][key] = value
            elif key == "Description" and (m := _CWL.search(value)):
                out.filters[block_name] = float(m.group(1))
        elif section == "Instrument:":
            out.instrument[key] = value
        elif section == "Basic assay information":
            out.assay[key] = value.strip('="')
    if out.plate_shape not in PLATE_FORMATS.values():
        out.plate_shape = None  # only a standard plate is believed (never sized from text)
    return out


def _shape_for(cols: int) -> tuple[int, int]:
    for shape in ((8, 12), (16, 24), (32, 48)):
        if cols <= shape[1]:
            return shape
    return (32, 48)


def _numeric_line(cells: list[str], comma: bool) -> bool:
    values = [c for c in cells if c.strip()]
    return bool(values) and all(is_number(c, decimal_comma=comma) for c in values)


def _bare_width(cells: list[str]) -> int:
    width = len(cells)
    while width and not cells[width - 1].strip():
        width -= 1
    return width


class _Scan:
    """The data part of the file (up to the protocol sections), as infos and grids."""

    def __init__(self, rows: list[list[str]], settings: _Settings, comma: bool, sample: Sample):
        self.rows = rows
        self.settings = settings
        self.comma = comma
        self.sample = sample
        self.events: list[tuple[str, object]] = []
        self.ended_inside: str | None = None  # what the text ends inside, if it does
        self.reached_end_sections = False  # the protocol/settings sections after the data

    def run(self) -> None:
        rows = self.rows
        i = 0
        title = ""
        while i < len(rows):
            cells = rows[i]
            first = cells[0].strip() if cells else ""
            if first.startswith(_END_SECTIONS):
                self.reached_end_sections = True
                return
            if first.startswith("Plate information"):
                i = self._info(i)
                title = ""
                continue
            if first.startswith(_SKIPPED_SECTIONS):
                i += 1
                while i < len(rows) and any(c.strip() for c in rows[i]):
                    i += 1
                continue
            if first.startswith(("Results for", "Calculated results")):
                title = first
                i += 1
                continue
            columns = numbered_columns(cells)
            if columns is not None:
                i = self._labelled(i, columns, title)
                title = ""
                continue
            if _numeric_line(cells if first else cells[1:], self.comma) and any(
                c.strip() for c in cells
            ):
                i = self._bare(i, title)
                title = ""
                continue
            i += 1

    def _info(self, i: int) -> int:
        rows = self.rows
        j = i + 1
        if j >= len(rows) or j + 1 >= len(rows):
            self.ended_inside = "a Plate information block"
            return len(rows)
        keys = [c.strip() for c in rows[j]]
        values = [c.strip() for c in rows[j + 1]]
        if not any(values):
            self.ended_inside = "a Plate information block"
        info = {k: (values[n] if n < len(values) else "") for n, k in enumerate(keys) if k}
        self.events.append(("info", info))
        return j + 2

    def _labelled(self, i: int, columns: list[tuple[int, int]], title: str) -> int:
        rows = self.rows
        cells3: list[tuple[int, int, str]] = []
        j = i + 1
        previous = -1
        while j < len(rows) and rows[j] and rows[j][0].strip():
            try:
                r = row_index(rows[j][0])
            except ValueError:
                break
            if r <= previous:
                break
            row = rows[j]
            cells3.extend((r, col, row[k] if k < len(row) else "") for k, col in columns)
            previous = r
            j += 1
        cols = columns[-1][1] + 1
        shape = self.settings.plate_shape or _shape_for(cols)
        if j >= len(rows) and (previous + 1 < shape[0] or not self._ends_cleanly()):
            self.ended_inside = f"the {title or 'results'} grid"
        self.events.append(("grid", _Grid(title, cells3, i + 1, shape)))
        return j

    def _bare(self, i: int, title: str) -> int:
        rows = self.rows
        lead = 0 if rows[i][0].strip() else 1  # some exports start each line with a ','
        width = _bare_width(rows[i]) - lead
        shape = self.settings.plate_shape or _shape_for(width)
        cells3: list[tuple[int, int, str]] = []
        j = i
        r = 0
        while j < len(rows) and r < shape[0]:
            row = rows[j][lead:]
            if any(c.strip() for c in row) and not _numeric_line(row, self.comma):
                break
            if any(c.strip() for c in row) or self._more_numbers_follow(j):
                cells3.extend((r, c, row[c]) for c in range(min(len(row), shape[1])))
                r += 1
                j += 1
                continue
            break
        if j >= len(rows) and (r < shape[0] or not self._ends_cleanly()):
            self.ended_inside = f"the {title or 'results'} matrix"
        self.events.append(("grid", _Grid(title, cells3, i + 1, shape)))
        return j

    def _more_numbers_follow(self, j: int) -> bool:
        """An empty line inside a bare matrix (a row not read) is followed by more rows."""
        for row in self.rows[j + 1 : j + 33]:
            if any(c.strip() for c in row):
                return _numeric_line(row, self.comma)
        return False

    def _ends_cleanly(self) -> bool:
        return self.sample.text.endswith(("\n", "\r"))


def _mode(measinfo: str, label: str) -> ReadMode:
    parts = {k: v for k, v in _MEASINFO.findall(measinfo)}
    de, ex, em = parts.get("De", ""), parts.get("Ex", "N/A"), parts.get("Em", "N/A")
    if "lum" in de.lower():
        return "luminescence"
    if parts:
        if ex != "N/A" and em != "N/A":
            return "fluorescence"
        if ex != "N/A":
            return "absorbance"
        if em != "N/A":
            return "luminescence"
    low = label.lower()
    if "abs" in low or re.match(r"^(a|od)\s?[0-9]{3}", low):
        return "absorbance"
    if "lum" in low or "alpha" in low:
        return "luminescence"
    if re.search(r"fluo|\bfi\b|\bfp\b|trf|htrf|lance|delfia|fret", low):
        return "fluorescence"
    return "other"


def _wavelength(mode: ReadMode, label: str, channel: int, settings: _Settings) -> float | None:
    base = re.sub(r"\([0-9]+\)\s*$", "", label).strip()
    entry = settings.labels.get(base, {})

    def filter_cwl(key: str) -> float | None:
        return settings.filters.get(entry.get(key, ""))

    if mode == "absorbance":
        for key in ("Excitation wavelength", "Wavelength"):
            if m := _NM.search(entry.get(key, "")):
                return float(m.group(1).replace(",", "."))
        return filter_cwl("Exc. filter") or wavelength_from_label(base)
    if mode in ("fluorescence", "luminescence"):
        key = "2nd ems. filter" if channel == 2 else "Ems. filter"
        if (cwl := filter_cwl(key)) is not None:
            return cwl
        if m := _NM.search(entry.get("Emission wavelength", "")):
            return float(m.group(1).replace(",", "."))
    return None


def _barcode(text: str) -> str | None:
    value = text.strip()
    if value.startswith("="):
        value = value[1:]
    value = value.strip('"').strip()
    return value or None


def _read(sample: Sample, delimiter: str) -> ExportFile:
    text = sample.text
    source = str(sample.path)
    check_cells(sample.path, count_cells(text, delimiter))
    rows = split_rows(text, delimiter, sample.path)
    comma = delimiter != ","
    settings = _settings(rows)
    trailer = settings.software is not None
    scan = _Scan(rows, settings, comma, sample)
    scan.run()
    # EnVision Workstation (1.12-1.14) ends every export with its 'Exported with' line.
    # Without it, the data part is whole only if the settings sections after it began and
    # the text ends at a line break (a cut there loses settings, never values).
    complete = trailer or (scan.reached_end_sections and text.endswith(("\n", "\r")))
    if not complete:
        where = scan.ended_inside or "its data, before the sections that follow the plates"
        raise IncompleteFileError(
            f"EnVision export ends inside {where} (truncated or still being written)",
            source=source,
        )
    pairs = _pair(scan.events, settings.placement_end)
    plates: dict[tuple[str, str | None], list[PlateRead]] = {}
    derived: list[str] = []
    seen: dict[tuple[str, str | None], dict[str, int]] = {}
    for info, grid in pairs:
        label = info.get("Label", "")
        calculated = "Formula" in info or grid.title.startswith("Calculated results")
        if calculated or not label:
            derived.append(grid.title or info.get("Formula", "calculated results"))
            continue
        if not grid.cells:
            continue
        measinfo = info.get("Measinfo", info.get("MeasInfo", ""))
        channel_match = _CHANNEL.search(grid.title)
        if channel_match:
            channel = int(channel_match.group(1))
        else:
            channel = 2 if "De=2nd" in measinfo else 1
        mode = _mode(measinfo, label)
        name = f"{label} channel {channel}"
        repeat = info.get("Repeat", "1")
        if repeat not in ("", "1"):
            name += f" repeat {repeat}"
        key = (info.get("Plate", "1") or "1", _barcode(info.get("Barcode", "")))
        count = seen.setdefault(key, {})
        count[name] = count.get(name, 0) + 1
        if count[name] > 1:
            name += f" #{count[name]}"
        temperature, status = parse_cell(
            info.get("Chamber temperature at start", info.get("Inside temperature at start", ""))
        )
        read = grid_to_read(
            grid.cells,
            source=source,
            rows=grid.shape[0],
            cols=grid.shape[1],
            decimal_comma=comma,
            label=name,
            wavelength_nm=_wavelength(mode, label, channel, settings),
            temperature_c=temperature if status == "ok" else None,
        )
        read.mode = mode
        read.measured_at = info.get("Measurement date") or None
        plates.setdefault(key, []).append(read)
    if not plates:
        if derived:
            raise FormatError(
                "EnVision export holds only calculated results "
                f"({', '.join(derived)[:120]}): export the measured labels",
                source=source,
            )
        raise FormatError("EnVision export without results (settings only)", source=source)
    serial = settings.instrument.get("Serial number") or settings.assay.get("Serial#")
    return ExportFile(
        format="envision",
        plates=[
            Plate(plate_id=f"Plate {number}", reads=reads, barcode=barcode)
            for (number, barcode), reads in plates.items()
        ],
        instrument={
            "model": "EnVision",
            "serial": serial or None,
            "software": settings.software or "EnVision Workstation",
        },
        metadata={
            "assay": settings.assay,
            "instrument_nickname": settings.instrument.get("Nickname"),
            "derived_datasets": sorted(set(derived)),
            "plate_information_at_end": settings.placement_end,
            "trailer": trailer,
        },
    )


def _pair(events: list[tuple[str, object]], at_end: bool) -> list[tuple[dict[str, str], _Grid]]:
    """Each grid with its Plate information (before it, or after it for 'End of plate')."""
    pairs: list[tuple[dict[str, str], _Grid]] = []
    infos = [(k, e) for k, (kind, e) in enumerate(events) if kind == "info"]
    for k, (kind, event) in enumerate(events):
        if kind != "grid" or not isinstance(event, _Grid):
            continue
        before = [e for n, e in infos if n < k]
        after = [e for n, e in infos if n > k]
        chosen = (after[:1] or before[-1:]) if at_end else (before[-1:] or after[:1])
        if chosen and isinstance(chosen[0], dict):
            pairs.append((chosen[0], event))
    return pairs


READER: Reader[str] = Reader(
    name="envision",
    kind="plate",
    sniff=_sniff,
    read=_read,
    priority=22,
    max_bytes=32 * 1024 * 1024,
    describe="PerkinElmer EnVision CSV export",
)
