"""Agilent BioTek Gen5 xlsx exports: the text layout, one sheet per plate, shifted a column.

Signature: a ``Software Version`` cell in the first rows of a sheet. Each sheet holds the
rows of a Gen5 text export (header, procedure, layout, data tables; column A is usually
empty), so the rows become tab-separated lines and :func:`gen5.parse_gen5_lines` reads
them. Two workbook traps: time cells are Excel serials (openpyxl hands them as dates of
1899-12-31/1900-01-0N), one Gen5 version writes them with a +2-day offset (``2.0104`` for
0:15:00), and the first time cell of a kinetic table may be empty (the first read, at 0).
An xlsx is complete once its zip is: anything short of the plate inside it is a FormatError.
"""

from __future__ import annotations

import datetime as dt
import re

from acquisition.formats.base import Reader, Sample
from acquisition.formats.gen5 import parse_gen5_lines, unindent
from acquisition.formats.workbook import Rows, sheets_of
from datamodel import ExportFile, Plate
from errors import FormatError, IncompleteFileError

_EXCEL_DAY0 = dt.datetime(1899, 12, 31)  # serial 0 as openpyxl shows serials below 60
_STAMP = re.compile(
    r"^(18[0-9]{2}|19[0-9]{2})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?$"
)
_CLOCK = re.compile(r"^([0-9]{1,2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?$")
_DAYS = re.compile(
    r"^([0-9]{1,6}) days?, ([0-9]{1,2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?$"
)  # a timedelta


def _sniff(sample: Sample) -> list[tuple[str, Rows]] | None:
    if not sample.is_zip:
        return None
    found = [
        (name, rows)
        for name, rows in sheets_of(sample)
        if any(c.strip() == "Software Version" for r in rows[:10] for c in r[:3])
    ]
    return found or None


def _serial_seconds(text: str) -> float | None:
    """A time cell as seconds since serial 0: '1900-01-02 00:15:00' → 173700, '0:15:00' → 900."""
    t = text.strip()
    m = _STAMP.match(t)
    if m:
        y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
        stamp = dt.datetime(y, mo, d, h, mi, s)
        return (stamp - _EXCEL_DAY0).total_seconds() + float(m.group(7) or 0)
    m = _CLOCK.match(t)
    if m:
        h, mi, s = (int(g) for g in m.groups()[:3])
        return h * 3600 + mi * 60 + s + float(m.group(4) or 0)
    m = _DAYS.match(t)
    if m:
        d, h, mi, s = (int(g) for g in m.groups()[:4])
        return d * 86400 + h * 3600 + mi * 60 + s + float(m.group(5) or 0)
    try:
        value = float(t)  # a raw serial (days), as a streaming reader hands it
    except ValueError:
        return None
    return value * 86400 if 0 <= value < 2_958_466 else None


def _clock(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _lines(rows: Rows) -> list[str]:
    """The sheet as text lines (tables shifted back to column A), time cells as clocks."""
    lines = unindent(
        [("\t".join(r)).rstrip("\t") if any(c.strip() for c in r) else "" for r in rows]
    )
    out: list[str] = []
    i = 0
    while i < len(lines):
        cells = lines[i].split("\t")
        if cells[0] == "Time" and len(cells) > 2 and not _CLOCK.match(cells[1].strip()):
            table = [i]
            k = i + 1
            while k < len(lines) and lines[k].strip():
                table.append(k)
                k += 1
            out.append(lines[i])
            out.extend(_kinetic_rows([lines[j] for j in table[1:]]))
            i = k
            continue
        if cells[0] == "Date" and len(cells) == 2:  # a date cell: the day is what it says
            lines[i] = f"Date\t{cells[1].strip().removesuffix(' 00:00:00')}"
        if cells[0] == "Time" and len(cells) == 2:  # the header's time of day
            seconds = _serial_seconds(cells[1])
            if seconds is not None and _STAMP.match(cells[1].strip()):
                cells[1] = _clock(seconds % 86400)
            out.append("\t".join(cells))
            i += 1
            continue
        out.append(lines[i])
        i += 1
    return out


def _kinetic_rows(rows: list[str]) -> list[str]:
    """Time cells of a kinetic table as clocks from the first read, offset removed."""
    split = [r.split("\t") for r in rows]
    seconds = [_serial_seconds(c[0]) if c[0].strip() else None for c in split]
    known = [s for s in seconds if s is not None]
    offset = 0.0
    if known and min(known) >= 86400:
        offset = (min(known) // 86400) * 86400  # the +N-day serial offset of some versions
    out = []
    for k, (cells, s) in enumerate(zip(split, seconds, strict=True)):
        if s is None and k == 0 and any(c.strip() for c in cells[1:]):
            s = offset  # the first read's time cell is left empty
        if s is not None:
            cells[0] = _clock(s - offset)
        out.append("\t".join(cells))
    return out


def _read(sample: Sample, sheets: list[tuple[str, Rows]]) -> ExportFile:
    plates: list[Plate] = []
    first: ExportFile | None = None
    for name, rows in sheets:
        try:
            export = parse_gen5_lines(_lines(rows), sample.path, ends_cleanly=True, fmt="gen5_xlsx")
        except IncompleteFileError as exc:  # a finished workbook: nothing more will come
            raise FormatError(f"sheet {name!r}: {exc.message}", source=sample.path) from None
        first = first or export
        plates.extend(export.plates)
    if first is None:
        raise FormatError("Gen5 workbook without plate sheets", source=sample.path)
    first.plates = plates
    first.metadata["sheets"] = [name for name, _ in sheets]
    return first


READER: Reader[list[tuple[str, Rows]]] = Reader(
    name="gen5_xlsx",
    kind="plate",
    sniff=_sniff,
    read=_read,
    priority=11,
    max_bytes=32 * 1024 * 1024,
    signature=lambda head: head[:4] == b"PK\x03\x04",
    describe="BioTek Gen5 workbook",
)
