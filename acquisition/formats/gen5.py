"""Agilent BioTek Gen5 text exports, in all their layouts.

Signature: a ``Software Version<TAB>`` line near the top. Per plate (a file may hold
several, each starting again with ``Software Version``): key/value header lines (plate
number, date, time, reader type and serial), ``Procedure Details`` (the read steps, see
:mod:`gen5_procedure`), then data sections, each a title line (``Results``, ``Layout``,
``OD600:450``, ``Read 1:570``, ``Blank 450`` …) and a table (see :mod:`gen5_tables`):
grids with the dataset named in the last column, kinetic and spectral series (one column
per well, or transposed with one row per well), well tables; ``Actual Temperature:``
lines give the temperature of endpoint reads. Sections whose every line starts with a tab
(some export templates indent them) are read like the others. cp1252 text is common;
``T∞ 600`` is a mis-decoded ``T° 600``.

Complete, incomplete or invalid: a file that ends mid-line (Gen5 ends every line with
CRLF, the last one too), inside a table (a grid short
of the plate's rows, a kinetic table short of the procedure's read count), inside the
procedure, or right after a section title is still being written. A file that ends
cleanly after complete sections but has no read data (the export template left the data
out: procedure, layout, temperatures only) is finished and invalid: a FormatError.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acquisition.formats.base import Reader, Sample
from acquisition.formats.gen5_procedure import Procedure, parse_procedure
from acquisition.formats.gen5_tables import Collector, is_grid_header, table_at
from acquisition.formats.text import parse_cell
from datamodel import ExportFile, Plate
from errors import FormatError, IncompleteFileError

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


def _sniff(sample: Sample) -> bool | None:
    if any(line.lstrip("\t").startswith("Software Version\t") for line in sample.head_lines[:40]):
        return True
    return None


@dataclass
class _PlateState:
    header: dict[str, str] = field(default_factory=dict)
    proc: Procedure = field(default_factory=Procedure)
    collector: Collector | None = None
    temperatures: list[float] = field(default_factory=list)


def unindent(lines: list[str]) -> list[str]:
    """Indented tables (a block between blank lines whose table lines start with one tab
    more than Gen5 writes them: some templates, and the workbook export's column B) with
    that tab removed; a title line left of the table stays as it is."""
    out: list[str] = []
    block: list[str] = []
    headers = ("\t\t1\t", "\tTime\t", "\tWavelength\t", "\tWell\t")

    def flush() -> None:
        indented = [ln for ln in block if ln.startswith("\t")]
        if (
            indented
            and len(indented) >= len(block) - 1
            and any(ln.startswith(headers) for ln in indented)
        ):
            out.extend(ln[1:] if ln.startswith("\t") else ln for ln in block)
        elif (
            block
            and len(indented) == len(block)
            and any(ln.strip() in ("Results", "Layout") or ln.startswith("\tA\t") for ln in block)
        ):
            out.extend(ln[1:] for ln in block)
        else:
            out.extend(block)
        block.clear()

    for line in lines:
        if line.strip():
            block.append(line)
        else:
            flush()
            out.append(line)
    flush()
    return out


def parse_gen5_lines(
    lines: list[str], source: Path, *, ends_cleanly: bool, fmt: str = "gen5"
) -> ExportFile:
    """An ExportFile from the lines of a Gen5 export (text, or a workbook's rows)."""
    if not ends_cleanly:  # Gen5 ends every line, the last one too: this one is cut short
        raise IncompleteFileError(
            "Gen5 export ends mid-line (truncated or still being written)", source=source
        )
    lines = unindent([line.rstrip("\r") for line in lines])
    plates: list[_PlateState] = []
    current = _PlateState()
    title = ""
    after_procedure = False  # any line written after the procedure block
    last_content = next((ln for ln in reversed(lines) if ln.strip()), "")
    i = 0
    while i < len(lines):
        line = lines[i]
        cells = line.split("\t")
        key = cells[0].strip()
        reader = table_at(lines, i) if key not in _HEADER_KEYS or key == "Time" else None
        if reader is not None:
            out = _collector(current, source, ends_cleanly)
            i = reader(lines, i, title, out)
            continue
        if key in _HEADER_KEYS and len(cells) > 1 and not is_grid_header(cells):
            name = _HEADER_KEYS[key]
            if name == "software_version" and (
                current.collector or "software_version" in current.header
            ):
                plates.append(current)
                current = _PlateState()
                after_procedure = False
            elif name == "plate_number" and "plate_number" in current.header:
                plates.append(current)
                current = _PlateState(header=dict(current.header))
                after_procedure = False
            current.header[name] = cells[1].strip()
            i += 1
            continue
        if key == "Procedure Details":
            i = _read_procedure(lines, i + 1, current, source, ends_cleanly)
            after_procedure = i < len(lines) and any(ln.strip() for ln in lines[i:])
            continue
        if key.rstrip(":") == "Actual Temperature" and len(cells) > 1:
            value, status = parse_cell(cells[-1].strip() or cells[1])
            if status == "ok":
                current.temperatures.append(value)
        elif key and not any(c.strip() for c in cells[1:]):
            title = key
        i += 1
    plates.append(current)
    with_reads = [p for p in plates if p.collector and p.collector.reads]
    if not with_reads:
        _no_reads(source, ends_cleanly, after_procedure, last_content, plates)
    return _export(with_reads, fmt)


def _collector(plate: _PlateState, source: Path, ends_cleanly: bool) -> Collector:
    if plate.collector is None:
        date, time = plate.header.get("date"), plate.header.get("time")
        plate.collector = Collector(
            source=source,
            proc=plate.proc,
            plate_type=plate.proc.plate_type or plate.header.get("plate_type", ""),
            measured_at=" ".join(t for t in (date, time) if t) or None,
            ends_cleanly=ends_cleanly,
        )
    return plate.collector


def _read_procedure(
    lines: list[str], i: int, plate: _PlateState, source: Path, ends_cleanly: bool
) -> int:
    """The procedure block after its title: lines up to the first blank after content."""
    while i < len(lines) and not lines[i].strip():
        i += 1
    block: list[str] = []
    while i < len(lines) and lines[i].strip():
        block.append(lines[i])
        i += 1
    if i >= len(lines):
        raise IncompleteFileError(
            "Gen5 export ends inside its Procedure Details (truncated or still being written)",
            source=source,
        )
    plate.proc = parse_procedure(block)
    if plate.proc.plate_type:
        plate.header.setdefault("plate_type", plate.proc.plate_type)
    return i


def _no_reads(
    source: Path,
    ends_cleanly: bool,
    after_procedure: bool,
    last_content: str,
    plates: list[_PlateState],
) -> None:
    last = last_content.split("\t")
    is_title = bool(last[0].strip()) and not any(c.strip() for c in last[1:])
    if not ends_cleanly or not after_procedure or is_title or is_grid_header(last):
        raise IncompleteFileError(
            "Gen5 export without read data yet (truncated or still being written)",
            source=source,
        )
    derived = sorted({d for p in plates if p.collector for d in p.collector.derived})
    what = f"only derived datasets ({', '.join(derived)[:120]})" if derived else "no read data"
    raise FormatError(
        f"finished Gen5 export with {what}: the export template left the raw reads out "
        "(export the read results, e.g. 'Results' or the read's data table)",
        source=source,
    )


def _export(plates: list[_PlateState], fmt: str) -> ExportFile:
    first = plates[0].header
    out_plates: list[Plate] = []
    for n, p in enumerate(plates):
        reads = p.collector.reads if p.collector else []
        endpoint = [r for r in reads if r.time_s is None and r.temperature_c is None]
        temps = p.temperatures
        if temps and len(set(temps)) == 1:
            for r in endpoint:
                r.temperature_c = temps[0]
        elif temps and len(temps) == len(endpoint):
            for r, t in zip(endpoint, temps, strict=True):
                r.temperature_c = t
        out_plates.append(
            Plate(
                plate_id=p.header.get("plate_number", f"Plate {n + 1}"),
                reads=reads,
                barcode=p.header.get("barcode"),
            )
        )
    software = first.get("software_version")
    metadata: dict[str, Any] = {
        "header": first,
        "derived_datasets": sorted({d for p in plates if p.collector for d in p.collector.derived}),
        "aborted_kinetic": any(p.collector.aborted for p in plates if p.collector),
        "read_steps": [
            {"label": s.label, "mode": s.mode, "kind": s.kind, "kinetic": s.kinetic}
            for s in plates[0].proc.steps
        ],
    }
    if plates[0].proc.kinetic_interval_s is not None:
        metadata["kinetic_interval_s"] = plates[0].proc.kinetic_interval_s
        metadata["kinetic_reads_planned"] = plates[0].proc.kinetic_reads
    return ExportFile(
        format=fmt,
        instrument={
            "model": first.get("reader_type"),
            "serial": first.get("reader_serial"),
            "software": f"Gen5 {software}" if software else "Gen5",
        },
        plates=out_plates,
        metadata=metadata,
    )


def _read(sample: Sample, _found: bool) -> ExportFile:
    text = sample.text
    return parse_gen5_lines(
        text.splitlines(), sample.path, ends_cleanly=text.endswith(("\n", "\r"))
    )


READER: Reader[bool] = Reader(
    name="gen5",
    kind="plate",
    sniff=_sniff,
    read=_read,
    priority=10,
    max_bytes=16 * 1024 * 1024,
    describe="BioTek Gen5 text export",
)
