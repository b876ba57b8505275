"""Agilent BioTek Gen5 text exports (endpoint and kinetic).

Signature: a ``Software Version<TAB>`` line near the top. Layout of the file: key/value
header lines (plate number, date, reader, serial), the procedure, then data sections.
Endpoint data are 1…N column grids whose last column names the dataset
(``abs450:450``, ``Blank 450``, ``[Concentration]``); kinetic data are tables with a
``Time`` column, a ``T° 600`` temperature column and one column per well, and runs that
were aborted leave ``0:00:00`` rows with no values. cp1252 text is common.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from acquisition.formats.base import Reader, Sample
from acquisition.formats.text import grid_to_read, parse_cell, parse_clock, wavelength_from_label
from datamodel import PLATE_FORMATS, ExportFile, Plate, PlateRead, parse_well, row_index
from errors import IncompleteFileError

_HEADER_KEYS = {
    "Software Version": "software_version",
    "Experiment File Path:": "experiment_file",
    "Protocol File Path:": "protocol_file",
    "Plate Number": "plate_number",
    "Date": "date",
    "Time": "time",
    "Reader Type:": "reader_type",
    "Reader Serial Number:": "reader_serial",
    "Reading Type": "reading_type",
    "Plate Type": "plate_type",
    "Barcode": "barcode",
    "Plate ID": "barcode",
}
_SKIP_SECTIONS = {"layout", "procedure details"}
_DERIVED = re.compile(r"^(blank |\[|well id$|conc/dil$|count$|mean$|std dev$|cv)", re.IGNORECASE)


def _sniff(sample: Sample) -> bool | None:
    if any(line.startswith("Software Version\t") for line in sample.head_lines[:40]):
        return True
    return None


@dataclass
class _PlateState:
    header: dict[str, str] = field(default_factory=dict)
    read_names: list[str] = field(default_factory=list)
    reads: list[PlateRead] = field(default_factory=list)
    derived: list[str] = field(default_factory=list)
    aborted: bool = False
    full_plate: bool = False  # the procedure says "Full Plate": every row must be there


def _read(sample: Sample, _found: bool) -> ExportFile:
    lines = [line.rstrip("\r") for line in sample.lines]
    ends_cleanly = sample.text.endswith(("\n", "\r"))
    plates: list[_PlateState] = []
    header: dict[str, str] = {}
    current = _PlateState(header=header)
    title = ""
    i = 0
    while i < len(lines):
        cells = lines[i].split("\t")
        key = cells[0].strip()
        if key == "Time" and any(_looks_like_well(c) for c in cells[1:]):
            i = _read_kinetic(lines, i, title, current, ends_cleanly, sample)
            continue
        if key in _HEADER_KEYS and len(cells) > 1 and not _is_grid_header(cells):
            name = _HEADER_KEYS[key]
            if name == "plate_number" and (current.reads or "plate_number" in current.header):
                plates.append(current)
                current = _PlateState(header=dict(header))
            current.header[name] = cells[1].strip()
            if name in ("software_version", "experiment_file", "protocol_file"):
                header[name] = cells[1].strip()
            i += 1
            continue
        if key == "Read" and len(cells) > 1 and cells[1].strip():
            current.read_names.append(cells[1].strip())
        if not key and len(cells) > 1 and cells[1].strip() == "Full Plate":
            current.full_plate = True
        if _is_grid_header(cells):
            i = _read_grid(lines, i, title, current, ends_cleanly, sample)
            continue
        if key:
            title = key
        i += 1
    plates.append(current)
    plates = [p for p in plates if p.reads]
    if not plates:
        raise IncompleteFileError(
            "Gen5 export without read data (truncated, still being written, or settings only)",
            source=sample.path,
        )
    first = plates[0].header
    return ExportFile(
        format="gen5",
        instrument={
            "model": first.get("reader_type"),
            "serial": first.get("reader_serial"),
            "software": f"Gen5 {first['software_version']}"
            if "software_version" in first
            else "Gen5",
        },
        plates=[
            Plate(
                plate_id=p.header.get("plate_number", f"Plate {n + 1}"),
                reads=p.reads,
                barcode=p.header.get("barcode"),
            )
            for n, p in enumerate(plates)
        ],
        metadata={
            "header": plates[0].header,
            "derived_datasets": sorted({d for p in plates for d in p.derived}),
            "aborted_kinetic": any(p.aborted for p in plates),
        },
    )


def _is_grid_header(cells: list[str]) -> bool:
    if len(cells) < 2 or cells[0].strip():
        return False
    numbers = [c.strip() for c in cells[1:] if c.strip()]
    return bool(numbers) and numbers == [str(n) for n in range(1, len(numbers) + 1)]


def _looks_like_well(text: str) -> bool:
    try:
        parse_well(text)
    except ValueError:
        return False
    return True


def _plate_shape(header: dict[str, str], max_row: int, max_col: int) -> tuple[int, int] | None:
    """The plate format the header's ``Plate Type`` names ("… 96 well …"), if it fits."""
    for wells in re.findall(r"(?<![0-9])([0-9]{1,4})(?![0-9])", header.get("plate_type", "")):
        shape = PLATE_FORMATS.get(int(wells))
        if shape is not None and max_row < shape[0] and max_col < shape[1]:
            return shape
    return None


def _truncated(sample: Sample, what: str) -> IncompleteFileError:
    return IncompleteFileError(
        f"Gen5 export ends inside {what} (truncated or still being written)", source=sample.path
    )


def _read_grid(
    lines: list[str], start: int, title: str, plate: _PlateState, ends_cleanly: bool, sample: Sample
) -> int:
    """An endpoint grid; returns the index of the first line after it."""
    ncols = len([c for c in lines[start].split("\t")[1:] if c.strip()])
    datasets: dict[str, list[tuple[int, int, str]]] = {}
    order: list[str] = []
    row = -1
    i = start + 1
    while i < len(lines):
        cells = lines[i].split("\t")
        first = cells[0].strip()
        if not lines[i].strip():
            break
        if first:
            try:
                row = row_index(first)
            except ValueError:
                break
        elif row < 0:
            break
        if len(cells) < ncols + 1:
            if i == len(lines) - 1 and not ends_cleanly:
                raise _truncated(sample, f"the {title or 'data'} grid")
        label = cells[ncols + 1].strip() if len(cells) > ncols + 1 else title
        if label not in datasets:
            datasets[label] = []
            order.append(label)
        for c in range(ncols):
            token = cells[c + 1] if c + 1 < len(cells) else ""
            datasets[label].append((row, c, token))
        i += 1
    if i >= len(lines):
        # The grid runs into the end of the file without its closing blank line: complete
        # only if every row of the plate is there (an export cut at a line end looks clean).
        shape = _plate_shape(plate.header, row, ncols - 1)
        missing_rows = plate.full_plate and shape is not None and row + 1 < shape[0]
        if not ends_cleanly or missing_rows:
            raise _truncated(sample, f"the {title or 'data'} grid")
    if title.strip().lower() in _SKIP_SECTIONS:
        return i
    for label in order:
        if not _is_raw_read(label, plate.read_names):
            plate.derived.append(label)
            continue
        wells = datasets[label]
        shape = _plate_shape(plate.header, max(r for r, _, _ in wells), max(c for _, c, _ in wells))
        plate.reads.append(
            grid_to_read(
                wells,
                source=sample.path,
                rows=shape[0] if shape else None,
                cols=shape[1] if shape else None,
                label=label,
                wavelength_nm=wavelength_from_label(label),
            )
        )
    return i


def _is_raw_read(label: str, read_names: list[str]) -> bool:
    if _DERIVED.match(label):
        return False
    name = label.split(":", 1)[0]
    if read_names:
        return name in read_names or label in read_names
    return ":" in label or wavelength_from_label(label) is not None


def _read_kinetic(
    lines: list[str], start: int, title: str, plate: _PlateState, ends_cleanly: bool, sample: Sample
) -> int:
    """A kinetic table: one row per time point, one column per well."""
    header = lines[start].split("\t")
    temp_col = next(
        (
            j
            for j, h in enumerate(header)
            if h.strip().startswith("T") and not _looks_like_well(h) and j > 0
        ),
        None,
    )
    wells = [(j, parse_well(h)) for j, h in enumerate(header) if j > 0 and _looks_like_well(h)]
    wavelength = None
    if temp_col is not None:
        wavelength = wavelength_from_label(header[temp_col])
    if wavelength is None:
        wavelength = wavelength_from_label(title)
    max_row = max(rc[0] for _, rc in wells)
    max_col = max(rc[1] for _, rc in wells)
    shape = _plate_shape(plate.header, max_row, max_col)
    i = start + 1
    while i < len(lines) and lines[i].strip():
        cells = lines[i].split("\t")
        time_s = parse_clock(cells[0])
        has_values = any(cells[j].strip() for j, _ in wells if j < len(cells))
        if time_s is None:
            break
        if not has_values:
            plate.aborted = True  # aborted runs pad the table with empty 0:00:00 rows
            i += 1
            continue
        if len(cells) < len(header) and i == len(lines) - 1 and not ends_cleanly:
            raise _truncated(sample, "the kinetic table")
        temperature = None
        if temp_col is not None and temp_col < len(cells):
            value, status = parse_cell(cells[temp_col])
            temperature = value if status == "ok" else None
        plate.reads.append(
            grid_to_read(
                [(r, c, cells[j] if j < len(cells) else "") for j, (r, c) in wells],
                source=sample.path,
                rows=shape[0] if shape else None,
                cols=shape[1] if shape else None,
                label=title or "kinetic",
                wavelength_nm=wavelength,
                time_s=time_s,
                temperature_c=temperature,
            )
        )
        i += 1
    if i >= len(lines) and not ends_cleanly:
        raise _truncated(sample, "the kinetic table")
    return i


READER: Reader[bool] = Reader(
    name="gen5",
    kind="plate",
    sniff=_sniff,
    read=_read,
    priority=10,
    max_bytes=16 * 1024 * 1024,
    describe="BioTek Gen5 text export",
)
