"""Molecular Devices SoftMax Pro text exports (``.txt``, export version 1.3).

Signature: the first line is ``##BLOCKS= N``. The file is N blocks, each ending in a
``~End`` line, then a trailer ``Original Filename: …; Date Last Saved: …`` (the time the
document was saved, not the time the plate was read, so it is kept as metadata and
never as ``measured_at``). Blocks are ``Plate:``, ``Group:``, ``Note:``, ``Graph:`` and
``CuvetteSet:``; only Plate blocks hold reads, the others are listed in the metadata.

A Plate block starts with a tab-separated header whose fields are positional and shift
with the read mode (fluorescence has a top/bottom field after the read mode, and only
absorbance ends after the first-row/row-count fields; see :func:`parse_plate_header`).
Its data come in one of two layouts:

* ``PlateFormat``: a column line (``Temperature(°C)``, then ``1 … 12`` once per
  wavelength, groups separated by one empty cell), then one plate grid per time point
  (kinetic) or wavelength (spectrum), each grid one line per plate row with the time and
  the temperature in the first two cells of its first line;
* ``TimeFormat``: a column line ``Time, Temperature, A1, A2, …`` then one line per time
  point, one block per wavelength separated by empty lines (spectra: one line per
  wavelength).

A reduced-data table may follow the raw data in either layout; it is computed by SoftMax
(``Data type`` Reduced/Both) and is not read. Text is UTF-16LE with a BOM (usually),
Latin-1/cp1252 or UTF-8; decimal commas are read as decimal points.

Complete vs incomplete: a file whose last block has no ``~End`` line, or that has fewer
closed blocks than ``##BLOCKS`` declares and no trailer, is still being written. A file
whose blocks are all closed but that holds no plate data (a protocol or template export)
is invalid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from acquisition.formats.base import Reader, Sample, check_cells, count_cells
from acquisition.formats.softmax_header import PlateHeader, parse_plate_header, small_int
from acquisition.formats.text import grid_to_read, parse_cell, parse_clock
from datamodel import PLATE_FORMATS, ExportFile, Plate, PlateRead, parse_well
from errors import FormatError, IncompleteFileError

_BLOCKS = re.compile(r"^##BLOCKS=\s*([0-9]{1,6})\s*$")
_TRAILER = re.compile(r"^Original Filename:\s*(?P<name>.*?);\s*Date Last Saved:\s*(?P<saved>.*)$")
_SAVED = re.compile(
    r"^[0-9]{1,4}[/.-][0-9]{1,2}[/.-][0-9]{1,4},?\s+[0-9]{1,2}:[0-9]{2}(:[0-9]{2})?(\s*[AaPp][Mm])?$"
)
_BLOCK_KINDS = ("Plate", "Group", "Note", "Graph", "CuvetteSet")
MAX_GRIDS = 100_000  # time points × wavelengths of one block (a 48 h run every 2 s)


def _sniff(sample: Sample) -> bool | None:
    first = next((line for line in sample.head_lines[:3] if line.strip()), "")
    first = first.lstrip("\ufeff").strip()
    if first.startswith("##BLOCKS"):
        return True
    # A file cut inside its first line is a SoftMax export being written.
    if len(first) >= 3 and "##BLOCKS=".startswith(first) and len(sample.data) < 64:
        return True
    return None


@dataclass
class _Block:
    kind: str
    start: int  # 0-based index of its first line in the file
    lines: list[str]


def _blocks(lines: list[str], sample: Sample) -> tuple[int, list[_Block], str | None]:
    """(declared count, closed blocks, trailer line); IncompleteFileError while being written."""
    first = lines[0].lstrip("\ufeff").strip() if lines else ""
    match = _BLOCKS.match(first)
    if match is None:
        if "##BLOCKS=".startswith(first) or (first.startswith("##BLOCKS=") and len(lines) == 1):
            raise IncompleteFileError(
                "SoftMax Pro export cut inside its ##BLOCKS line", source=sample.path
            )
        raise FormatError(f"line 1: {first[:40]!r} is not '##BLOCKS= N'", source=sample.path)
    declared = int(match.group(1))
    blocks: list[_Block] = []
    trailer = None
    i = 1
    n = len(lines)
    while i < n:
        line = lines[i].strip()
        if not line or line == "~End":  # (a stray ~End closes nothing)
            i += 1
            continue
        if line.startswith(("Original Filename", "Date Last Saved")):
            trailer = line
            break
        end = i
        while end < n and lines[end].strip() != "~End":
            end += 1
        if end >= n:
            raise IncompleteFileError(
                f"SoftMax Pro export ends inside block {len(blocks) + 1} (line {i + 1}) "
                "before its ~End line (truncated or still being written)",
                source=sample.path,
            )
        kind = line.split(":", 1)[0].strip() if ":" in line else line[:20]
        blocks.append(_Block(kind=kind, start=i, lines=lines[i:end]))
        i = end + 1
    if trailer is None and len(blocks) < declared:
        raise IncompleteFileError(
            f"SoftMax Pro export has {len(blocks)} of its {declared} blocks "
            "(truncated or still being written)",
            source=sample.path,
        )
    if trailer is not None and not sample.text.endswith(("\n", "\r")):
        # The trailer is the last line written: cut inside it, the file is being written.
        match = _TRAILER.match(trailer)
        if match is None or _SAVED.match(match.group("saved").strip()) is None:
            raise IncompleteFileError(
                "SoftMax Pro export ends inside its 'Original Filename' trailer",
                source=sample.path,
            )
    return declared, blocks, trailer


@dataclass
class _PlateResult:
    header: PlateHeader
    reads: list[PlateRead]
    reduced: bool = False
    aborted: bool = False


def _read(sample: Sample, _found: bool) -> ExportFile:
    check_cells(sample.path, count_cells(sample.text, "\t"))
    lines = sample.lines
    source = str(sample.path)
    declared, blocks, trailer = _blocks(lines, sample)
    plates: list[_PlateResult] = []
    other: dict[str, list[str]] = {}
    for block in blocks:
        if block.kind == "Plate":
            plates.append(_read_plate_block(block, source))
        else:
            kind = block.kind if block.kind in _BLOCK_KINDS else "other"
            other.setdefault(kind, []).append(_block_title(block))
    with_reads = [p for p in plates if p.reads]
    if not with_reads:
        if not plates:
            raise FormatError(
                f"SoftMax Pro export without a Plate block ({len(blocks)} blocks: "
                f"{', '.join(sorted(other)) or 'none'})",
                source=source,
            )
        if all(p.header.read_type == "Well Scan" for p in plates):
            raise FormatError(
                "SoftMax Pro well-scan reads are not read by platewatch (one value per "
                "scan point); export endpoint, kinetic or spectrum data",
                source=source,
            )
        if all(p.header.data_type == "Reduced" for p in plates):
            raise FormatError(
                "SoftMax Pro export holds reduced data only (Data type: Reduced); "
                "export raw data (Raw or Both)",
                source=source,
            )
        raise FormatError(
            "SoftMax Pro export without read data (a protocol or template: every plate "
            "grid is empty)",
            source=source,
        )
    saved = None
    original = None
    if trailer is not None and (m := _TRAILER.match(trailer)) is not None:
        original, saved = m.group("name").strip(), m.group("saved").strip()
    names: dict[str, int] = {}
    out: list[Plate] = []
    for p in with_reads:
        count = names.get(p.header.name, 0) + 1
        names[p.header.name] = count
        plate_id = p.header.name if count == 1 else f"{p.header.name} ({count})"
        out.append(Plate(plate_id=plate_id, reads=p.reads))
    return ExportFile(
        format="softmax",
        plates=out,
        instrument={"model": None, "serial": None, "software": "SoftMax Pro"},
        metadata={
            "blocks_declared": declared,
            "blocks": len(blocks),
            "date_last_saved": saved,
            "original_filename": original,
            "plates": [
                {
                    "name": p.header.name,
                    "export_format": p.header.export_format,
                    "read_type": p.header.read_type,
                    "read_mode": p.header.read_mode,
                    "data_type": p.header.data_type,
                    "wells": p.header.num_wells,
                    **p.header.fields,
                }
                for p in plates
            ],
            "reduced_data_ignored": any(p.reduced for p in plates),
            "aborted_kinetic": any(p.aborted for p in plates),
            "skipped_blocks": other,
        },
    )


def _block_title(block: _Block) -> str:
    """A Group's name, or a Note's first line of text (for the metadata)."""
    head = block.lines[0].split(":", 1)[-1].strip().split("\t")[0].strip()
    if head or block.kind != "Note":
        return head[:80]
    return next((line.strip()[:80] for line in block.lines[1:] if line.strip()), "")


def _read_plate_block(block: _Block, source: str) -> _PlateResult:
    where = f"line {block.start + 1}"
    header = parse_plate_header(block.lines[0].split("\t"), where, source)
    result = _PlateResult(header=header, reads=[])
    if header.data_type == "Reduced" or header.read_type == "Well Scan":
        return result  # nothing raw to read; listed in the metadata
    if len(block.lines) < 2:
        return result
    if header.export_format == "TimeFormat":
        _read_time_format(block, header, result, source)
    elif header.export_format == "PlateFormat":
        _read_plate_format(block, header, result, source)
    else:
        raise FormatError(
            f"{where}: export format {header.export_format!r} is not PlateFormat or TimeFormat",
            source=source,
        )
    return result


def _read_label(header: PlateHeader, k: int, seen: dict[str, int]) -> tuple[str, float | None]:
    """The label and wavelength of wavelength group ``k`` (unique within the plate)."""
    wl = header.wavelengths[k] if k < len(header.wavelengths) else None
    mode = header.mode
    if mode == "fluorescence":
        ex = header.excitations[k] if k < len(header.excitations) else None
        label = f"Ex {ex:g}/Em {wl:g} nm" if ex is not None and wl is not None else "Fluorescence"
    elif mode == "luminescence":
        label = f"Lum {wl:g} nm" if wl is not None else "Lum"
    else:
        label = f"{wl:g} nm" if wl is not None else header.read_mode or "read"
    n = seen.get(label, 0) + 1
    seen[label] = n
    return (label if n == 1 else f"{label} #{n}"), wl


def _column_groups(cells: list[str]) -> list[list[tuple[int, int]]]:
    """Runs of column numbers 1..n in a PlateFormat column line: [(cell index, col)]."""
    groups: list[list[tuple[int, int]]] = []
    current: list[tuple[int, int]] = []
    for j in range(2, len(cells)):
        number = small_int(cells[j])
        if number is not None and number >= 1 and number == len(current) + 1:
            current.append((j, number - 1))
            continue
        if current:
            groups.append(current)
            current = []
        if number == 1:
            current = [(j, 0)]
    if current:
        groups.append(current)
    return groups


def _temperature(cells: list[str]) -> float | None:
    if len(cells) < 2:
        return None
    value, status = parse_cell(cells[1])
    return value if status == "ok" else None


def _read_plate_format(
    block: _Block, header: PlateHeader, result: _PlateResult, source: str
) -> None:
    rows, cols = PLATE_FORMATS[header.num_wells]
    column_line = block.lines[1].split("\t")
    groups = _column_groups(column_line)
    where = f"line {block.start + 2}"
    if not groups:
        raise FormatError(
            f"{where}: no column numbers in the PlateFormat column line", source=source
        )
    if any(col >= cols for g in groups for _, col in g):
        raise FormatError(
            f"{where}: column numbers beyond the {header.num_wells}-well plate", source=source
        )
    spectrum = header.read_type == "Spectrum"
    if not spectrum and len(groups) != max(1, len(header.wavelengths)):
        raise FormatError(
            f"{where}: {len(groups)} column groups for {len(header.wavelengths)} wavelengths",
            source=source,
        )
    last_cell = groups[-1][-1][0]
    if header.read_type == "Kinetic":
        expected = header.kinetic_points
    elif spectrum:
        expected = len(header.wavelengths)
    else:
        expected = 1
    expected = min(expected, MAX_GRIDS)
    lines = block.lines
    seen: dict[str, int] = {}
    labels = [_read_label(header, k, seen) for k in range(len(groups))]
    j = 2
    grids = 0
    while grids < expected:
        while j < len(lines) and _is_separator(lines[j], last_cell):
            j += 1
        if j >= len(lines):
            break
        first = lines[j].split("\t")
        if grids and _is_reduced_header(first):
            break
        grid: list[list[str]] = []
        start = j
        while len(grid) < rows and j < len(lines) and not _is_separator(lines[j], last_cell):
            cells = lines[j].split("\t")
            if grid and _is_reduced_header(cells):
                break
            grid.append(cells)
            j += 1
        if len(grid) != rows:
            if len(grid) == header.num_rows:
                offset = header.first_row - 1
            else:
                raise FormatError(
                    f"line {block.start + start + 1}: plate grid of {len(grid)} lines, "
                    f"expected {rows} (one per plate row)",
                    source=source,
                )
        else:
            offset = 0
        grids += 1
        time_s = parse_clock(grid[0][0]) if header.read_type == "Kinetic" else None
        temperature = next((t for t in map(_temperature, grid) if t is not None), None)
        for k, group in enumerate(groups):
            if spectrum:
                wl = header.wavelengths[grids - 1] if grids - 1 < len(header.wavelengths) else None
                label = f"{wl:g} nm" if wl is not None else f"spectrum {grids}"
            else:
                label, wl = labels[k]
            cells3 = [
                (offset + r, col, row[c] if c < len(row) else "")
                for r, row in enumerate(grid)
                for c, col in group
            ]
            _add_read(result, header, cells3, source, label, wl, time_s, temperature)
    if j < len(lines) and any(line.strip() for line in lines[j:]):
        result.reduced = True


def _add_read(
    result: _PlateResult,
    header: PlateHeader,
    cells: list[tuple[int, int, str]],
    source: str,
    label: str,
    wavelength: float | None,
    time_s: float | None,
    temperature: float | None,
) -> None:
    if not any(token.strip() for _, _, token in cells):
        if time_s is not None or header.read_type == "Kinetic":
            result.aborted = True  # a kinetic run stopped early leaves empty time points
        return
    rows, cols = PLATE_FORMATS[header.num_wells]
    read = grid_to_read(
        cells,
        source=source,
        rows=rows,
        cols=cols,
        label=label,
        wavelength_nm=wavelength,
        time_s=time_s,
        temperature_c=temperature,
    )
    read.mode = header.mode
    result.reads.append(read)


def _is_separator(line: str, last_cell: int) -> bool:
    """An empty line between grids (a grid's empty row keeps all of its tabs)."""
    return not line.strip() and line.count("\t") < last_cell


def _is_reduced_header(cells: list[str]) -> bool:
    """The column line of a reduced-data table: two empty cells, then 1 2 3 … or A1 A2 …"""
    if len(cells) < 3 or cells[0].strip() or cells[1].strip():
        return False
    third = cells[2].strip()
    if third == "1":
        return len(cells) < 4 or cells[3].strip() in ("2", "")
    return _is_well(third)


def _is_well(text: str) -> bool:
    try:
        parse_well(text)
    except ValueError:
        return False
    return True


def _read_time_format(
    block: _Block, header: PlateHeader, result: _PlateResult, source: str
) -> None:
    rows, cols = PLATE_FORMATS[header.num_wells]
    column_line = block.lines[1].split("\t")
    wells: list[tuple[int, int, int]] = []
    for j, name in enumerate(column_line[2:], start=2):
        if not name.strip():
            continue
        try:
            r, c = parse_well(name)
        except ValueError:
            raise FormatError(
                f"line {block.start + 2}: {name.strip()[:20]!r} is not a well in the "
                "TimeFormat column line",
                source=source,
            ) from None
        if r >= rows or c >= cols:
            raise FormatError(
                f"line {block.start + 2}: well {name.strip()} is outside the "
                f"{header.num_wells}-well plate",
                source=source,
            )
        wells.append((j, r, c))
    if not wells:
        raise FormatError(
            f"line {block.start + 2}: no wells in the TimeFormat column line", source=source
        )
    sections: list[list[list[str]]] = [[]]
    for line in block.lines[2:]:
        cells = line.split("\t")
        if not line.strip():
            if sections[-1]:
                sections.append([])
            continue
        if _is_reduced_header(cells):
            result.reduced = True
            break
        sections[-1].append(cells)
    sections = [s for s in sections if s]
    spectrum = header.read_type == "Spectrum"
    seen: dict[str, int] = {}
    if spectrum:
        rows_in_order = [row for s in sections for row in s][:MAX_GRIDS]
        for k, cells in enumerate(rows_in_order):
            wl = header.wavelengths[k] if k < len(header.wavelengths) else None
            if wl is None:
                value, status = parse_cell(cells[0])
                wl = value if status == "ok" else None
            label = f"{wl:g} nm" if wl is not None else f"spectrum {k + 1}"
            _add_time_row(result, header, wells, cells, source, label, wl, None)
        return
    if len(sections) > max(1, len(header.wavelengths)):
        raise FormatError(
            f"line {block.start + 1}: {len(sections)} TimeFormat tables for "
            f"{len(header.wavelengths)} wavelengths",
            source=source,
        )
    for k, section in enumerate(sections):
        label, wl = _read_label(header, k, seen)
        for cells in section[:MAX_GRIDS]:
            time_s = parse_clock(cells[0]) if header.read_type == "Kinetic" else None
            _add_time_row(result, header, wells, cells, source, label, wl, time_s)


def _add_time_row(
    result: _PlateResult,
    header: PlateHeader,
    wells: list[tuple[int, int, int]],
    cells: list[str],
    source: str,
    label: str,
    wavelength: float | None,
    time_s: float | None,
) -> None:
    triples = [(r, c, cells[j] if j < len(cells) else "") for j, r, c in wells]
    _add_read(result, header, triples, source, label, wavelength, time_s, _temperature(cells))


READER: Reader[bool] = Reader(
    name="softmax",
    kind="plate",
    sniff=_sniff,
    read=_read,
    priority=12,
    max_bytes=32 * 1024 * 1024,
    describe="Molecular Devices SoftMax Pro text export",
)
