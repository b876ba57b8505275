"""The ``Plate:`` line of a SoftMax Pro text export: positional fields that shift by mode.

Kept apart from the reader (``softmax.py``) because its field table is the part of the
format that changes between read modes and export versions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from acquisition.formats.text import parse_cell
from datamodel import PLATE_FORMATS, ReadMode
from errors import FormatError

_DATA_TYPES = ("Raw", "Reduced", "Both")


@dataclass
class PlateHeader:
    """The positional fields of a ``Plate:`` line that the data layout depends on."""

    name: str
    export_format: str
    read_type: str
    read_mode: str
    data_type: str
    kinetic_points: int
    wavelengths: list[float]
    excitations: list[float]
    num_wells: int
    first_row: int
    num_rows: int
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def mode(self) -> ReadMode:
        return read_mode_of(self.read_mode)


def read_mode_of(text: str) -> ReadMode:
    low = text.lower()
    if "abs" in low:
        return "absorbance"
    if "lum" in low or "alpha" in low:
        return "luminescence"
    if "fluor" in low or "time resolved" in low or "fret" in low or "polariz" in low:
        return "fluorescence"
    return "other"


def small_int(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else None


def _floats(text: str) -> list[float] | None:
    values: list[float] = []
    for part in text.split():
        value, status = parse_cell(part)
        if status != "ok":
            return None
        values.append(value)
    return values


def parse_plate_header(cells: list[str], where: str, source: str) -> PlateHeader:
    """The ``Plate:`` line's fields (FormatError naming the line when one is not usable).

    Layout (0-based, d = index of the data type): name 1, export version 2, export format
    3, read type 4, read mode 5, [fluorescence: top/bottom read 6], data type d, pre-read
    d+1, kinetic points d+2, read time d+3, interval d+4, start/end/step wavelength
    d+5..d+7, number of wavelengths d+8, wavelengths d+9, first column d+10, number of
    columns d+11, number of wells d+12; absorbance then has first row d+13 and number of
    rows d+14, the other modes excitation wavelengths d+13, cutoff d+14, cutoff filters
    d+15, sweep d+16/17, reads per well d+18, PMT d+19, integration d+20/21, first row
    d+22, number of rows d+23.
    """
    h = [c.strip() for c in cells]

    def bad(what: str) -> FormatError:
        return FormatError(f"{where}: Plate header {what}", source=source)

    if len(h) < 6:
        raise bad("has fewer than 6 fields")
    d = next((i for i in (6, 7) if i < len(h) and h[i] in _DATA_TYPES), None)
    if d is None:
        raise bad("has no data type (Raw, Reduced or Both) in field 7 or 8")
    h += [""] * (d + 24 - len(h))
    read_type = h[4]
    if read_type not in ("Endpoint", "Kinetic", "Spectrum", "Well Scan"):
        raise bad(f"read type {read_type!r} is not Endpoint, Kinetic, Spectrum or Well Scan")
    num_wells = small_int(h[d + 12])
    if num_wells is None or num_wells not in PLATE_FORMATS:
        raise bad(f"number of wells {h[d + 12]!r} is not a plate format")
    wavelengths = _floats(h[d + 9])
    if wavelengths is None:
        raise bad(f"wavelengths {h[d + 9]!r} are not numbers")
    if read_type == "Spectrum":
        spectrum = _spectrum_wavelengths(h[d + 5], h[d + 6], h[d + 7])
        if spectrum is None:
            raise bad(f"spectrum range {h[d + 5]!r}..{h[d + 6]!r} step {h[d + 7]!r} is not usable")
        wavelengths = spectrum
    count = small_int(h[d + 8])
    if read_type != "Spectrum" and count is not None and count != len(wavelengths):
        if not (count >= 1 and not wavelengths):  # luminescence may leave them out
            raise bad(f"says {count} wavelengths but lists {len(wavelengths)}")
    absorbance = read_mode_of(h[5]) == "absorbance"
    row_at = d + 13 if absorbance else d + 22
    excitations = [] if absorbance else (_floats(h[d + 13]) or [])
    rows = PLATE_FORMATS[num_wells][0]
    first_row = small_int(h[row_at]) or 1
    num_rows = small_int(h[row_at + 1]) or rows
    names = ("pre_read", "kinetic_points", "read_time", "read_interval")
    return PlateHeader(
        name=h[1] or "Plate",
        export_format=h[3],
        read_type=read_type,
        read_mode=h[5],
        data_type=h[d],
        kinetic_points=max(1, small_int(h[d + 2]) or 1),
        wavelengths=wavelengths,
        excitations=excitations,
        num_wells=num_wells,
        first_row=min(max(first_row, 1), rows),
        num_rows=min(max(num_rows, 1), rows),
        fields={
            "export_version": h[2],
            **{n: h[d + 1 + k] for k, n in enumerate(names) if h[d + 1 + k]},
            **({"top_read": h[6]} if d == 7 else {}),
        },
    )


def _spectrum_wavelengths(start: str, end: str, step: str) -> list[float] | None:
    s, e, st = parse_cell(start), parse_cell(end), parse_cell(step)
    if any(x[1] != "ok" for x in (s, e, st)) or st[0] <= 0 or e[0] < s[0]:
        return None
    n = int((e[0] - s[0]) / st[0] + 1e-9) + 1
    if n > 10_000:
        return None
    return [s[0] + st[0] * i for i in range(n)]
