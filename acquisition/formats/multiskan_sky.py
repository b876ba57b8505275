"""Thermo Multiskan Sky xlsx exports (SkanIt Software for Multiskan Sky).

Sheets: ``Absorbance results`` (``Measurement results …``, the date, ``Kinetic`` or
``Endpoint``, then a ``Reading | A2 | B2 …`` table with one row per reading, or labelled
grids), one ``Raw data <n> nm`` sheet per wavelength (a long table ``Well | Wavelength(s)
[nm] | Raw absorbance | Measurement time(s)`` whose wells are written ``A 2``), ``General
information`` (instrument name, serial number, versions, protocol), ``Plate layout`` and
``Run log``. The raw-data sheets are the reads (one per reading and wavelength, the
reading's time the first well's); without them the results sheet is read.

Signature: a ``Raw data <n> nm`` or ``Absorbance results`` sheet beside ``General
information``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from acquisition.formats.base import Reader, Sample
from acquisition.formats.text import grid_to_read
from acquisition.formats.workbook import Cells, Rows, cell, grid_at, number, sheets_of, well_of
from datamodel import ExportFile, Plate, PlateRead
from errors import FormatError

_RAW_SHEET = re.compile(r"^raw data\s*([0-9]+(?:[.,][0-9]+)?)\s*nm", re.IGNORECASE)


@dataclass
class _Found:
    raw: list[tuple[float | None, Rows]]
    results: Rows | None
    general: Rows


def _sniff(sample: Sample) -> _Found | None:
    if not sample.is_zip:
        return None
    sheets = sheets_of(sample)
    by_name = {name.strip().lower(): rows for name, rows in sheets}
    if "general information" not in by_name or "instrument information" in by_name:
        return None
    raw: list[tuple[float | None, Rows]] = []
    for name, rows in sheets:
        match = _RAW_SHEET.match(name.strip())
        if match:
            raw.append((number(match.group(1)), rows))
    results = by_name.get("absorbance results")
    if not raw and results is None:
        return None
    return _Found(raw, results, by_name["general information"])


def _general(rows: Rows) -> dict[str, str]:
    values: dict[str, str] = {}
    for row in rows:
        texts = [c.strip() for c in row if c.strip()]
        if len(texts) >= 2:
            values.setdefault(texts[0].rstrip(":").strip(), texts[1])
    return values


def _raw_reads(
    wavelength: float | None, rows: Rows, sample: Sample, stamp: str | None
) -> list[PlateRead]:
    header_at = next((i for i, r in enumerate(rows[:20]) if cell(r, 0).lower() == "well"), None)
    if header_at is None:
        return []
    header = [c.strip().lower() for c in rows[header_at]]
    value_col = next(
        (j for j, h in enumerate(header) if "absorbance" in h or h.startswith("raw")), 2
    )
    time_col = next((j for j, h in enumerate(header) if "time" in h), None)
    wl_col = next((j for j, h in enumerate(header) if "wavelength" in h), None)
    seen: dict[tuple[int, int], int] = {}
    readings: list[Cells] = []
    times: list[float | None] = []
    for row in rows[header_at + 1 :]:
        rc = well_of(cell(row, 0))
        if rc is None:
            continue
        k = seen.get(rc, 0)
        seen[rc] = k + 1
        if k == len(readings):
            readings.append([])
            times.append(number(cell(row, time_col)) if time_col is not None else None)
        readings[k].append((rc[0], rc[1], row[value_col] if value_col < len(row) else ""))
        if wavelength is None and wl_col is not None:
            wavelength = number(cell(row, wl_col))
    kinetic = len(readings) > 1
    reads = []
    for k, cells in enumerate(readings):
        read = grid_to_read(
            cells,
            source=sample.path,
            label=f"Raw data {wavelength:g} nm" if wavelength else "Raw data",
            wavelength_nm=wavelength,
            time_s=times[k] if kinetic else None,
        )
        read.measured_at = stamp
        reads.append(read)
    return reads


def _results_reads(
    rows: Rows, sample: Sample, wavelength: float | None, stamp: str | None
) -> list[PlateRead]:
    """The ``Absorbance results`` sheet: a ``Reading | wells`` table, or labelled grids."""
    reads: list[PlateRead] = []
    i = 0
    while i < len(rows):
        row = rows[i]
        if cell(row, 0).lower() == "reading" and well_of(cell(row, 1)) is not None:
            wells = [(j, rc) for j, h in enumerate(row) if (rc := well_of(h)) is not None]
            k = i + 1
            while k < len(rows) and number(cell(rows[k], 0)) is not None:
                cells = [(r, c, rows[k][j] if j < len(rows[k]) else "") for j, (r, c) in wells]
                read = grid_to_read(
                    cells, source=sample.path, label="Absorbance results", wavelength_nm=wavelength
                )
                read.measured_at = stamp
                reads.append(read)
                k += 1
            return reads
        grid = grid_at(rows, i)
        if grid is not None:
            read = grid_to_read(
                grid.cells,
                source=sample.path,
                label=grid.corner or "Absorbance results",
                wavelength_nm=wavelength,
            )
            read.measured_at = stamp
            reads.append(read)
            i = grid.end
            continue
        i += 1
    return reads


def _read(sample: Sample, found: _Found) -> ExportFile:
    general = _general(found.general)
    stamp = general.get("Execution time")
    reads: list[PlateRead] = []
    for wavelength, rows in found.raw:
        reads.extend(_raw_reads(wavelength, rows, sample, stamp))
    source = "raw data"
    if not reads and found.results is not None:
        wl = number(general.get("Wavelength(s) [nm]", "").split(",")[0])
        reads = _results_reads(found.results, sample, wl, stamp)
        source = "absorbance results"
    if not reads:
        raise FormatError(
            "Multiskan Sky workbook without readings (expected a 'Raw data <n> nm' long "
            "table or an 'Absorbance results' table)",
            source=sample.path,
        )
    metadata: dict[str, Any] = {"general": general, "read_from": source}
    version = general.get("Version")
    return ExportFile(
        format="multiskan_sky",
        plates=[Plate(plate_id="Plate 1", reads=reads)],
        instrument={
            "model": general.get("Name"),
            "serial": general.get("Serial number"),
            "software": f"SkanIt Software for Multiskan Sky {version}"
            if version
            else "SkanIt Software",
        },
        metadata=metadata,
    )


READER: Reader[_Found] = Reader(
    name="multiskan_sky",
    kind="plate",
    sniff=_sniff,
    read=_read,
    priority=24,
    max_bytes=32 * 1024 * 1024,
    signature=lambda head: head[:4] == b"PK\x03\x04",
    describe="Thermo Multiskan Sky workbook",
)
