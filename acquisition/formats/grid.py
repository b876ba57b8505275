"""The generic plate grid: CSV/TSV/XLSX that any reader or spreadsheet can produce.

Three shapes are recognised, in this order:

* labelled grids: a header row ``1 2 … N`` and rows labelled ``A``, ``B``, … (8×12, 16×24,
  or a part of one); the cell left of ``1`` or the line above names the read;
* bare blocks: exactly 8×12 or 16×24 cells of numbers and reader tokens;
* long tables: a ``well`` column (or ``row`` + ``col``) and one column per read, e.g.
  ``well,nm562,nm660`` — every numeric column that is not a position, dose or
  concentration is a read, its wavelength taken from its name.

Delimiters ``,`` ``;`` and tab; with ``;`` or tab a decimal comma is a decimal point.
"""

from __future__ import annotations

import csv
import io
import re

from acquisition.formats import Reader, Sample
from acquisition.formats.text import grid_to_read, is_number, wavelength_from_label
from analysis.model import ExportFile, Plate, PlateRead, parse_well, row_index, row_label
from errors import FormatError

_BARE_SHAPES = ((8, 12), (16, 24))
_NOT_READ_COLUMNS = re.compile(
    r"^(row|col|column|well|plate|replicate|rep|n)$|dose|conc", re.IGNORECASE
)


def _tables(sample: Sample) -> list[tuple[str, list[list[str]], bool]]:
    """(name, rows, decimal_comma) for each table in the file (one per sheet for xlsx)."""
    if sample.is_zip:
        return [(name, rows, False) for name, rows in sample.sheets]
    text = sample.text
    delimiter = _delimiter(text)
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    return [("", rows, delimiter != ",")]


def _delimiter(text: str) -> str:
    lines = [ln for ln in text.splitlines()[:200] if ln.strip()]
    best, best_score = ",", -1
    for delim in ("\t", ";", ","):
        counts = [ln.count(delim) for ln in lines]
        score = sum(1 for c in counts if c >= 2)
        if score > best_score:
            best, best_score = delim, score
    return best


def _int_token(text: str) -> int | None:
    text = text.strip()
    if re.fullmatch(r"\d{1,2}(\.0)?", text):
        return int(float(text))
    return None


def _labelled_grids(rows: list[list[str]], decimal_comma: bool) -> list[PlateRead]:
    reads: list[PlateRead] = []
    i = 0
    while i < len(rows) - 1:
        row = rows[i]
        found = False
        for j in range(1, len(row)):
            if _int_token(row[j]) != 1:
                continue
            n = 0
            while j + n < len(row) and _int_token(row[j + n]) == n + 1:
                n += 1
            nxt = rows[i + 1]
            if n < 2 or len(nxt) <= j - 1 or nxt[j - 1].strip().upper() != "A":
                continue
            cells: list[tuple[int, int, str]] = []
            k = i + 1
            expect = 0
            while (
                k < len(rows)
                and len(rows[k]) > j - 1
                and rows[k][j - 1].strip().upper() == row_label(expect)
            ):
                values = rows[k][j : j + n]
                cells.extend((expect, c, values[c] if c < len(values) else "") for c in range(n))
                expect += 1
                k += 1
            label = row[j - 1].strip()
            if not label or label in ("<>", "Well", "well"):
                label = _title_above(rows, i, j - 1)
            reads.append(
                grid_to_read(
                    cells,
                    decimal_comma=decimal_comma,
                    label=label,
                    wavelength_nm=wavelength_from_label(label) if label else None,
                )
            )
            i = k - 1
            found = True
            break
        i += 1 if not found or i < len(rows) else 0
    return reads


def _title_above(rows: list[list[str]], i: int, j: int) -> str:
    for back in (1, 2):
        if i - back >= 0:
            cells = [c.strip() for c in rows[i - back] if c.strip()]
            if len(cells) == 1:
                return cells[0]
    return ""


def _bare_blocks(rows: list[list[str]], decimal_comma: bool) -> list[PlateRead]:
    reads: list[PlateRead] = []
    widths = []
    for row in rows:
        cells = [c for c in row]
        while cells and not cells[-1].strip():
            cells.pop()
        numeric = all(is_number(c, decimal_comma=decimal_comma) or c.strip() for c in cells)
        widths.append(
            len(cells)
            if cells
            and numeric
            and sum(is_number(c, decimal_comma=decimal_comma) for c in cells) >= len(cells) // 2
            else 0
        )
    i = 0
    while i < len(rows):
        for nrows, ncols in _BARE_SHAPES:
            block = widths[i : i + nrows]
            if (
                len(block) == nrows
                and all(w == ncols for w in block)
                and (i + nrows >= len(rows) or widths[i + nrows] != ncols)
            ):
                block_cells = [(r, c, rows[i + r][c]) for r in range(nrows) for c in range(ncols)]
                label = _title_above(rows, i, 0)
                reads.append(
                    grid_to_read(
                        block_cells,
                        rows=nrows,
                        cols=ncols,
                        decimal_comma=decimal_comma,
                        label=label,
                        wavelength_nm=wavelength_from_label(label) if label else None,
                    )
                )
                i += nrows - 1
                break
        i += 1
    return reads


def _long_table(rows: list[list[str]], decimal_comma: bool) -> list[PlateRead]:
    rows = [r for r in rows if any(c.strip() for c in r)]
    if len(rows) < 2:
        return []
    header = [h.strip() for h in rows[0]]
    lower = [h.lower() for h in header]
    body = rows[1:]
    if "well" in lower:
        w = lower.index("well")

        def position(r: list[str]) -> tuple[int, int]:
            return parse_well(r[w])
    elif "row" in lower and ("col" in lower or "column" in lower):
        ri = lower.index("row")
        ci = lower.index("col") if "col" in lower else lower.index("column")

        def position(r: list[str]) -> tuple[int, int]:
            return row_index(r[ri]), int(float(r[ci])) - 1
    else:
        return []
    try:
        positions = [position(r) for r in body]
    except (ValueError, IndexError):
        return []
    reads: list[PlateRead] = []
    for k, name in enumerate(header):
        if not name or _NOT_READ_COLUMNS.search(name):
            continue
        column = [r[k] if k < len(r) else "" for r in body]
        if sum(is_number(v, decimal_comma=decimal_comma) for v in column) < max(
            1, len(column) // 2
        ):
            continue
        reads.append(
            grid_to_read(
                [(r, c, v) for (r, c), v in zip(positions, column, strict=True)],
                decimal_comma=decimal_comma,
                label=name,
                wavelength_nm=wavelength_from_label(name),
            )
        )
    return reads


def _find(sample: Sample) -> list[tuple[str, list[PlateRead]]]:
    cached = sample.cache.get("grid")
    if cached is not None:
        return cached  # type: ignore[return-value]
    found: list[tuple[str, list[PlateRead]]] = []
    try:
        tables = _tables(sample)
    except FormatError:
        tables = []
    for name, rows, decimal_comma in tables:
        reads = (
            _labelled_grids(rows, decimal_comma)
            or _bare_blocks(rows, decimal_comma)
            or _long_table(rows, decimal_comma)
        )
        if reads:
            found.append((name, reads))
    sample.cache["grid"] = found
    return found


def _sniff(sample: Sample) -> bool:
    return bool(_find(sample))


def _read(sample: Sample) -> ExportFile:
    found = _find(sample)
    shapes = {r.shape for _, reads in found for r in reads}
    if len(found) > 1 or len(shapes) > 1:
        plates = [
            Plate(plate_id=name or f"Plate {n + 1}", reads=reads)
            for n, (name, reads) in enumerate(found)
        ]
    else:
        plates = [Plate(plate_id=found[0][0] or "Plate 1", reads=found[0][1])]
    return ExportFile(
        format="grid", plates=plates, instrument={"model": None, "serial": None, "software": None}
    )


READER = Reader(name="grid", sniff=_sniff, read=_read, priority=90)
