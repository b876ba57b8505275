"""Tecan Magellan xlsx exports: the list layout and the kinetic block layout.

* List: a header row ``Raw data | Well positions | Plate`` (one value column per
  measurement label, named as in the method), one row per well, then the metadata lines
  after the data: ``Date of measurement: 2021-07-06/Time of measurement: 09:43:07``, the
  .mth/.wsp files, the user, the instrument, ``Instrument serial number: …``, per
  measurement ``Measurement mode:``, ``Measurement wavelength: 595 nm``, ``Unit: OD``, and
  ``Meas. temperature: Raw data: 23.4 °C`` (label → temperature). Columns named in the
  temperature lines (or, without them, every numeric column) are reads; the ``Plate``
  column splits the rows into plates.
* Kinetic: one header line per time point,
  ``Wednesday, August 16, 2023: 16:12:40 / 0 sec / 37.1°C``, then rows of repeated
  ``well, v1 … vN`` groups (one value per time point).

Signature: a ``Well positions`` header cell in the first rows, or a first cell of the
kinetic time-point form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from acquisition.formats.base import Reader, Sample
from acquisition.formats.text import grid_to_read
from acquisition.formats.workbook import (
    Cells,
    Rows,
    cell,
    is_blank,
    mode_from,
    number,
    sheets_of,
    well_of,
)
from datamodel import ExportFile, Plate, PlateRead, ReadMode
from errors import FormatError

_TIME_POINT = re.compile(
    r"^(?P<date>.*?):?\s*(?P<clock>[0-9]{1,2}:[0-9]{2}(:[0-9]{2})?(\s*[AP]M)?)\s*/\s*"
    r"(?P<sec>[-+]?[0-9]+(?:[.,][0-9]+)?)\s*s(ec)?\s*(/\s*(?P<temp>[-+]?[0-9]+(?:[.,][0-9]+)?)\s*°\s*C)?\s*$",
    re.IGNORECASE,
)
_TEMPERATURE_LINE = re.compile(r"^Meas\. temperature:\s*(.+?):\s*([-+]?[0-9.,]+)\s*°\s*C", re.I)
_UNITS: dict[str, ReadMode] = {"od": "absorbance", "rfu": "fluorescence", "rlu": "luminescence"}


@dataclass
class _Found:
    layout: str  # "list" | "kinetic"
    sheet: str
    rows: Rows
    header_row: int = 0


def _sniff(sample: Sample) -> _Found | None:
    if not sample.is_zip:
        return None
    for name, rows in sheets_of(sample):
        for i, row in enumerate(rows[:5]):
            if any(c.strip().lower() == "well positions" for c in row):
                return _Found("list", name, rows, i)
        if rows and _TIME_POINT.match(cell(rows[0], 0)):
            return _Found("kinetic", name, rows)
    return None


@dataclass
class _Settings:
    lines: list[str] = field(default_factory=list)
    blocks: list[dict[str, str]] = field(default_factory=list)  # one per measurement
    temperatures: dict[str, float] = field(default_factory=dict)  # label → °C
    info: dict[str, str] = field(default_factory=dict)


def _settings(lines: list[str]) -> _Settings:
    found = _Settings(lines=lines)
    block: dict[str, str] | None = None
    for line in lines:
        match = _TEMPERATURE_LINE.match(line)
        if match:
            temp = number(match.group(2))
            if temp is not None:
                found.temperatures[match.group(1).strip()] = temp
            continue
        if re.match(r"^[A-Za-z]:\\", line) or line.startswith("\\\\"):  # a Windows path
            kind = "method_path" if line.lower().endswith(".mth") else "workspace_path"
            found.info.setdefault(kind, line)
            continue
        when = re.match(r"^Date of measurement:\s*(.*?)\s*/\s*Time of measurement:\s*(.*)$", line)
        if when:
            found.info["measured_at"] = f"{when.group(1)} {when.group(2)}".strip()
            continue
        head, sep, text = line.partition(":")
        key, value = head.strip(), text.strip()
        low = key.lower()
        if low == "measurement mode" or re.fullmatch(r"measurement [0-9]+", low):
            block = {}
            found.blocks.append(block)
        if sep and block is not None and low.startswith(("measurement", "unit", "number of")):
            block.setdefault(low, value)
        elif sep and low == "instrument serial number":
            found.info["serial"] = value
        elif sep and low == "date of measurement":
            found.info["measured_at"] = line.replace("Date of measurement:", "").strip()
        elif sep and value:
            found.info.setdefault(key, value)
        elif line.lower().endswith((".mth", ".wsp")):
            found.info.setdefault("method" if line.lower().endswith(".mth") else "workspace", line)
        elif not sep and mode_from(line) is not None and len(line) < 40:
            found.info.setdefault("mode", line)  # the compact metadata names the mode alone
    if not found.blocks:  # compact metadata (Magellan Pro 7.5): one measurement, no blocks
        compact = {
            "measurement mode": found.info.get("mode", ""),
            "measurement wavelength": found.info.get("Measurement wavelength", ""),
            "unit": found.info.get("Unit", ""),
        }
        if any(compact.values()):
            found.blocks.append(compact)
    # The line after the user names the instrument ('ULTRA', 'Infinite 200', 'Sunrise').
    idx = next(
        (k for k, ln in enumerate(lines) if ln.lower().startswith("instrument serial")), None
    )
    if idx is not None and idx > 0 and ":" not in lines[idx - 1]:
        found.info["model"] = lines[idx - 1]
    return found


def _described_plate(settings: _Settings) -> str | None:
    """'[SUNRISE_Standard] - Greiner 96 Flat' → 'SUNRISE_Standard' (no Plate column)."""
    match = re.match(r"^\[([^\]]+)\]", settings.info.get("Plate Description", ""))
    return match.group(1) if match else None


def _read_mode(block: dict[str, str]) -> ReadMode:
    mode = mode_from(block.get("measurement mode", ""))
    if mode is None:
        mode = _UNITS.get(block.get("unit", "").strip().lower())
    return mode or "absorbance"


def _wavelength(block: dict[str, str]) -> float | None:
    for key in ("measurement wavelength", "emission wavelength", "measurement wavelength 1"):
        if key in block:
            match = re.search(r"[0-9]+(?:[.,][0-9]+)?", block[key])
            if match:
                return number(match.group(0))
    return None


def _read_list(sample: Sample, found: _Found) -> ExportFile:
    rows = found.rows
    header = [c.strip() for c in rows[found.header_row]]
    well_col = next(j for j, h in enumerate(header) if h.lower() == "well positions")
    plate_col = next((j for j, h in enumerate(header) if h.lower() == "plate"), None)
    value_cols = [j for j, h in enumerate(header) if h and j not in (well_col, plate_col)]
    data: list[list[str]] = []
    k = found.header_row + 1
    while k < len(rows) and not cell(rows[k], 0).lower().startswith("date of measurement"):
        data.append(rows[k])
        k += 1
    if k >= len(rows):
        raise FormatError(
            "Magellan list without its 'Date of measurement:' metadata after the data "
            f"(sheet {found.sheet!r}; cut short, or not a Magellan export)",
            source=sample.path,
        )
    settings = _settings(
        [" ".join(c.strip() for c in r if c.strip()) for r in rows[k:] if not is_blank(r)]
    )
    labels = [header[j] for j in value_cols]
    raw = [j for j in value_cols if header[j] in settings.temperatures]
    if not raw:
        raw = value_cols
    by_plate: dict[str, dict[int, Cells]] = {}
    last_plate = ""
    for row in data:
        rc = well_of(cell(row, well_col))
        if rc is None:
            continue
        plate = cell(row, plate_col) if plate_col is not None else ""
        last_plate = plate or last_plate
        columns = by_plate.setdefault(last_plate, {})
        for j in raw:
            columns.setdefault(j, []).append((rc[0], rc[1], row[j] if j < len(row) else ""))
    plates: list[Plate] = []
    for plate_id, columns in by_plate.items():
        reads: list[PlateRead] = []
        for n, j in enumerate(raw):
            cells = columns.get(j, [])
            if not cells:
                continue
            block = settings.blocks[min(n, len(settings.blocks) - 1)] if settings.blocks else {}
            read = grid_to_read(
                cells,
                source=sample.path,
                label=header[j],
                wavelength_nm=_wavelength(block),
                temperature_c=settings.temperatures.get(header[j]),
            )
            read.mode = _read_mode(block)
            read.measured_at = settings.info.get("measured_at")
            reads.append(read)
        if reads:
            plates.append(
                Plate(
                    plate_id=plate_id or _described_plate(settings) or "Plate 1",
                    reads=reads,
                    barcode=plate_id or None,
                )
            )
    if not plates:
        raise FormatError(
            f"Magellan list without well values (sheet {found.sheet!r})", source=sample.path
        )
    metadata: dict[str, Any] = {
        "settings": settings.info,
        "measurements": settings.blocks,
        "derived_datasets": [lb for j, lb in zip(value_cols, labels, strict=True) if j not in raw],
    }
    return ExportFile(
        format="tecan_magellan",
        plates=plates,
        instrument={
            "model": settings.info.get("model"),
            "serial": settings.info.get("serial"),
            "software": "Magellan",
        },
        metadata=metadata,
    )


def _read_kinetic(sample: Sample, found: _Found) -> ExportFile:
    rows = found.rows
    points: list[tuple[float | None, float | None, str]] = []
    k = 0
    while k < len(rows) and (match := _TIME_POINT.match(cell(rows[k], 0))):
        temp = match.group("temp")
        points.append(
            (
                number(match.group("sec")),
                number(temp) if temp else None,
                f"{match.group('date').strip()} {match.group('clock')}".strip(),
            )
        )
        k += 1
    n = len(points)
    series: list[Cells] = [[] for _ in range(n)]
    while k < len(rows):
        row = rows[k]
        j = 0
        while j < len(row):
            rc = well_of(row[j]) if row[j].strip() else None
            if rc is None:
                j += 1
                continue
            values = row[j + 1 : j + 1 + n]
            if not values or well_of(values[0]) is not None:
                j += 1
                continue
            for t in range(n):
                series[t].append((rc[0], rc[1], values[t] if t < len(values) else ""))
            j += 1 + n
        k += 1
    reads: list[PlateRead] = []
    for (time_s, temp, stamp), cells in zip(points, series, strict=True):
        if not cells:
            continue
        read = grid_to_read(
            cells, source=sample.path, label="kinetic", time_s=time_s, temperature_c=temp
        )
        read.measured_at = stamp
        reads.append(read)
    if not reads:
        raise FormatError(
            f"Magellan kinetic sheet {found.sheet!r} has time points but no well values",
            source=sample.path,
        )
    return ExportFile(
        format="tecan_magellan",
        plates=[Plate(plate_id="Plate 1", reads=reads)],
        instrument={"model": None, "serial": None, "software": "Magellan"},
        metadata={"layout": "kinetic", "time_points": len(points)},
    )


def _read(sample: Sample, found: _Found) -> ExportFile:
    if found.layout == "list":
        return _read_list(sample, found)
    return _read_kinetic(sample, found)


READER: Reader[_Found] = Reader(
    name="tecan_magellan",
    kind="plate",
    sniff=_sniff,
    read=_read,
    priority=23,
    max_bytes=32 * 1024 * 1024,
    signature=lambda head: head[:4] == b"PK\x03\x04",
    describe="Tecan Magellan workbook",
)
