"""The generic plate grid: CSV/TSV/XLSX that any reader or spreadsheet can produce.

Three shapes are recognised, in this order:

* labelled grids: a header row ``1 2 … N`` and rows labelled ``A``, ``B``, … (8×12, 16×24,
  or a part of one); the cell left of ``1`` or the line above names the read;
* bare blocks: exactly 8×12 or 16×24 cells of numbers and reader tokens;
* long tables: a ``well`` column (or ``row`` + ``col``) and one column per read, e.g.
  ``well,nm562,nm660`` — every numeric column that is not a position, dose or
  concentration is a read, its wavelength taken from its name. ``plate``/``barcode`` and
  ``replicate`` columns split the table into plates; a well that appears twice within one
  plate is an error naming both lines (never "last value wins").

Delimiters ``,`` ``;`` and tab; with ``;`` or tab a decimal comma is a decimal point.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from acquisition.formats.base import Reader, Sample, check_cells, count_cells
from acquisition.formats.text import (
    check_text,
    decode_blocks,
    grid_to_read,
    is_number,
    shown,
    wavelength_from_label,
)
from datamodel import ExportFile, Plate, PlateRead, ReadMode, parse_well, row_index, row_label
from errors import FormatError

_BARE_SHAPES = ((8, 12), (16, 24))
_BARE_WIDTHS = {cols for _, cols in _BARE_SHAPES}
_ONE = {"1", "01", "1.0", "01.0"}
_POSITION = re.compile(r"^(row|col|column|well|well ?id|well ?position|wells?)$", re.IGNORECASE)
_NOT_READ_COLUMNS = re.compile(
    r"^(row|col|column|well|plate|plate ?id|barcode|replicate|rep|n|index|id)$|dose|conc",
    re.IGNORECASE,
)
_PLATE_COLUMNS = ("plate", "plate id", "plate_id", "plateid", "barcode", "plate barcode")
_REPLICATE_COLUMNS = ("replicate", "rep", "replicate_id")


@dataclass
class _Table:
    name: str
    rows: list[list[str]]
    decimal_comma: bool


def _tables(sample: Sample) -> list[_Table]:
    """The tables of the file (one per sheet for xlsx), within the cell limit."""
    if sample.is_zip:
        return [_Table(name, rows, False) for name, rows in sample.sheets]
    delimiter = _delimiter(sample.head_lines)
    check_cells(sample.path, count_cells(sample.data, delimiter))
    rows = split_rows(decode_blocks(sample.data, str(sample.path)), delimiter, sample.path)
    return [_Table("", rows, delimiter != ",")]


def split_rows(blocks: Iterable[str], delimiter: str, source: Path) -> list[list[str]]:
    """Tokenise delimited text line by line (a lone CR ends a line, as in old Mac files).

    ``blocks`` are pieces of the text that end at line ends (a str is one piece); only one
    piece's lines exist at a time.
    """
    pieces = [blocks] if isinstance(blocks, str) else blocks
    reader = csv.reader(
        (line for piece in pieces for line in piece.splitlines()), delimiter=delimiter
    )
    try:
        return list(reader)
    except csv.Error as exc:  # a field over the csv module's limit, a NUL, a broken quote
        raise FormatError(f"line {reader.line_num}: not a table ({exc})", source=source) from None


def _delimiter(lines: list[str]) -> str:
    lines = [ln for ln in lines[:200] if ln.strip()]
    best, best_score = ",", -1
    for delim in ("\t", ";", ","):
        counts = [ln.count(delim) for ln in lines]
        score = sum(1 for c in counts if c >= 2)
        if score == 0:  # one delimiter per line: a two-column table (well,value)
            score = sum(1 for c in counts if c >= 1) // 2
        if score > best_score:
            best, best_score = delim, score
    return best


def _int_token(text: str) -> int | None:
    text = text.strip()
    if re.fullmatch(r"[0-9]{1,2}(\.0)?", text):
        return int(float(text))
    return None


def _row_label_is(cell: str, index: int) -> bool:
    text = cell.strip()
    return text.isascii() and text.upper() == row_label(index)  # 'ı'.upper() is 'I'


def _mode(label: str, values: list[float]) -> ReadMode:
    """What a generic grid measured, from its label (a wavelength means absorbance)."""
    low = label.lower()
    if re.search(r"lum|rlu|glo", low):
        return "luminescence"
    if re.search(r"fluor|rfu|\bfi\b|ex ?[0-9]", low):
        return "fluorescence"
    if wavelength_from_label(label) is not None or re.search(r"\bod\b|abs", low):
        return "absorbance"
    finite = [abs(v) for v in values if v == v]
    return "absorbance" if finite and max(finite) <= 10.0 else "other"


def _make_read(
    cells: list[tuple[int, int, str]], table: _Table, label: str, source: Path, **shape: int
) -> PlateRead:
    read = grid_to_read(
        cells,
        source=source,
        decimal_comma=table.decimal_comma,
        label=label,
        wavelength_nm=wavelength_from_label(label) if label else None,
        **shape,  # type: ignore[arg-type]
    )
    read.mode = _mode(label, read.values.ravel().tolist())
    return read


def _labelled_grids(table: _Table, source: Path) -> list[PlateRead]:
    rows = table.rows
    reads: list[PlateRead] = []
    i = 0
    while i < len(rows) - 1:
        row = rows[i]
        found_at = None
        for j in range(1, len(row)):
            if row[j].strip() not in _ONE:  # what _int_token reads as 1 (a fast first test)
                continue
            n = 0
            while j + n < len(row) and _int_token(row[j + n]) == n + 1:
                n += 1
            nxt = rows[i + 1]
            if n < 2 or len(nxt) <= j - 1 or not _row_label_is(nxt[j - 1], 0):
                continue
            cells: list[tuple[int, int, str]] = []
            k = i + 1
            expect = 0
            while k < len(rows) and len(rows[k]) > j - 1 and _row_label_is(rows[k][j - 1], expect):
                values = rows[k][j : j + n]
                cells.extend((expect, c, values[c] if c < len(values) else "") for c in range(n))
                expect += 1
                k += 1
            label = row[j - 1].strip()
            if not label or label in ("<>", "Well", "well"):
                label = _title_above(rows, i)
            reads.append(_make_read(cells, table, label, source))
            found_at = k
            break
        i = found_at if found_at is not None else i + 1
    return reads


def _title_above(rows: list[list[str]], i: int) -> str:
    for back in (1, 2):
        if i - back >= 0:
            cells = [c.strip() for c in rows[i - back] if c.strip()]
            if len(cells) == 1:
                return cells[0]
    return ""


def _bare_blocks(table: _Table, source: Path) -> list[PlateRead]:
    rows = table.rows
    comma = table.decimal_comma
    reads: list[PlateRead] = []
    widths = []
    for row in rows:
        width = len(row)
        while width and not row[width - 1].strip():
            width -= 1
        if width not in _BARE_WIDTHS:  # cannot be a block row: no need to parse its cells
            widths.append(0)
            continue
        numeric = sum(is_number(c, decimal_comma=comma) for c in row[:width])
        widths.append(width if numeric >= width // 2 else 0)
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
                reads.append(
                    _make_read(
                        block_cells, table, _title_above(rows, i), source, rows=nrows, cols=ncols
                    )
                )
                i += nrows - 1
                break
        i += 1
    return reads


def _column(lower: list[str], names: tuple[str, ...]) -> int | None:
    return next((k for k, h in enumerate(lower) if h in names), None)


def _long_table(table: _Table, source: Path) -> list[tuple[str, list[PlateRead]]]:
    """(plate name, reads) of a long table; [] when the table has no well column."""
    rows = [r for r in table.rows if any(c.strip() for c in r)]
    if len(rows) < 2:
        return []
    header = [h.strip() for h in rows[0]]
    lower = [h.lower() for h in header]
    body = rows[1:]
    well_col = next((k for k, h in enumerate(lower) if h in ("well", "well id", "wells")), None)
    row_col = _column(lower, ("row",))
    col_col = _column(lower, ("col", "column"))
    if well_col is None and (row_col is None or col_col is None):
        return []

    def position(r: list[str]) -> tuple[int, int]:
        if well_col is not None:
            return parse_well(r[well_col])
        return row_index(r[row_col or 0]), _column_number(r[col_col or 0])

    positions: list[tuple[int, int]] = []
    for line, r in enumerate(body, start=2):
        try:
            positions.append(position(r))
        except (ValueError, IndexError):
            if line == 2:
                return []  # not a table of wells at all
            cell = r[well_col] if well_col is not None and well_col < len(r) else ",".join(r)
            raise FormatError(f"line {line}: {shown(cell)} is not a well", source=source) from None

    plate_col = _column(lower, _PLATE_COLUMNS)
    rep_col = _column(lower, _REPLICATE_COLUMNS)
    groups: dict[str, list[int]] = {}
    for k, r in enumerate(body):
        parts = []
        if plate_col is not None:
            parts.append(f"plate {_cell(r, plate_col)}")
        if rep_col is not None:
            parts.append(f"replicate {_cell(r, rep_col)}")
        groups.setdefault(" / ".join(parts), []).append(k)

    out: list[tuple[str, list[PlateRead]]] = []
    for name, members in groups.items():
        seen: dict[tuple[int, int], int] = {}
        for k in members:
            if positions[k] in seen:
                first = seen[positions[k]] + 2
                raise FormatError(
                    f"line {k + 2}: well {row_label(positions[k][0])}{positions[k][1] + 1} "
                    f"appears again (first on line {first}){' in ' + shown(name) if name else ''}; "
                    "add a plate or replicate column to tell the plates apart",
                    source=source,
                )
            seen[positions[k]] = k
        reads: list[PlateRead] = []
        for j, column_name in enumerate(header):
            if (
                not column_name
                or _NOT_READ_COLUMNS.search(column_name)
                or _POSITION.match(column_name)
            ):
                continue
            column = [body[k][j] if j < len(body[k]) else "" for k in members]
            if not _mostly_numbers(column, table.decimal_comma):
                continue
            cells = [(*positions[k], v) for k, v in zip(members, column, strict=True)]
            reads.append(_make_read(cells, table, column_name, source))
        if reads:
            out.append((name, reads))
    return out


def _mostly_numbers(column: list[str], decimal_comma: bool) -> bool:
    """At least half the cells (and one) are numbers; stops as soon as that is decided."""
    need = max(1, len(column) // 2)
    numbers = 0
    for seen, value in enumerate(column, start=1):
        numbers += is_number(value, decimal_comma=decimal_comma)
        if numbers >= need:
            return True
        if numbers + len(column) - seen < need:
            return False
    return False


def _cell(row: list[str], k: int) -> str:
    return row[k].strip() if k < len(row) else ""


def _column_number(text: str) -> int:
    """'7' / '07' / '7.0' → 6 (0-based); ValueError for anything that is not a column."""
    match = re.fullmatch(r"0*([0-9]{1,2})(\.0+)?", text.strip())
    if match is None or int(match.group(1)) < 1:
        raise ValueError(f"not a column number: {text!r}")
    return int(match.group(1)) - 1


def _find(sample: Sample) -> list[tuple[str, list[PlateRead]]] | None:
    """What the sniffer hands the reader: (plate name, reads) per plate found."""
    if not sample.is_zip:
        try:
            check_text(sample.data, str(sample.path))
        except FormatError:
            return None  # binary junk is not a grid: the registry says what it is
    tables = _tables(sample)  # an oversized or damaged table: say so, do not call it "no grid"
    found: list[tuple[str, list[PlateRead]]] = []
    for table in tables:
        reads = _labelled_grids(table, sample.path) or _bare_blocks(table, sample.path)
        if reads:
            found.append((table.name, reads))
            continue
        for name, plate_reads in _long_table(table, sample.path):
            found.append((" ".join(p for p in (table.name, name) if p), plate_reads))
    return found or None


def _read(sample: Sample, found: list[tuple[str, list[PlateRead]]]) -> ExportFile:
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


READER: Reader[list[tuple[str, list[PlateRead]]]] = Reader(
    name="grid",
    kind="plate",
    sniff=_find,
    read=_read,
    priority=90,
    describe="plain plate grid (CSV/TSV/XLSX)",
)
