"""Shared helpers of the workbook (xlsx) readers: sheet cells as the text a reader sees.

``Sample.sheets`` hands every sheet as rows of cell texts (floats in full precision,
integers without a decimal point, dates as ``YYYY-MM-DD HH:MM:SS``). The vendor readers
share the small steps below: finding the sheets that carry a vendor's signature, reading a
key/value settings row, locating a labelled ``1 2 … N`` × ``A B …`` grid, and undoing the
float32 artefacts that some instruments' values carry (``0.0931999981`` for ``0.0932``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from acquisition.formats.base import Sample
from datamodel import ReadMode, parse_well, row_index

Rows = list[list[str]]
Cells = list[tuple[int, int, str]]

_INT = re.compile(r"^0*([0-9]{1,3})(\.0+)?$")
_FLOAT = re.compile(r"^[+-]?[0-9]*\.[0-9]{9,}(e[+-]?[0-9]+)?$", re.IGNORECASE)


def sheets_of(sample: Sample) -> list[tuple[str, Rows]]:
    """The sheets of an xlsx sample ([] for anything that is not a zip)."""
    return sample.sheets if sample.is_zip else []


def first_cells(rows: Rows, n_rows: int = 6) -> list[str]:
    """The non-empty cells of the first rows of a sheet (what a sniffer looks at)."""
    return [c.strip() for row in rows[:n_rows] for c in row if c.strip()]


def header_int(text: str) -> int | None:
    """A grid header number: '1', '01', '1.0' → 1 (None for anything else)."""
    match = _INT.match(text.strip())
    return int(match.group(1)) if match else None


def cell(row: Sequence[str], j: int) -> str:
    return row[j].strip() if j < len(row) else ""


def key_value(row: Sequence[str]) -> tuple[str, str, str]:
    """A settings row ``Key | … | value | unit`` → (key without its colon, value, unit)."""
    key = cell(row, 0).rstrip(":").strip()
    rest = [c.strip() for c in row[1:] if c.strip()]
    value = rest[0] if rest else ""
    unit = rest[1] if len(rest) > 1 else ""
    return key, value, unit


def is_blank(row: Sequence[str]) -> bool:
    return not any(c.strip() for c in row)


@dataclass
class Grid:
    """A labelled plate grid found in a sheet."""

    corner: str  # the text left of '1' ('<>', 'Abs', 'Blank subtracted', …)
    cells: Cells
    n_cols: int
    n_rows: int
    end: int  # index of the first row after the grid


def grid_at(rows: Rows, i: int, *, corner_col: int = 0) -> Grid | None:
    """The grid whose header ``1 2 … N`` starts right of ``rows[i][corner_col]``, if any.

    Rows below it must be labelled ``A``, ``B``, … in ``corner_col``; the grid ends at the
    first row that is not the next row letter.
    """
    header = rows[i]
    n = 0
    while corner_col + 1 + n < len(header) and header_int(header[corner_col + 1 + n]) == n + 1:
        n += 1
    if n < 2:
        return None
    cells: Cells = []
    k = i + 1
    expect = 0
    while k < len(rows):
        label = cell(rows[k], corner_col)
        try:
            if row_index(label) != expect:
                break
        except ValueError:
            break
        values = rows[k][corner_col + 1 : corner_col + 1 + n]
        cells.extend((expect, c, values[c] if c < len(values) else "") for c in range(n))
        expect += 1
        k += 1
    if expect == 0:
        return None
    return Grid(cell(header, corner_col), cells, n, expect, k)


def well_of(text: str) -> tuple[int, int] | None:
    """'A1', 'A01', 'A 2' → (row, col); None when it is not a well name."""
    try:
        return parse_well(text)
    except ValueError:
        return None


def float32_token(token: str) -> str:
    """A value written from a float32 in full double precision, back to its float32 text.

    ``0.09319999814033508`` is the double nearest the float32 the instrument stored for
    ``0.0932``; any other token (an integer, a short decimal, a reader token) is unchanged.
    """
    text = token.strip()
    if not _FLOAT.match(text):
        return token
    value = float(text)
    single = np.float32(value)
    if not math.isfinite(value) or float(single) != value:
        return token
    return str(single)


def mode_from(text: str) -> ReadMode | None:
    """A measurement mode named in a settings row (English and German vendor words)."""
    low = text.lower()
    if "absorb" in low or "extinktion" in low:
        return "absorbance"
    if "fluor" in low or "fret" in low:
        return "fluorescence"
    if "lumin" in low or "glow" in low or "alphascreen" in low:
        return "luminescence"
    return None


def number(text: str) -> float | None:
    """A plain number cell ('600', '29.7', '30,6'); None otherwise (never inf/NaN)."""
    t = text.strip().replace(",", ".")
    try:
        value = float(t)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def leading_number(text: str) -> float | None:
    """'30.6 °C' → 30.6, '595 nm' → 595.0, 'Temperature: 25.5 °C' → 25.5."""
    match = re.search(r"[-+]?[0-9]+(?:[.,][0-9]+)?", text)
    return number(match.group(0)) if match else None


def find_sheets(sample: Sample, test: Callable[[str, Rows], bool]) -> list[tuple[str, Rows]]:
    """The sheets of the workbook for which ``test(name, rows)`` holds."""
    return [(name, rows) for name, rows in sheets_of(sample) if test(name, rows)]
