"""Plate reads: the record a vendor export and a driver read both become (DESIGN.md §4)."""

from __future__ import annotations

import enum
import re
import string
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

FloatGrid = npt.NDArray[np.float64]
StatusGrid = npt.NDArray[np.object_]

# Microplate formats by well count: (rows, cols).
PLATE_FORMATS: dict[int, tuple[int, int]] = {
    6: (2, 3),
    12: (3, 4),
    24: (4, 6),
    48: (6, 8),
    96: (8, 12),
    384: (16, 24),
    1536: (32, 48),
}
# The formats a read is placed on when the export does not say (partial plates, tables).
STANDARD_PLATES: tuple[tuple[int, int], ...] = (
    PLATE_FORMATS[96],
    PLATE_FORMATS[384],
    PLATE_FORMATS[1536],
)

ReadMode = Literal["absorbance", "fluorescence", "luminescence", "other"]
UNITS: dict[str, str] = {
    "absorbance": "OD",
    "fluorescence": "RFU",
    "luminescence": "RLU",
    "other": "",
}


class WellStatus(enum.StrEnum):
    """Why a well has (or lacks) a number. Only ``ok`` wells carry a usable value."""

    OK = "ok"
    OVERFLOW = "overflow"
    UNDERFLOW = "underflow"
    MASKED = "masked"
    MISSED = "missed"
    INVALID = "invalid"
    NOT_READ = "not_read"


_ROW = re.compile(r"[A-Z]{1,2}")
_WELL = re.compile(r"([A-Za-z]{1,2})0*([0-9]{1,3})")


def row_label(index: int) -> str:
    """0 → 'A', 25 → 'Z', 26 → 'AA' (1536-well plates use AA–AF)."""
    letters = string.ascii_uppercase
    if index < 0:
        raise ValueError(f"not a plate row index: {index}")
    if index < 26:
        return letters[index]
    return letters[index // 26 - 1] + letters[index % 26]


def row_index(label: str) -> int:
    """Inverse of :func:`row_label` (ASCII letters only); ValueError on anything else."""
    text = label.strip()
    if not text.isascii():  # 'ı'.upper() is 'I' and 'ß'.upper() is 'SS': never a row
        raise ValueError(f"not a plate row: {label!r}")
    text = text.upper()
    if not _ROW.fullmatch(text):
        raise ValueError(f"not a plate row: {label!r}")
    if len(text) == 1:
        return ord(text) - ord("A")
    return (ord(text[0]) - ord("A") + 1) * 26 + ord(text[1]) - ord("A")


def well_name(row: int, col: int) -> str:
    return f"{row_label(row)}{col + 1}"


@lru_cache(maxsize=8192)
def parse_well(name: str) -> tuple[int, int]:
    """'B7' / 'b07' / 'B 7' → (1, 6). ValueError for anything that is not a well name."""
    match = _WELL.fullmatch(name.strip().replace(" ", ""))
    if match is None:
        raise ValueError(f"not a well name: {name!r}")
    col = int(match.group(2))
    if col < 1:
        raise ValueError(f"not a well name: {name!r}")
    return row_index(match.group(1)), col - 1


def plate_format_for(max_row: int, max_col: int) -> tuple[int, int]:
    """The smallest standard plate (96, 384, 1536) that holds a well at (max_row, max_col).

    ValueError when no standard plate holds it (the caller turns that into a FormatError
    naming the file).
    """
    if max_row < 0 or max_col < 0:
        raise ValueError("negative well position")
    for rows, cols in STANDARD_PLATES:
        if max_row < rows and max_col < cols:
            return rows, cols
    raise ValueError(f"well {well_name(max_row, max_col)} is outside every standard plate")


@dataclass(eq=False)
class PlateRead:
    """One read of one plate: a grid of values with a status per well.

    The same record comes from a vendor export and from a driver read. ``mode`` says what
    was measured and therefore the unit (OD, RFU, RLU); ``measured_at`` keeps the export's
    own date/time text, never re-interpreted.
    """

    values: FloatGrid
    status: StatusGrid
    label: str = ""
    wavelength_nm: float | None = None
    time_s: float | None = None
    temperature_c: float | None = None
    raw_tokens: dict[str, str] = field(default_factory=dict)  # well -> token, non-ok wells
    mode: ReadMode = "absorbance"
    measured_at: str | None = None

    @property
    def shape(self) -> tuple[int, int]:
        rows, cols = self.values.shape
        return int(rows), int(cols)

    @property
    def unit(self) -> str:
        return UNITS[self.mode]

    @classmethod
    def empty(cls, rows: int, cols: int, **meta: Any) -> PlateRead:
        values = np.full((rows, cols), np.nan)
        status = np.empty((rows, cols), dtype=object)
        status.fill(WellStatus.NOT_READ)  # np.full would store the plain str 'not_read'
        return cls(values=values, status=status, **meta)

    def to_dict(self) -> dict[str, Any]:
        rows, cols = self.shape
        ok = self.status == WellStatus.OK
        values: list[list[float | None]] = [
            [float(v) if ok[r, c] else None for c, v in enumerate(row)]
            for r, row in enumerate(self.values.tolist())
        ]
        status = [[str(s) for s in row] for row in self.status]
        return {
            "label": self.label,
            "mode": self.mode,
            "unit": self.unit,
            "wavelength_nm": self.wavelength_nm,
            "time_s": self.time_s,
            "temperature_c": self.temperature_c,
            "measured_at": self.measured_at,
            "rows": rows,
            "cols": cols,
            "values": values,
            "status": status,
            "raw_tokens": dict(self.raw_tokens),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PlateRead:
        """Inverse of :meth:`to_dict` (driver reads are archived in this shape).

        Raises ValueError/KeyError/TypeError on a document that is not a read (a grid
        that is no plate format, an ok well without a finite number, a non-finite time).
        """
        rows, cols = _count(data["rows"]), _count(data["cols"])
        if (rows, cols) not in PLATE_FORMATS.values():
            raise ValueError(f"{rows}x{cols} is not a plate format")
        status_rows = data["status"]
        value_rows = data["values"]
        if len(status_rows) != rows or len(value_rows) != rows:
            raise ValueError("rows do not match the grid")
        status = np.empty((rows, cols), dtype=object)
        values = np.full((rows, cols), np.nan)
        for r in range(rows):
            if len(status_rows[r]) != cols or len(value_rows[r]) != cols:
                raise ValueError("columns do not match the grid")
            for c in range(cols):
                status[r, c] = WellStatus(status_rows[r][c])
                v = value_rows[r][c]
                if status[r, c] is WellStatus.OK:
                    if not isinstance(v, int | float) or isinstance(v, bool):
                        raise ValueError(f"well {well_name(r, c)}: ok without a number")
                    values[r, c] = _finite(v, f"well {well_name(r, c)}")
        mode = data.get("mode", "absorbance")
        if mode not in UNITS:
            raise ValueError(f"unknown read mode {mode!r}")

        def number(key: str) -> float | None:
            v = data.get(key)
            if v is None:
                return None
            if not isinstance(v, int | float) or isinstance(v, bool):
                raise ValueError(f"{key} is not a number")
            return _finite(v, key)

        return cls(
            values=values,
            status=status,
            label=str(data.get("label", "")),
            wavelength_nm=number("wavelength_nm"),
            time_s=number("time_s"),
            temperature_c=number("temperature_c"),
            raw_tokens={str(k): str(v) for k, v in dict(data.get("raw_tokens", {})).items()},
            mode=mode,
            measured_at=data.get("measured_at"),
        )


@dataclass
class Plate:
    """One physical plate in an export, with every read taken of it."""

    plate_id: str
    reads: list[PlateRead]
    barcode: str | None = None


@dataclass
class ExportFile:
    """What a plate reader's export (or a driver read) holds."""

    format: str
    plates: list[Plate]
    instrument: dict[str, str | None] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    kind: Literal["plate"] = "plate"


def _count(value: object) -> int:
    """A document's row or column count: a plain integer, nothing else."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{str(value)[:20]!r} is not a count")
    return value


def _finite(value: float, what: str) -> float:
    try:
        number = float(value)
    except OverflowError:
        raise ValueError(f"{what}: a number beyond float range") from None
    if not np.isfinite(number):
        raise ValueError(f"{what}: not a finite number")
    return number
