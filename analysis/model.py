"""The in-memory data model shared by readers, drivers and the analysis (DESIGN.md §4).

It lives in ``analysis/`` because the analysis consumes it and everything upstream
(acquisition, drivers through acquisition) may import ``analysis``; nothing here does I/O.
"""

from __future__ import annotations

import enum
import math
import re
import string
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

FloatGrid = npt.NDArray[np.float64]
StatusGrid = npt.NDArray[np.object_]

Severity = Literal["info", "warning", "critical"]
Verdict = Literal["pass", "warn", "fail"]

SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}

# Standard microplate formats, smallest first: (rows, cols).
PLATE_FORMATS: tuple[tuple[int, int], ...] = ((8, 12), (16, 24), (32, 48))


class WellStatus(enum.StrEnum):
    """Why a well has (or lacks) a number. Only ``ok`` wells carry a usable value."""

    OK = "ok"
    OVERFLOW = "overflow"
    UNDERFLOW = "underflow"
    MASKED = "masked"
    MISSED = "missed"
    INVALID = "invalid"
    NOT_READ = "not_read"


def row_label(index: int) -> str:
    """0 → 'A', 25 → 'Z', 26 → 'AA' (1536-well plates use AA–AF)."""
    letters = string.ascii_uppercase
    if index < 26:
        return letters[index]
    return letters[index // 26 - 1] + letters[index % 26]


def row_index(label: str) -> int:
    """Inverse of :func:`row_label`; raises ValueError on anything else."""
    label = label.strip().upper()
    if not label or not label.isalpha() or len(label) > 2:
        raise ValueError(f"not a plate row: {label!r}")
    if len(label) == 1:
        return ord(label) - ord("A")
    return (ord(label[0]) - ord("A") + 1) * 26 + ord(label[1]) - ord("A")


def well_name(row: int, col: int) -> str:
    return f"{row_label(row)}{col + 1}"


@lru_cache(maxsize=8192)
def parse_well(name: str) -> tuple[int, int]:
    """'B7' / 'b07' / 'B 7' → (1, 6). Raises ValueError for anything that is not a well."""
    text = name.strip().replace(" ", "")
    i = 0
    while i < len(text) and text[i].isalpha():
        i += 1
    if i == 0 or i == len(text) or not text[i:].isdigit():
        raise ValueError(f"not a well name: {name!r}")
    col = int(text[i:])
    if col < 1:
        raise ValueError(f"not a well name: {name!r}")
    return row_index(text[:i]), col - 1


def plate_format_for(max_row: int, max_col: int) -> tuple[int, int]:
    """The smallest standard plate that holds a well at (max_row, max_col), 0-based."""
    for rows, cols in PLATE_FORMATS:
        if max_row < rows and max_col < cols:
            return rows, cols
    raise ValueError(f"well {well_name(max_row, max_col)} is outside every standard plate")


@dataclass(eq=False)
class PlateRead:
    """One read of one plate: a grid of values with a status per well."""

    values: FloatGrid
    status: StatusGrid
    label: str = ""
    wavelength_nm: float | None = None
    time_s: float | None = None
    temperature_c: float | None = None
    raw_tokens: dict[str, str] = field(default_factory=dict)  # well -> token, non-ok wells

    @property
    def shape(self) -> tuple[int, int]:
        rows, cols = self.values.shape
        return int(rows), int(cols)

    @classmethod
    def empty(cls, rows: int, cols: int, **meta: Any) -> PlateRead:
        values = np.full((rows, cols), np.nan)
        status = np.full((rows, cols), WellStatus.NOT_READ, dtype=object)
        return cls(values=values, status=status, **meta)

    def to_dict(self) -> dict[str, Any]:
        rows, cols = self.shape
        values: list[list[float | None]] = [
            [float(v) if self.status[r, c] == WellStatus.OK else None for c, v in enumerate(row)]
            for r, row in enumerate(self.values)
        ]
        status = [[str(s) for s in row] for row in self.status]
        return {
            "label": self.label,
            "wavelength_nm": self.wavelength_nm,
            "time_s": self.time_s,
            "temperature_c": self.temperature_c,
            "rows": rows,
            "cols": cols,
            "values": values,
            "status": status,
            "raw_tokens": dict(self.raw_tokens),
        }


@dataclass
class Plate:
    """One physical plate in an export, with every read taken of it."""

    plate_id: str
    reads: list[PlateRead]
    barcode: str | None = None


@dataclass
class ExportFile:
    """What a reader made of one export file."""

    format: str
    plates: list[Plate]
    instrument: dict[str, str | None] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Flag:
    """A QC finding: what happened, the likely cause and what to do, with the numbers."""

    code: str
    severity: Severity
    message: str
    wells: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "wells": list(self.wells),
            "message": self.message,
            "metrics": self.metrics,
        }


def verdict_of(flags: list[Flag]) -> Verdict:
    worst = max((SEVERITY_RANK[f.severity] for f in flags), default=0)
    return "fail" if worst == 2 else "warn" if worst == 1 else "pass"


def jsonable(value: Any) -> Any:
    """Plain JSON data: NaN/inf → None, numpy scalars → Python, tuples → lists."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def safe_stem(name: str) -> str:
    """A file-name stem from instrument data that cannot escape the report folder."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "plate"
    return stem[:120]
