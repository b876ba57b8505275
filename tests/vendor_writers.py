"""Writers of vendor exports from a known truth, for the reader tests (generated fixtures).

Each writer lays out a plate read the way the vendor software documents and writes it
(SoftMax Pro PlateFormat/TimeFormat, BMG MARS plate and table views, EnVision, Kaleido,
SpectraMax SpreadsheetML), including the variations the corpus does not have (other read
modes, 384 and 1536 wells, several wavelengths and plates, kinetic runs, partial plates,
locale decimal commas). A truth grid is a ``rows × cols`` list of tokens: ``""`` is a
well that was not read, a number string is a value, anything else a reader token.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from datamodel import PLATE_FORMATS, parse_well, row_label, well_name

Grid = list[list[str]]
LETTERS_1536 = [*"ABCDEFGHIJKLMNOPQRSTUVWXYZ", *"abcdef"]


def random_grid(
    rng: random.Random,
    rows: int,
    cols: int,
    *,
    low: float = 0.04,
    high: float = 3.5,
    digits: int = 4,
    tokens: tuple[str, ...] = (),
    empty: float = 0.0,
    region: tuple[int, int, int, int] | None = None,
) -> Grid:
    """A grid of values (some tokens, some empty wells); ``region`` = r0, r1, c0, c1 read."""
    grid: Grid = []
    for r in range(rows):
        row = []
        for c in range(cols):
            if region is not None and not (
                region[0] <= r < region[1] and region[2] <= c < region[3]
            ):
                row.append("")
            elif tokens and rng.random() < 0.05:
                row.append(rng.choice(tokens))
            elif rng.random() < empty:
                row.append("")
            else:
                row.append(f"{rng.uniform(low, high):.{digits}f}")
        grid.append(row)
    return grid


def comma_decimal(grid: Grid) -> Grid:
    return [[t.replace(".", ",") for t in row] for row in grid]


# --- SoftMax Pro ------------------------------------------------------------------------


@dataclass
class SoftmaxPlate:
    name: str
    mode: str = "Absorbance"  # Absorbance | Fluorescence | Luminescence
    read_type: str = "Endpoint"  # Endpoint | Kinetic | Spectrum
    export_format: str = "PlateFormat"  # PlateFormat | TimeFormat
    wells: int = 96
    wavelengths: list[float] = field(default_factory=lambda: [450.0])
    excitations: list[float] = field(default_factory=list)
    # grids[t][w]: time point (or spectrum wavelength) t, wavelength w
    grids: list[list[Grid]] = field(default_factory=list)
    times: list[str] = field(default_factory=list)
    temperatures: list[str] = field(default_factory=list)
    data_type: str = "Raw"
    reduced: bool = False
    spectrum: tuple[float, float, float] | None = None  # start, end, step


def _softmax_header(p: SoftmaxPlate) -> list[str]:
    rows, cols = PLATE_FORMATS[p.wells]
    points = len(p.grids) if p.read_type == "Kinetic" else 1
    start = end = step = ""
    wls = " ".join(f"{w:g}" for w in p.wavelengths) + " "
    n_wl = str(len(p.wavelengths))
    if p.spectrum is not None:
        start, end, step = (f"{v:g}" for v in p.spectrum)
        wls, n_wl = "", ""
        points = len(p.grids)
    timing = ["600", "30"] if p.read_type == "Kinetic" else ["", ""]
    common = [str(points), *timing, start, end, step, n_wl, wls, "1", str(cols), str(p.wells)]
    if p.mode == "Absorbance":
        return [
            "Plate:",
            p.name,
            "1.3",
            p.export_format,
            p.read_type,
            p.mode,
            p.data_type,
            "FALSE",
            *common,
            "1",
            str(rows),
        ]
    exs = " ".join(f"{w:g}" for w in p.excitations) + " " if p.excitations else ""
    tail = [exs, "Automatic", "", "", "", "6", "Medium", "", "", "1", str(rows)]
    if p.mode == "Fluorescence":
        return [
            "Plate:",
            p.name,
            "1.3",
            p.export_format,
            p.read_type,
            p.mode,
            "FALSE",
            p.data_type,
            "FALSE",
            *common,
            *tail,
        ]
    return [
        "Plate:",
        p.name,
        "1.3",
        p.export_format,
        p.read_type,
        p.mode,
        p.data_type,
        "FALSE",
        *common,
        *tail,
    ]


def _softmax_plate_lines(p: SoftmaxPlate) -> list[str]:
    rows, cols = PLATE_FORMATS[p.wells]
    lines = ["\t".join(_softmax_header(p))]
    numbers = "\t".join(str(c) for c in range(1, cols + 1))
    n_groups = len(p.grids[0]) if p.grids else len(p.wavelengths)
    if p.export_format == "PlateFormat":
        lines.append("\tTemperature(¡C)\t" + "\t\t".join([numbers] * n_groups) + "\t\t")
        for t, per_wl in enumerate(p.grids):
            for r in range(rows):
                time = p.times[t] if r == 0 and t < len(p.times) else ""
                temp = p.temperatures[t] if r == 0 and t < len(p.temperatures) else ""
                groups = ["\t".join(grid[r]) for grid in per_wl]
                lines.append(f"{time}\t{temp}\t" + "\t\t".join(groups) + "\t\t")
            lines.append("\t\t" if p.read_type == "Kinetic" else "")
        if p.reduced:
            lines.append("\t\t" + numbers + "\t")
            lines.extend("\t\t" + "\t".join("1.5" for _ in range(cols)) + "\t" for _ in range(rows))
    else:
        names = [well_name(r, c) for r in range(rows) for c in range(cols)]
        first = "Wavelength" if p.read_type == "Spectrum" else "Time"
        lines.append(f"{first}\tTemperature(¡C)\t" + "\t".join(names) + "\t")
        if p.read_type == "Spectrum":
            for t, per_wl in enumerate(p.grids):
                values = [per_wl[0][r][c] for r in range(rows) for c in range(cols)]
                temp = p.temperatures[t] if t < len(p.temperatures) else ""
                lines.append(f"\t{temp}\t" + "\t".join(values) + "\t")
        else:
            for w in range(n_groups):
                for t, per_wl in enumerate(p.grids):
                    values = [per_wl[w][r][c] for r in range(rows) for c in range(cols)]
                    time = p.times[t] if t < len(p.times) else ""
                    temp = p.temperatures[t] if t < len(p.temperatures) else ""
                    lines.append(f"{time}\t{temp}\t" + "\t".join(values) + "\t")
                lines.append("")
        if p.reduced:
            lines.append("\t\t" + "\t".join(names) + "\t")
            lines.append("\t\t" + "\t".join("1.5" for _ in names) + "\t")
    lines.append("~End")
    return lines


def softmax_text(
    plates: list[SoftmaxPlate],
    *,
    notes: int = 1,
    groups: tuple[str, ...] = ("Unknowns",),
    trailer: bool = True,
) -> str:
    """A SoftMax Pro text export (lines joined by CRLF, without encoding)."""
    blocks: list[list[str]] = []
    for n in range(notes):
        blocks.append(
            ["Note:", f"Protocol note {n + 1}", "", "READER SUITABILITY: SpectraMax", "~End"]
        )
    for p in plates:
        blocks.append(_softmax_plate_lines(p))
    for name in groups:
        blocks.append(
            [
                f"Group: {name}",
                "Sample\tWells\tValue\tR\tResult",
                "01\tA1\t0.1\tError\tError",
                "",
                "Group Column\tFormula Name\tFormula",
                "~End",
            ]
        )
    lines = [f"##BLOCKS= {len(blocks)}"] + [line for b in blocks for line in b]
    if trailer:
        lines.append("Original Filename: generated; Date Last Saved: 3/6/2024 3:06:35 PM")
    return "\r\n".join(lines) + "\r\n"


def softmax_bytes(text: str, encoding: str) -> bytes:
    if encoding == "utf-16":
        return b"\xff\xfe" + text.encode("utf-16-le")
    return text.encode(encoding)


# --- BMG MARS ---------------------------------------------------------------------------


@dataclass
class BmgSet:
    title: str  # "Raw Data (450 1)", "Blank corrected based on Raw Data (450 1)", …
    grid: Grid


def bmg_plate_view(
    sets: list[BmgSet],
    *,
    mode_line: str = "Absorbance",
    delimiter: str = ",",
    ragged: bool = False,
    trailing: bool = False,
    date: str = "29/02/2016",
    time: str = "14:34:46",
    id1: str = "plate-17",
    instrument: str = "PHERAstar",
    cycles: list[tuple[int, str]] | None = None,
) -> str:
    d = delimiter
    out = [
        f"User: USER{d}Path: C:\\Program Files (x86)\\BMG\\{instrument}\\User\\Data{d}Test run no.: 4",
        f"Test name: generated{d}Date: {date}{d}Time: {time}",
        "",
        f"ID1: {id1}{d}ID2: 20 ul",
        mode_line,
        "",
    ]
    per_cycle = len(sets) // len(cycles) if cycles else len(sets)
    for k, s in enumerate(sets):
        if cycles and k % per_cycle == 0:
            n, when = cycles[k // per_cycle]
            out += [f"Cycle {n} ({when})", ""]
        rows, cols = len(s.grid), len(s.grid[0])
        labels = LETTERS_1536 if rows == 32 else [row_label(r) for r in range(rows)]
        out += [
            s.title,
            "",
            d + d.join(str(c) for c in range(1, cols + 1)) + (d if trailing else ""),
        ]
        for r in range(rows):
            cells = list(s.grid[r])
            if ragged:
                while cells and not cells[-1]:
                    cells.pop()
            out.append(labels[r] + d + d.join(cells) if cells else labels[r])
        out.append("")
    return "\r\n".join(out) + "\r\n"


def bmg_table_view(
    titles: list[str],
    wells: list[str],
    values: dict[str, list[str]],
    *,
    axis: tuple[str, list[str]] | None = None,
    mode_line: str = "Fluorescence (FI)",
) -> str:
    """MARS table view: ``Well,Content,<titles>`` (+ an axis line), one line per well."""
    out = [
        "User: USER,Path: C:\\Program Files (x86)\\BMG\\CLARIOstar\\User\\Data,Test ID: 4609",
        "Test Name: generated,Date: 5/14/2021,Time: 3:29:50 PM",
        "",
        "ID1: table plate",
        mode_line,
        "",
        "Well,Content," + ",".join(titles) + ",",
    ]
    if axis is not None:
        out.append("," + axis[0] + "," + ",".join(axis[1]) + ",")
    for well in wells:
        out.append(f"{well},Sample X1," + ",".join(values[well]) + ",")
    return "\r\n".join(out) + "\r\n"


def mars_well(name: str) -> str:
    r, c = parse_well(name)
    return f"{row_label(r)}{c + 1:02d}"


# --- EnVision ---------------------------------------------------------------------------


@dataclass
class EnvisionRead:
    plate: int
    label: str  # "A450", "AC HTRF Laser [Eu]", "US LUM 384"
    measinfo: str  # "De=1st Ex=Btm Em=N/A Wdw=N/A (8)"
    grid: Grid
    channel: int = 1
    unit: str = "A"
    barcode: str = ""
    style: str = "labelled"  # labelled | bare | untitled
    calculated: bool = False
    repeat: int = 1
    drop_rows: tuple[int, ...] = ()


_ENV_INFO = (
    "Plate,Repeat,Barcode,Measured height,Chamber temperature at start,Chamber temperature "
    "at end,Humidity at start,Humidity at end,Ambient temperature at start,Ambient "
    "temperature at end,Group,Label,ScanX,ScanY,Measinfo,Kinetics,Measurement date,"
)
_ENV_CALC = (
    "Plate,Repeat,Barcode,Measured height,Chamber temperature at start,Chamber temperature "
    "at end,Humidity at start,Humidity at end,Ambient temperature at start,Ambient "
    "temperature at end,Formula,Measurement date,"
)


def envision_text(
    reads: list[EnvisionRead],
    *,
    labels: dict[str, dict[str, str]] | None = None,
    filters: dict[str, str] | None = None,
    placement_end: bool = False,
    trailer: bool = True,
    rows_cols: tuple[int, int] = (8, 12),
) -> str:
    out: list[str] = []
    for read in reads:
        barcode = f'"=""{read.barcode}"""'
        if read.calculated:
            info = [
                "Plate information",
                _ENV_CALC,
                f"{read.plate},{read.repeat},{barcode},N/A,N/A,N/A,N/A,N/A,N/A,N/A,"
                f"Calc 1: {read.label},1/15/2024 10:30:00 AM,",
                "",
            ]
        else:
            info = [
                "Plate information",
                _ENV_INFO,
                f"{read.plate},{read.repeat},{barcode},14.35,22.00,22.10,42.0,41.5,22.5,22.6,1,"
                f"{read.label}(1),0,0,{read.measinfo},0,1/15/2024 10:30:00 AM,",
                "",
                "Background information",
                "Plate,Label,Result,Signal,Flashes/Time,Meastime,MeasInfo,",
                f"{read.plate},{read.label},0,295000,300,00:00:00.000,{read.measinfo},",
                "",
            ]
        body: list[str] = []
        rows, cols = len(read.grid), len(read.grid[0])
        if read.style in ("labelled", "untitled"):
            if read.style == "labelled":
                title = (
                    f"Calculated results: Calc 1: {read.label}"
                    if read.calculated
                    else f"Results for {read.label}(1) - channel {read.channel} ({read.unit})"
                )
                body.append(title)
            body.append("," + ",".join(f"{c:02d}" for c in range(1, cols + 1)) + ",")
            for r in range(rows):
                if r in read.drop_rows:
                    continue
                body.append(row_label(r) + "," + ",".join(read.grid[r]) + ",")
        else:
            body.extend(",".join(read.grid[r]) + "," for r in range(rows))
        body.append("")
        out += (body + info) if placement_end else (info + body)
    out += ["", "Basic assay information ", "Assay ID: ,,,,101", 'Serial#: ,,,,="1050242"', "", ""]
    out += [
        "Protocol information",
        "Protocol:",
        "Protocol name,,,,Generated",
        "",
        "Plate type:",
        "Name of the plate type,,,,generated",
        f"Number of rows,,,,{rows_cols[0]}",
        f"Number of columns,,,,{rows_cols[1]}",
        "",
    ]
    out += [
        "Auto export parameters:",
        "Export format,,,,Plate",
        f"Place plate information at,,,,{'End' if placement_end else 'Beginning'} of plate",
        "",
    ]
    out += ["Labels:"]
    for name, entries in (labels or {}).items():
        out.append(f"{name},,,,2000014")
        out.extend(f"{k},,,,{v}" for k, v in entries.items())
        out.append("")
    out += ["Filters:"]
    for name, description in (filters or {}).items():
        out += [f"{name},,,,216", "Filter type,,,,Emission", f"Description,,,,{description}", ""]
    out += ["Instrument:", "Serial number,,,,1050242", "Nickname,,,,EnVision", ""]
    if trailer:
        out += ["", "Exported with EnVision Workstation version 1.14.3049.1642"]
    return "\r\n".join(out) + "\r\n"


# --- Kaleido ----------------------------------------------------------------------------


def kaleido_text(
    results: list[tuple[str, Grid]],
    *,
    version: str = "2",
    settings: dict[str, dict[str, str]] | None = None,
    trailer: bool = True,
) -> str:
    """Kaleido 2.0 (``Results for …`` + ``Barcode: …``) or 3.5 (``Result for …`` + table)."""
    nb = "\u00a0"
    out: list[str] = []
    if version == "2":
        out += ["", ""]
    else:
        out += [
            "EnSight Results from,,,",
            "Protocol Name,generated,,",
            "Measurement Date,10/16/2024 13:39,,",
            "",
            "",
        ]
    for k, (tech, grid) in enumerate(results):
        cols = len(grid[0])
        if version == "2":
            out += [
                f"Results for{nb} {tech}",
                "",
                f"Barcode:{nb} V-1,{nb} PlateRepeat:{nb} {k + 1},{nb} WellRepeat:{nb} 1",
            ]
        else:
            out += [
                f"Result for {tech},,",
                "Barcode,Repeat,Loop no,Well scan x,Well scan y,Exc wl / filter,Ems wl,TRF Window,Analysis Parameter,Label-free Parameter,,,",
                f"V-1,{k + 1},,,,,,,,,,,",
                ",,,",
            ]
        out.append("," + ",".join(str(c) for c in range(1, cols + 1)))
        out += [row_label(r) + "," + ",".join(row) for r, row in enumerate(grid)]
        out.append("")
    if version == "2":
        out += [
            "Measurement Basic Information",
            "Software version:,,Kaleido 2.0.3058.126",
            "",
            "Measurement Started:,,2020-10-26T16:16:18.2284559-04:00",
            "Instrument Serial Number:,,1234567",
            "",
        ]
        out += ["Measurements:", ""]
        for tech, entries in (settings or {}).items():
            out += ["Meas,,,,", f"Tech,,,,{tech}", *[f"{k},,,,{v}" for k, v in entries.items()], ""]
        if trailer:
            out += ["", "Exported with Kaleido 2.0.3058.126 and xslt version 2.0.0"]
    else:
        out += [
            "Measurement Information,,,",
            "Measurement Started,,10/16/2024 13:39,",
            "",
            "Instrument Information,,,",
            "Instrument Serial Number,,1712111,",
            "Software Version,,Kaleido 3.5.3082.227,",
            "",
            "Details of Measurement Sequence,,,",
            "",
        ]
        for tech, entries in (settings or {}).items():
            out += [f"Operation,,,{tech}", *[f"{k},,,{v}" for k, v in entries.items()], ""]
        if trailer:
            out += ["Exported with Kaleido 3.5.3082.227,,,"]
    return "\r\n".join(out) + "\r\n"


# --- SpectraMax SpreadsheetML -----------------------------------------------------------


def spreadsheetml_text(
    plates: list[tuple[str, str, str, list[tuple[str, Grid]]]],
    *,
    instrument: str = "iD3-2585",
) -> str:
    """plates: (name, mode 'Abs'/'Fl'/'Lum', read time, [(ex/em text, grid), …])."""

    def cell(value: str, index: int | None = None, number: bool = False) -> str:
        at = f' ss:Index="{index}"' if index is not None else ""
        kind = "Number" if number else "String"
        return f'<Cell{at}><Data ss:Type="{kind}">{escape(value)}</Data></Cell>'

    def row(*cells: str) -> str:
        return "<Row>" + "".join(cells) + "</Row>"

    body = [
        row(cell("Software version"), cell("1.2.0.0")),
        row(cell("Instrument name"), cell(instrument)),
        row(cell("Serial number"), cell("2585")),
    ]
    for k, (name, mode, when, grids) in enumerate(plates):
        rows, cols = len(grids[0][1]), len(grids[0][1][0])
        body += [
            row(cell(f"Plate  ({k + 1} of {len(plates)})")),
            row(cell("Plate name"), cell(name)),
            row(cell("Rows"), cell(str(rows))),
            row(cell("Columns"), cell(str(cols))),
            row(cell("Read Time"), cell(when)),
            row(cell("Measurement mode"), cell(mode)),
            row(cell("Well data")),
        ]
        for ex_em, grid in grids:
            body.append(
                row(
                    cell("Wavelength(Ex/Em)"),
                    cell(ex_em),
                    *[cell(str(c), number=True) for c in range(1, cols + 1)],
                )
            )
            for r in range(rows):
                cells = [cell(row_label(r), index=2)]
                pending_gap = False
                for c in range(cols):
                    token = grid[r][c]
                    if not token:
                        pending_gap = True
                        continue
                    cells.append(
                        cell(
                            token,
                            index=c + 3 if pending_gap or c == 0 else None,
                            number=token.replace(".", "").replace("-", "").isdigit(),
                        )
                    )
                    pending_gap = False
                body.append(row(*cells))
    return (
        '<?xml version="1.0"?>\n<?mso-application progid="Excel.Sheet"?>\n'
        '<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet" '
        'xmlns:ss="urn:schemas-microsoft-com:office:spreadsheet">\n'
        '<Worksheet ss:Name="General"><Table>\n'
        + "\n".join(body)
        + "\n</Table></Worksheet>\n</Workbook>\n"
    )
