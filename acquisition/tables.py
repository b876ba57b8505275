"""Plain data tables (CSV/TSV) for ``platewatch fit``: decoded and tokenised like exports.

The same decoding (BOM, UTF-16, cp1252) and line-by-line tokenising as the plate readers,
so a table that cannot be read is one line naming the file and the cause.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from acquisition.formats.base import check_cells, count_cells
from acquisition.formats.grid import split_rows
from acquisition.formats.text import decode, parse_cell
from errors import FormatError

if TYPE_CHECKING:
    import pandas as pd

MAX_TABLE_BYTES = 256 * 1024 * 1024


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
    lines = [ln for ln in text.splitlines() if ln.strip()]
    delimiter = max(("\t", ";", ","), key=lambda d: sum(ln.count(d) > 0 for ln in lines[:50]))
    check_cells(path, count_cells(text, delimiter))
    rows = [r for r in split_rows(text, delimiter, path) if any(c.strip() for c in r)]
    if len(rows) < 2:
        raise FormatError("a header line and at least one row of data are needed", source=path)
    header = [h.strip().strip('"') for h in rows[0]]
    missing = [c for c in columns if c not in header]
    if missing:
        shown = ", ".join(h for h in header if h) or "none"
        raise FormatError(f"no column {missing[0]!r} (columns: {shown})", source=path)
    import pandas as pd

    index = {name: header.index(name) for name in columns}
    data_out: dict[str, list[object]] = {name: [] for name in columns}
    comma = delimiter != ","
    for row in rows[1:]:
        for name, k in index.items():
            cell = row[k].strip() if k < len(row) else ""
            if name in numeric:
                value, status = parse_cell(cell, decimal_comma=comma)
                data_out[name].append(value if status == "ok" else float("nan"))
            else:
                data_out[name].append(cell)
    frame = pd.DataFrame(data_out)
    usable = frame[numeric].notna().all(axis=1).sum()
    if usable == 0:
        raise FormatError(
            f"no row has numbers in {' and '.join(repr(c) for c in numeric)}", source=path
        )
    return frame
