"""Writing small xlsx workbooks for the reader tests (openpyxl in write mode)."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from pathlib import Path

Cell = str | int | float | bool | dt.datetime | dt.time | dt.timedelta | None


def workbook_bytes(
    sheets: dict[str, Sequence[Sequence[Cell]]],
    *,
    formats: dict[tuple[str, str], str] | None = None,
) -> bytes:
    """An xlsx with one sheet per entry (rows of cells); ``formats`` maps (sheet, 'B7') to
    a number format such as ``[h]:mm:ss``."""
    import openpyxl

    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        ws = book.create_sheet(name)
        for row in rows:
            ws.append(list(row))
    for (name, ref), fmt in (formats or {}).items():
        book[name][ref].number_format = fmt
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def write_workbook(path: Path, sheets: dict[str, Sequence[Sequence[Cell]]], **kw: object) -> Path:
    path.write_bytes(workbook_bytes(sheets, **kw))  # type: ignore[arg-type]
    return path
