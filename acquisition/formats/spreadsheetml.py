"""Molecular Devices SpectraMax iD3/iD5 (SoftMax Pro / SpectraMax software) SpreadsheetML exports.

Signature: an XML document with ``<?mso-application progid="Excel.Sheet"?>`` (Excel 2003
XML, "SpreadsheetML") whose cells contain a ``Well data`` section. The ``General`` sheet
holds key/value rows (``Software version``, ``Instrument name``, ``Serial number``), then
one section per plate (``Plate  (1 of 2)``: ``Plate name``, ``Barcode``, ``Rows``,
``Columns``, ``Read Time``; ``Measurement mode`` Abs/Fl/Lum; ``Excitation/Emission``
``750 nm/-``) and its ``Well data``: a header row ``Wavelength(Ex/Em)``, the wavelength and
the column numbers ``1 … 12``, then one row per plate row whose first cell is the row
letter. Cells carry ``ss:Index`` when cells before them are empty (wells not read), so
positions come from the indices, never from the order of the cells.

Parsing: ``xml.etree.ElementTree`` on a document that is refused if it declares a DTD or
entities (no entity expansion of any kind). A document cut anywhere is not well-formed at
its end: incomplete. A finished document without well data (settings only) is invalid.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from acquisition.formats.base import MAX_CELLS, Reader, Sample
from acquisition.formats.text import grid_to_read, wavelength_from_label
from datamodel import PLATE_FORMATS, ExportFile, Plate, PlateRead, ReadMode, row_index
from errors import FormatError, IncompleteFileError

_SS = "{urn:schemas-microsoft-com:office:spreadsheet}"
_PROGID = re.compile(r"<\?mso-application\s+progid=[\"']Excel\.Sheet[\"']\s*\?>")
_PLATE_TITLE = re.compile(r"^Plate\s*\((\d+)\s+of\s+(\d+)\)$")
_WAVELENGTHS = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*nm")
# expat codes for a document that stops early: no element found, unclosed token, partial
# character, unclosed CDATA section, incomplete markup in a parameter entity.
_CUT_CODES = {3, 5, 6, 20, 22}
WHOLE_TREE_CHARS = 4 * 1024 * 1024


_PROLOG = '<?xml version="1.0"?> <?mso-application progid="Excel.Sheet"?>'


def _sniff(sample: Sample) -> bool | None:
    head = sample.head[:4096].lstrip("\ufeff").lstrip()
    if head.startswith("<?xml") and _PROGID.search(head):
        return True
    if len(head) >= 5 and _PROLOG.startswith(" ".join(head.split())):
        return True  # cut inside the prolog: an export being written (read says so)
    return None


@dataclass
class _PlateSection:
    title: str
    keys: dict[str, str] = field(default_factory=dict)
    reads: list[PlateRead] = field(default_factory=list)


def _rows(sample: Sample) -> list[tuple[str, list[str]]]:
    """(sheet name, cells) for every row of every worksheet, cells placed by ss:Index.

    Documents above :data:`WHOLE_TREE_CHARS` are streamed (each row is dropped from the
    tree once read), so memory follows the rows, not the document; a DTD or entity
    declaration anywhere is refused before parsing.
    """
    text = sample.text
    source = str(sample.path)
    if _PROGID.search(text[:4096]) is None:
        raise IncompleteFileError("SpreadsheetML export cut inside its prolog", source=source)
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise FormatError(
            "SpreadsheetML with a DTD or entity declarations: refused (exports have none)",
            source=source,
        )
    text = re.sub(r"^\ufeff?\s*<\?xml[^>]*\?>", "", text, count=1)
    if len(text) <= WHOLE_TREE_CHARS:  # a whole tree is faster, and small at this size
        try:
            root = ET.fromstring(text)
        except ET.ParseError as exc:
            raise _parse_error(exc, text, source) from None
        whole: list[tuple[str, list[str]]] = []
        cells_seen = 0
        for sheet_element in root.iter(f"{_SS}Worksheet"):
            name = sheet_element.get(f"{_SS}Name", "")
            for row in sheet_element.iter(f"{_SS}Row"):
                cells = _row_cells(row, name, source)
                cells_seen += len(cells)
                if cells_seen > MAX_CELLS:
                    raise FormatError(
                        f"more than {MAX_CELLS} cells: not a plate export", source=source
                    )
                whole.append((name, cells))
        return whole
    return _streamed_rows(text, source)


def _streamed_rows(text: str, source: str) -> list[tuple[str, list[str]]]:
    parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start", "end"))
    out: list[tuple[str, list[str]]] = []
    sheet = ""
    table: ET.Element | None = None
    cells_seen = 0
    try:
        chunks = [text[at : at + (1 << 20)] for at in range(0, len(text), 1 << 20)]
        for k in range(len(chunks) + 1):
            if k < len(chunks):
                parser.feed(chunks[k])
            else:
                parser.close()
            for item in parser.read_events():
                event, elem = item[0], item[-1]
                if not isinstance(elem, ET.Element):
                    continue
                if event == "start":
                    if elem.tag == f"{_SS}Worksheet":
                        sheet = elem.get(f"{_SS}Name", "")
                    elif elem.tag == f"{_SS}Table":
                        table = elem
                    continue
                if elem.tag != f"{_SS}Row":
                    continue
                cells = _row_cells(elem, sheet, source)
                cells_seen += len(cells)
                if cells_seen > MAX_CELLS:
                    raise FormatError(
                        f"more than {MAX_CELLS} cells: not a plate export", source=source
                    )
                out.append((sheet, cells))
                if table is not None and len(table) and table[-1] is elem:
                    table.remove(elem)
    except ET.ParseError as exc:
        raise _parse_error(exc, text, source) from None
    return out


def _row_cells(row: ET.Element, sheet: str, source: str) -> list[str]:
    cells: list[str] = []
    for cell in row.iter(f"{_SS}Cell"):
        index = cell.get(f"{_SS}Index")
        if index is not None:
            if not (index.isascii() and index.isdigit()) or not (len(cells) < int(index) <= 16_384):
                raise FormatError(
                    f"sheet {sheet!r}: cell index {index[:10]!r} is not a column after "
                    "the cells before it",
                    source=source,
                )
            cells.extend([""] * (int(index) - 1 - len(cells)))
        data = cell.find(f"{_SS}Data")
        cells.append("".join(data.itertext()).strip() if data is not None else "")
    return cells


def _parse_error(exc: ET.ParseError, text: str, source: str) -> FormatError:
    line, col = exc.position
    lines = text.splitlines() or [""]
    at_end = line >= len(lines) and col >= len(lines[-1].rstrip()) - 1
    if exc.code in _CUT_CODES or at_end:
        return IncompleteFileError(
            f"SpreadsheetML export ends before its closing tags (line {line}; "
            "truncated or still being written)",
            source=source,
        )
    reason = str(exc).split(":")[0]
    return FormatError(
        f"line {line}, column {col}: not well-formed SpreadsheetML ({reason})", source=source
    )


def _mode(text: str) -> ReadMode:
    low = text.lower()
    if low.startswith("abs"):
        return "absorbance"
    if low.startswith(("fl", "trf", "tr-fret", "fp", "fret")):
        return "fluorescence"
    if low.startswith("lum"):
        return "luminescence"
    return "other"


def _read(sample: Sample, _found: bool) -> ExportFile:
    source = str(sample.path)
    rows = _rows(sample)
    general: dict[str, str] = {}
    plates: list[_PlateSection] = []
    current: _PlateSection | None = None
    i = 0
    while i < len(rows):
        sheet, cells = rows[i]
        first = cells[0] if cells else ""
        title = " ".join(first.split())
        if _PLATE_TITLE.match(title):
            current = _PlateSection(title=title)
            plates.append(current)
        elif first.replace(" ", "").lower().startswith("wavelength") and "1" in cells[2:4]:
            if current is None:
                current = _PlateSection(title=f"{sheet} plate")
                plates.append(current)
            i = _read_well_data(rows, i, current, source)
            continue
        elif first and len(cells) > 1 and cells[1]:
            (current.keys if current is not None else general).setdefault(first, cells[1])
        i += 1
    with_reads = [p for p in plates if p.reads]
    if not with_reads:
        raise FormatError(
            "SpreadsheetML export without well data (settings only, or not a reader export)",
            source=source,
        )
    return ExportFile(
        format="spreadsheetml",
        plates=[
            Plate(
                plate_id=p.keys.get("Plate name") or p.title,
                reads=p.reads,
                barcode=p.keys.get("Barcode") or None,
            )
            for p in with_reads
        ],
        instrument={
            "model": general.get("Instrument name"),
            "serial": general.get("Serial number"),
            "software": f"SpectraMax {general['Software version']}"
            if "Software version" in general
            else None,
        },
        metadata={
            "general": general,
            "plates": [{"title": p.title, **p.keys} for p in plates],
        },
    )


def _read_well_data(
    rows: list[tuple[str, list[str]]], start: int, plate: _PlateSection, source: str
) -> int:
    """One Well data grid: header row, then rows labelled A, B, …; returns the next row."""
    _, header = rows[start]
    columns = [
        (j, int(c) - 1)
        for j, c in enumerate(header)
        if j >= 2 and c.isascii() and c.isdigit() and 0 < int(c) <= 48
    ]
    if not columns:
        raise FormatError(
            f"row {start + 1}: Well data header without column numbers", source=source
        )
    label_col = columns[0][0] - 1
    ex_em = header[1] if len(header) > 1 else ""
    mode = _mode(plate.keys.get("Measurement mode", ""))
    triples: list[tuple[int, int, str]] = []
    i = start + 1
    while i < len(rows):
        _, cells = rows[i]
        letter = cells[label_col] if label_col < len(cells) else ""
        if not letter or any(cells[:label_col]):
            break
        try:
            r = row_index(letter)
        except ValueError:
            break
        triples.extend((r, col, cells[j] if j < len(cells) else "") for j, col in columns)
        i += 1
    if not triples:
        raise FormatError(f"row {start + 1}: Well data header without plate rows", source=source)
    shape = _shape(plate.keys, triples)
    wavelengths = [float(w) for w in _WAVELENGTHS.findall(ex_em)]
    if mode == "fluorescence" and len(wavelengths) >= 2:
        wavelength: float | None = wavelengths[1]
    elif wavelengths:
        wavelength = wavelengths[0]
    else:
        wavelength = wavelength_from_label(ex_em)
    read = grid_to_read(
        triples,
        source=source,
        rows=shape[0] if shape else None,
        cols=shape[1] if shape else None,
        label=ex_em or "Well data",
        wavelength_nm=wavelength,
    )
    read.mode = mode
    read.measured_at = plate.keys.get("Read Time")
    plate.reads.append(read)
    return i


def _shape(keys: dict[str, str], triples: list[tuple[int, int, str]]) -> tuple[int, int] | None:
    """The plate's rows × columns as its section states them, when the data fit."""
    rows, cols = keys.get("Rows", ""), keys.get("Columns", "")
    if rows.isascii() and rows.isdigit() and cols.isascii() and cols.isdigit():
        shape = (int(rows), int(cols))
        if shape in PLATE_FORMATS.values() and all(
            r < shape[0] and c < shape[1] for r, c, _ in triples
        ):
            return shape
    return None


READER: Reader[bool] = Reader(
    name="spreadsheetml",
    kind="plate",
    sniff=_sniff,
    read=_read,
    priority=14,
    max_bytes=32 * 1024 * 1024,
    describe="SpectraMax iD3 SpreadsheetML (xml) export",
)
