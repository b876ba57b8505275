"""BMG LABTECH MARS exports (PHERAstar, CLARIOstar, FLUOstar, SPECTROstar, Omega) as CSV.

Signature: the first lines are ``key: value`` pairs — ``User: …,Path: …,Test run no.: N``
(or ``Test ID: N``), ``Test name: …,Date: …,Time: …``, ``ID1: …,ID2: …,ID3: …`` — followed
by the read-mode line (``Absorbance``, ``Fluorescence (FI)``, ``Luminescence``,
``Fluorescence Polarization (FP)``, ``Time-Resolved Fluorescence (TRF)``, ``AlphaScreen``,
``Absorbance spectrum``, optionally followed by a remark).

Two views of the data are written:

* the plate view: a title per data set (``Raw Data (450 1)``, ``Raw Data  (450)`` with
  two spaces, ``Raw Data (580/620)`` ex/em, ``Raw Data (F: 482-16/525-20)`` centre-width
  filters, ``Raw Data (No filter)``, ``Well Scan: Average (570-8/615-8)``), then a grid
  ``,1,2,…`` with rows ``A`` … ``P`` (1536-well plates: ``A`` … ``Z``, ``a`` … ``f``).
  Rows can be ragged: MARS ≤ 4.0 leaves out the empty cells at the end of a row.
  A ``Cycle N (<time>)`` line gives its time to the grids after it (kinetic runs).
* the table view: a title line ``Well,Content,<set>,<set>,…`` (or ``Well Row,Well Col,
  Content,…``), an optional axis line (``Time`` → ``0 min``, ``1 h 15 min``; ``Wavelength
  [nm]`` → 260, 261, …) and one line per well (``A01``). Columns with the same title are
  one data set: its time points or wavelengths.

Only ``Raw Data`` (and well-scan averages) are reads; ``Blank corrected based on …``,
``Average over replicates …``, ratios and other MARS calculations are listed in the
metadata as derived data sets, never read as raw. Empty cells are wells not read.
Delimiters ``,`` ``;`` or tab (with ``;``/tab a decimal comma is a decimal point).
Dates are the PC's locale (kept raw). Completeness: MARS ends every line with a line
break and writes every plate row of a grid; an export cut inside its last grid (rows
missing, or the last line without its line break) is incomplete.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from acquisition.formats.base import Reader, Sample, check_cells, count_cells
from acquisition.formats.grid import split_rows
from acquisition.formats.text import grid_to_read, numbered_columns, parse_cell
from datamodel import ExportFile, Plate, PlateRead, ReadMode, plate_format_for, row_index
from errors import FormatError, IncompleteFileError

_KEY = re.compile(
    r"^\s*(User|Path|Test run no\.|Test ID|Test name|Test Name|Date|Time|ID[1-3])\s*:\s?(.*)$"
)
_MODE = re.compile(
    r"^\s*(Absorbance|Fluorescence|Luminescence|Time[- ]Resolved|AlphaScreen|AlphaLISA|"
    r"Alpha|Nephelometry|TR-FRET|HTRF)",
    re.IGNORECASE,
)
_TITLE = re.compile(
    r"^\s*(?:[0-9]{1,2}\.\s*)?(?P<name>[^()]*?)\s*\((?P<filters>[^()]*)\)\s*#?\s*(?P<n>[0-9]+)?\s*$"
)
_CYCLE = re.compile(r"^\s*Cycle\s+(?P<n>[0-9]+)\s*\((?P<time>[^)]*)\)")
_DURATION = re.compile(r"([0-9]+(?:[.,][0-9]+)?)\s*(h|min|s)\b")
_NUMBER = re.compile(r"[0-9]+(?:[.,][0-9]+)?")
_WELL = re.compile(r"^([A-Za-z]{1,2})0*([0-9]{1,2})$")
_SIGNATURE = ("Test run no.", "Test ID", "Test name", "Test Name")


def _sniff(sample: Sample) -> str | None:
    """The delimiter when the head looks like a MARS export, else None."""
    lines = [ln.lstrip("\ufeff") for ln in sample.head_lines[:12]]
    if not lines:
        return None
    keys = [
        m.group(1) for ln in lines for part in re.split(r"[,;\t]", ln) if (m := _KEY.match(part))
    ]
    if "User" not in keys or not any(k in keys for k in _SIGNATURE):
        if not (len(lines) == 1 and lines[0].startswith("User: ") and len(sample.data) < 512):
            return None  # (a first line still being written is claimed: read says so)
    first = lines[0]
    return max((",", ";", "\t"), key=lambda d: sum(bool(_KEY.match(p)) for p in first.split(d)))


@dataclass
class _DataSet:
    title: str  # as written, stripped
    name: str  # "Raw Data", "Blank corrected based on Raw Data", …
    filters: str
    cells: list[tuple[int, int, str]] = field(default_factory=list)
    time_s: float | None = None
    wavelength_override: float | None = None
    line: int = 0


def _row_of(label: str, previous: int) -> int | None:
    """A plate-row label: A…Z, then a…f (1536, MARS) or AA…AF; None when it is not one."""
    text = label.strip()
    if len(text) == 1 and text.isascii() and text.isalpha():
        if text.isupper():
            return ord(text) - ord("A")
        if previous >= 25:
            return 26 + ord(text) - ord("a")
        return None
    if len(text) == 2 and text.isascii() and text.isalpha() and text.isupper():
        try:
            return row_index(text)
        except ValueError:
            return None
    return None


def parse_duration(text: str) -> float | None:
    """``1 h 15 min``, ``0 min 38 s``, ``27 h`` → seconds; None when nothing parses."""
    parts = _DURATION.findall(text)
    if not parts:
        return None
    scale = {"h": 3600.0, "min": 60.0, "s": 1.0}
    return sum(float(v.replace(",", ".")) * scale[u] for v, u in parts)


def filter_wavelengths(filters: str) -> tuple[float | None, float | None]:
    """(excitation, emission/detection) of a MARS filter text.

    ``450 1`` → (None, 450) (absorbance 450 nm, chromatic 1); ``580/620`` → (580, 620);
    ``F: 482-16/525-20`` → (482, 525); ``No filter``/``Abs Spectrum`` → (None, None).
    """
    text = re.sub(r"^[A-Za-z]{1,3}:\s*", "", filters.strip())
    if "/" in text:
        ex_text, em_text = text.split("/", 1)
        ex = _NUMBER.match(ex_text.strip())
        em = _NUMBER.match(em_text.strip())
        return (
            float(ex.group(0).replace(",", ".")) if ex else None,
            float(em.group(0).replace(",", ".")) if em else None,
        )
    match = _NUMBER.match(text)
    return None, float(match.group(0).replace(",", ".")) if match else None


def _mode(line: str) -> ReadMode:
    low = line.lower()
    if low.startswith("abs"):
        return "absorbance"
    if low.startswith(("lum", "alpha")):
        return "luminescence"
    if low.startswith(("fluor", "time", "tr-fret", "htrf")):
        return "fluorescence"
    return "other"


def _is_raw(name: str) -> bool:
    low = " ".join(name.lower().split())
    return low == "raw data" or low.startswith("well scan")


def _read(sample: Sample, delimiter: str) -> ExportFile:
    text = sample.text
    source = str(sample.path)
    check_cells(sample.path, count_cells(text, delimiter))
    rows = split_rows(text, delimiter, sample.path)
    comma = delimiter != ","
    ends_cleanly = text.endswith(("\n", "\r"))
    header: dict[str, str] = {}
    mode_line = ""
    sets: list[_DataSet] = []
    current: _DataSet | None = None
    time_s: float | None = None
    i = 0
    while i < len(rows):
        cells = rows[i]
        first = cells[0].strip() if cells else ""
        if not any(c.strip() for c in cells):
            i += 1
            continue
        if not sets and current is None:
            pairs = [m for c in cells if (m := _KEY.match(c))]
            if pairs:
                for m in pairs:
                    header.setdefault(m.group(1).lower(), m.group(2).strip())
                i += 1
                continue
            if not mode_line and _MODE.match(first):
                mode_line = ",".join(c for c in cells if c.strip())
                i += 1
                continue
        cycle = _CYCLE.match(first)
        if cycle:
            time_s = parse_duration(cycle.group("time").split(" - ")[0])
            i += 1
            continue
        if first.lower() in ("well", "well row") and len(cells) > 2:
            i = _read_table(rows, i, sets, source)
            current = None
            continue
        title = _TITLE.match(first)
        if title and (len(cells) == 1 or not any(c.strip() for c in cells[1:])):
            current = _DataSet(
                title=" ".join(first.split()),
                name=title.group("name"),
                filters=title.group("filters"),
                time_s=time_s,
                line=i + 1,
            )
            sets.append(current)
            i += 1
            continue
        columns = numbered_columns(cells)
        if columns is not None:
            if current is None or current.cells:
                current = _DataSet(title="", name="Raw Data", filters="", time_s=time_s, line=i + 1)
                sets.append(current)
            i = _read_grid(rows, i, columns, current, ends_cleanly, sample)
            continue
        i += 1
    if not header:
        raise FormatError("BMG MARS export without its User/Test header", source=source)
    return _export(sample, header, mode_line, sets, comma)


def _read_grid(
    rows: list[list[str]],
    start: int,
    columns: list[tuple[int, int]],
    data: _DataSet,
    ends_cleanly: bool,
    sample: Sample,
) -> int:
    """One plate grid below its ``,1,2,…`` header; returns the index after it."""
    i = start + 1
    previous = -1
    while i < len(rows):
        cells = rows[i]
        if not cells:
            break
        r = _row_of(cells[0], previous)
        if r is None or r <= previous:
            break
        for j, col in columns:
            data.cells.append((r, col, cells[j] if j < len(cells) else ""))
        previous = r
        i += 1
    ncols = columns[-1][1] + 1
    expected = _rows_for(ncols)
    at_end = all(not any(c.strip() for c in row) for row in rows[i:])
    if at_end and (previous + 1 < expected or not ends_cleanly):
        raise IncompleteFileError(
            f"BMG MARS export ends inside the {data.title or 'data'} grid "
            f"({previous + 1} of {expected} rows; truncated or still being written)",
            source=sample.path,
        )
    return i


def _rows_for(cols: int) -> int:
    for rows, c in ((8, 12), (16, 24), (32, 48)):
        if cols <= c:
            return rows
    return 32


def _read_table(rows: list[list[str]], start: int, sets: list[_DataSet], source: str) -> int:
    """The table view: one line per well, one column per data set (and time/wavelength)."""
    titles = [c.strip() for c in rows[start]]
    low = [t.lower() for t in titles]
    if low[0] == "well row":
        if len(low) < 2 or low[1] != "well col":
            raise FormatError(f"line {start + 1}: 'Well Row' without 'Well Col'", source=source)
        first_value = 3 if len(low) > 2 and low[2] == "content" else 2
    else:
        first_value = 2 if len(low) > 1 and low[1] == "content" else 1
    i = _skip_blank(rows, start + 1)  # some exports put an empty line after every line
    axis: list[str] = []
    axis_kind = ""
    if i < len(rows) and not rows[i][0].strip():
        label = rows[i][first_value - 1].strip().lower() if len(rows[i]) >= first_value else ""
        if label.startswith("time") or label.startswith("wavelength"):
            axis = [c.strip() for c in rows[i]]
            axis_kind = "time" if label.startswith("time") else "wavelength"
            i += 1
    by_column: dict[int, _DataSet] = {}
    for j in range(first_value, len(titles)):
        if not titles[j]:
            continue
        match = _TITLE.match(titles[j])
        name = match.group("name") if match else titles[j]
        filters = match.group("filters") if match else ""
        ds = _DataSet(title=" ".join(titles[j].split()), name=name, filters=filters, line=start + 1)
        if axis_kind and j < len(axis):
            if axis_kind == "time":
                ds.time_s = _axis_time(axis[j], axis[first_value - 1])
                if ds.time_s is None:
                    raise FormatError(
                        f"line {start + 2}: time {axis[j][:20]!r} of column {j + 1} does not read",
                        source=source,
                    )
            else:
                value, status = parse_cell(axis[j])
                ds.wavelength_override = value if status == "ok" else None
        by_column[j] = ds
        sets.append(ds)
    while i < len(rows):
        i = _skip_blank(rows, i)
        if i >= len(rows):
            break
        cells = rows[i]
        well = _well_of(cells, low)
        if well is None:
            break
        for j, ds in by_column.items():
            ds.cells.append((*well, cells[j] if j < len(cells) else ""))
        i += 1
    return i


def _skip_blank(rows: list[list[str]], i: int) -> int:
    while i < len(rows) and not any(c.strip() for c in rows[i]):
        i += 1
    return i


def _well_of(cells: list[str], titles: list[str]) -> tuple[int, int] | None:
    if titles[0] == "well row":
        if len(cells) < 2:
            return None
        r = _row_of(cells[0], 25)
        c = cells[1].strip()
        if r is None or not (c.isascii() and c.isdigit()) or not 0 < int(c) <= 48:
            return None
        return r, int(c) - 1
    match = _WELL.match(cells[0].strip())
    if match is None:
        return None
    r = _row_of(match.group(1), 25) if len(match.group(1)) == 1 else _row_of(match.group(1), 0)
    col = int(match.group(2))
    if r is None or not 0 < col <= 48:
        return None
    return r, col - 1


def _axis_time(text: str, label: str) -> float | None:
    seconds = parse_duration(text)
    if seconds is not None:
        return seconds
    value, status = parse_cell(text)
    unit = re.search(r"\[(h|min|s)\]", label)
    if status != "ok" or unit is None:
        return None
    return value * {"h": 3600.0, "min": 60.0, "s": 1.0}[unit.group(1)]


def _export(
    sample: Sample, header: dict[str, str], mode_line: str, sets: list[_DataSet], comma: bool
) -> ExportFile:
    source = str(sample.path)
    mode = _mode(mode_line)
    raw = [s for s in sets if _is_raw(s.name) and s.cells]
    derived = sorted({s.title for s in sets if not _is_raw(s.name) and s.title})
    if not raw:
        if derived:
            raise FormatError(
                "BMG MARS export holds only data MARS computed "
                f"({', '.join(derived)[:120]}), no Raw Data: export the raw data",
                source=source,
            )
        if not any(s.cells for s in sets):
            raise IncompleteFileError(
                "BMG MARS export ends before its data (truncated or still being written)",
                source=source,
            )
    max_row = max(r for s in raw for r, _, _ in s.cells)
    max_col = max(c for s in raw for _, c, _ in s.cells)
    try:
        rows, cols = plate_format_for(max_row, max_col)
    except ValueError as exc:
        raise FormatError(str(exc), source=source) from None
    measured_at = " ".join(p for p in (header.get("date"), header.get("time")) if p) or None
    reads: list[PlateRead] = []
    seen: dict[str, int] = {}
    for s in raw:
        _, em = filter_wavelengths(s.filters)
        if s.wavelength_override is not None:
            em = s.wavelength_override
        label = s.title or "Raw Data"
        if s.wavelength_override is not None:
            label = f"{label} {s.wavelength_override:g} nm"
        key = f"{label}@{s.time_s}"
        n = seen.get(key, 0) + 1
        seen[key] = n
        read = grid_to_read(
            s.cells,
            source=source,
            rows=rows,
            cols=cols,
            decimal_comma=comma,
            label=label if n == 1 else f"{label} #{n}",
            wavelength_nm=em,
            time_s=s.time_s,
        )
        read.mode = mode
        read.measured_at = measured_at
        reads.append(read)
    plate_id = header.get("id1") or header.get("test name") or "Plate 1"
    return ExportFile(
        format="bmg",
        plates=[Plate(plate_id=plate_id, reads=reads)],
        instrument={
            "model": _model(header.get("path", "")),
            "serial": None,
            "software": "BMG MARS",
        },
        metadata={
            "header": header,
            "mode_line": mode_line,
            "derived_datasets": derived,
        },
    )


def _model(path: str) -> str | None:
    """The reader's name from the MARS data path (``…\\BMG\\PHERAstar\\User\\Data``)."""
    parts = re.split(r"[\\/]", path)
    for k, part in enumerate(parts[:-1]):
        if part.upper() == "BMG" and parts[k + 1]:
            return parts[k + 1]
    return None


READER: Reader[str] = Reader(
    name="bmg",
    kind="plate",
    sniff=_sniff,
    read=_read,
    priority=20,
    max_bytes=32 * 1024 * 1024,
    describe="BMG LABTECH MARS CSV export",
)
