"""Plain data tables (CSV/TSV) for ``platewatch fit``: decoded and tokenised like exports.

The same decoding (BOM, UTF-16, cp1252) and line-by-line tokenising as the plate readers,
so a table that cannot be read is one line naming the file and the cause.
"""

from __future__ import annotations

import csv
import itertools
import math
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from acquisition.formats.base import count_cells
from acquisition.formats.text import decode, parse_cell
from errors import FormatError

if TYPE_CHECKING:
    import pandas as pd

MAX_TABLE_BYTES = 256 * 1024 * 1024
# A table for `platewatch fit` is not a plate export: a screen of 100,000 curves is ~3
# million rows (the exports' limit, formats.base.MAX_CELLS, is 2 million cells in all).
MAX_TABLE_CELLS = 40_000_000


def read_table(path: Path, columns: list[str], *, numeric: list[str]) -> pd.DataFrame:
    """The table at ``path`` with ``columns`` (``numeric`` ones as floats, bad cells NaN)."""
    try:
        if path.is_dir():
            raise FormatError("is a directory, not a table", source=path)
        size = path.stat().st_size
        if size > MAX_TABLE_BYTES:
            raise FormatError(f"{size} bytes is too large for a table", source=path)
        data = path.read_bytes()
    except FileNotFoundError:
        raise FormatError("file not found", source=path) from None
    except PermissionError:
        raise FormatError("permission denied", source=path) from None
    except OSError as exc:
        raise FormatError(f"cannot read: {exc.strerror or exc}", source=path) from None
    if not data.strip():
        raise FormatError("empty file", source=path)
    text = decode(data, str(path))
    lines = text.splitlines()
    head = [ln for ln in lines[:10_000] if ln.strip()][:50]
    delimiter = max(("\t", ";", ","), key=lambda d: sum(ln.count(d) > 0 for ln in head))
    cells = count_cells(text, delimiter)
    if cells > MAX_TABLE_CELLS:
        raise FormatError(
            f"about {cells} cells: more than a table for fit holds (limit {MAX_TABLE_CELLS})",
            source=path,
        )
    rows = _rows(lines, delimiter, path)
    header_row = next(rows, None)
    if header_row is None:
        raise FormatError("a header line and at least one row of data are needed", source=path)
    first = next(rows, None)
    if first is None:
        raise FormatError("a header line and at least one row of data are needed", source=path)
    header = [h.strip().strip('"') for h in header_row]
    missing = [c for c in columns if c not in header]
    if missing:
        shown = ", ".join(h for h in header if h) or "none"
        raise FormatError(f"no column {missing[0]!r} (columns: {shown})", source=path)
    import pandas as pd

    index = [(name, header.index(name), name in numeric) for name in columns]
    data_out: dict[str, list[object]] = {name: [] for name in columns}
    comma = delimiter != ","
    for row in itertools.chain([first], rows):
        width = len(row)
        for name, k, is_number in index:
            cell = row[k].strip() if k < width else ""
            data_out[name].append(_number(cell, comma) if is_number else cell)
    frame = pd.DataFrame(data_out)
    usable = frame[numeric].notna().all(axis=1).sum()
    if usable == 0:
        raise FormatError(
            f"no row has numbers in {' and '.join(repr(c) for c in numeric)}", source=path
        )
    return frame


def _rows(lines: list[str], delimiter: str, source: Path) -> Iterator[list[str]]:
    """The non-blank rows, tokenised line by line as the plate readers do (``split_rows``),
    without holding them all."""
    reader = csv.reader(lines, delimiter=delimiter)
    try:
        for row in reader:
            if any(c.strip() for c in row):
                yield row
    except csv.Error as exc:  # a field over the csv module's limit, a NUL, a broken quote
        raise FormatError(f"line {reader.line_num}: not a table ({exc})", source=source) from None


def _number(cell: str, decimal_comma: bool) -> float:
    """``parse_cell``'s number (NaN for anything else), with a fast path for the plain
    decimal text that nearly every cell of a big table is: what ``float`` reads that the
    readers' number pattern also accepts (ASCII, no underscores, finite)."""
    try:
        value = float(cell)
    except ValueError:
        pass
    else:
        if math.isfinite(value) and cell.isascii() and "_" not in cell:
            return value
    value, status = parse_cell(cell, decimal_comma=decimal_comma)
    return value if status == "ok" else math.nan
