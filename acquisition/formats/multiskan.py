"""Thermo Multiskan / SkanIt text exports (Multiskan Spectrum, Ascent, EX; SkanIt 2.x).

Layout: ``Results of Photometric1`` (the step), then per plate and wavelength a line
``Plate:1 - Wavelength:340`` and, for kinetic runs, one ``Iteration: n`` line per reading,
each followed by a headerless block of 8 (or 16) rows × 12 (or 24) cells. The text is
tab-aligned: a short number is followed by two tabs so the columns line up, so a row is
split on runs of tabs, never on single tabs. Unread rows are rows of bare tabs; ``NaN``
marks a well without a value.

A block cut short at the end of the file (fewer rows than its plate has, or a last line
without its line end) is a file still being written; a file of only the title is too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from acquisition.formats.base import Reader, Sample
from acquisition.formats.text import grid_to_read, is_number
from datamodel import ExportFile, Plate, PlateRead
from errors import FormatError, IncompleteFileError

_TITLE = re.compile(r"^\s*Results of\s+(.+?)\s*$", re.IGNORECASE)
_PLATE = re.compile(
    r"^\s*Plate:\s*(?P<plate>[^\s-][^-]*?)\s*-\s*Wavelength:\s*(?P<wl>[0-9]+(?:[.,][0-9]+)?)"
    r"(?:\s*/\s*(?P<em>[0-9]+(?:[.,][0-9]+)?))?",
    re.IGNORECASE,
)
_ITERATION = re.compile(r"^\s*Iteration:\s*([0-9]+)\s*$", re.IGNORECASE)
_TABS = re.compile(r"\t+")


def _sniff(sample: Sample) -> bool | None:
    lines = [ln for ln in sample.head_lines[:10] if ln.strip()]
    if (
        lines
        and _TITLE.match(lines[0])
        and (len(lines) == 1 or any(_PLATE.match(ln) for ln in lines[1:4]))
    ):
        return True
    return None


@dataclass
class _Block:
    plate: str
    wavelength: float | None
    iteration: int | None
    rows: list[list[str]] = field(default_factory=list)
    start_line: int = 0


def _cells(line: str) -> list[str] | None:
    """A data row's cells (None when the line is not a data row)."""
    if (
        not line.startswith("\t")
        and not line[:1].isdigit()
        and not line.strip().lower().startswith("nan")
    ):
        return None
    body = line.strip("\t\r\n ")
    tokens = [t.strip() for t in _TABS.split(body)] if body else []
    if any(
        t and not is_number(t) and t.lower() not in ("nan", "over", "ovrflw", "under")
        for t in tokens
    ):
        return None
    return tokens


def _read(sample: Sample, _found: bool) -> ExportFile:
    text = sample.text
    lines = text.splitlines()
    ends_cleanly = text.endswith(("\n", "\r"))
    title = ""
    plate, wavelength = "1", None
    blocks: list[_Block] = []
    current: _Block | None = None
    for n, line in enumerate(lines, start=1):
        if not line.strip(" \r\n"):  # a row of bare tabs is an unread plate row, not a gap
            if current is not None and current.rows:
                current = None
            continue
        if (m := _TITLE.match(line)) and not title:
            title = m.group(1)
            continue
        if m := _PLATE.match(line):
            plate, wavelength = m.group("plate").strip(), float(m.group("wl").replace(",", "."))
            current = _Block(plate, wavelength, None, start_line=n)
            blocks.append(current)
            continue
        if m := _ITERATION.match(line):
            if current is not None and not current.rows and current.iteration is None:
                current.iteration = int(m.group(1))
            else:
                current = _Block(plate, wavelength, int(m.group(1)), start_line=n)
                blocks.append(current)
            continue
        cells = _cells(line)
        if cells is None:
            raise FormatError(
                f"line {n}: expected a 'Plate:', 'Iteration:' or data row of the Multiskan "
                f"export, found {line.strip()[:40]!r}",
                source=sample.path,
            )
        if current is None:
            current = _Block(plate, wavelength, None, start_line=n)
            blocks.append(current)
        current.rows.append(cells)
    if not any(b.rows for b in blocks):
        raise IncompleteFileError(
            "Multiskan export without data blocks yet (truncated or still being written)",
            source=sample.path,
        )
    reads_by_plate: dict[str, list[PlateRead]] = {}
    iterations = {b.iteration for b in blocks if b.iteration is not None}
    for k, block in enumerate(blocks):
        last = k == len(blocks) - 1
        rows = 16 if len(block.rows) > 8 or any(len(r) > 12 for r in block.rows) else 8
        cols = 24 if rows == 16 else 12
        if last and (len(block.rows) < rows or not ends_cleanly):
            raise IncompleteFileError(
                f"Multiskan export ends inside the block of line {block.start_line} "
                "(truncated or still being written)",
                source=sample.path,
            )
        if len(block.rows) != rows or any(len(r) > cols for r in block.rows):
            raise FormatError(
                f"line {block.start_line}: a block of {len(block.rows)} rows, expected "
                f"{rows} rows of at most {cols} values",
                source=sample.path,
            )
        wells = [(r, c, tok) for r, row in enumerate(block.rows) for c, tok in enumerate(row)]
        label = f"{title or 'Photometric'} {block.wavelength:g} nm" if block.wavelength else title
        if len(iterations) > 1 and block.iteration is not None:
            label = f"{label} iteration {block.iteration}"
        read = grid_to_read(
            wells or [(0, 0, "")],
            source=sample.path,
            rows=rows,
            cols=cols,
            label=label,
            wavelength_nm=block.wavelength,
        )
        reads_by_plate.setdefault(block.plate, []).append(read)
    return ExportFile(
        format="multiskan",
        plates=[Plate(plate_id=f"Plate {p}", reads=r) for p, r in reads_by_plate.items()],
        instrument={"model": None, "serial": None, "software": "SkanIt"},
        metadata={
            "step": title,
            "iterations": max(iterations) if iterations else 1,
            "note": "iteration times are not in the export",
        },
    )


READER: Reader[bool] = Reader(
    name="multiskan",
    kind="plate",
    sniff=_sniff,
    read=_read,
    priority=26,
    max_bytes=32 * 1024 * 1024,
    describe="Thermo Multiskan/SkanIt text export",
)
