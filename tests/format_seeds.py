"""Seed files for fuzzing the export readers: corpus and example files, plus generated ones.

A seed belongs to the reader that claims it: the first registered reader, in priority
order, whose ``sniff`` returns something (the registry's own order, without the refusal of
known-but-unsupported vendors, whose files are good grid-reader seeds). New readers pick
up their seeds from the corpus automatically.
"""

from __future__ import annotations

import io
import random
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import openpyxl

from acquisition.formats import READERS
from acquisition.formats.base import Sample
from datamodel import PlateRead, WellStatus, row_label
from errors import FormatError

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
EXAMPLES = ROOT / "examples"
MAX_SEED_BYTES = 4 * 1024 * 1024  # larger corpus files make slow cases and teach nothing new


@dataclass(frozen=True)
class Seed:
    name: str  # "corpus/platereaders/x.txt", "examples/x.txt", "generated/x.csv"
    data: bytes


def owner(seed: Seed) -> str | None:
    """The name of the reader that claims this content, or None."""
    sample = Sample(path=Path(seed.name), data=seed.data)
    for reader in READERS:
        try:
            if reader.sniff(sample) is not None:
                return reader.name
        except FormatError:
            continue
    return None


def file_seeds(corpus: Path = CORPUS, examples: Path = EXAMPLES) -> list[Seed]:
    found = []
    for folder, prefix in ((corpus, "corpus"), (examples, "examples")):
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            if path.name == "SOURCES.md" or path.stat().st_size > MAX_SEED_BYTES:
                continue
            found.append(Seed(f"{prefix}/{path.relative_to(folder)}", path.read_bytes()))
    return found


def seeds_by_reader(corpus: Path = CORPUS, examples: Path = EXAMPLES) -> dict[str, list[Seed]]:
    """Every registered reader's seeds (an empty list for a reader nothing is claimed by)."""
    out: dict[str, list[Seed]] = {r.name: [] for r in READERS}
    for seed in file_seeds(corpus, examples) + generated_seeds():
        name = owner(seed)
        if name is not None:
            out[name].append(seed)
    return out


# --- generated seeds -------------------------------------------------------------------


def _grid(rows: int, cols: int, seed: int) -> list[list[str]]:
    """Plausible ODs with a few reader tokens and empty (unread) wells."""
    rng = random.Random(seed)
    tokens = ("OVRFLW", "MISSED", "?????", "")
    return [
        [
            rng.choice(tokens) if rng.random() < 0.04 else f"{rng.uniform(0.04, 3.2):.4f}"
            for _ in range(cols)
        ]
        for _ in range(rows)
    ]


def _labelled(rows: int, cols: int, delim: str, seed: int, decimal_comma: bool = False) -> bytes:
    grid = _grid(rows, cols, seed)
    lines = ["OD 570", delim + delim.join(str(c + 1) for c in range(cols))]
    for r, cells in enumerate(grid):
        if decimal_comma:
            cells = [c.replace(".", ",") for c in cells]
        lines.append(row_label(r) + delim + delim.join(cells))
    return ("\r\n".join(lines) + "\r\n").encode("cp1252")


def _bare(rows: int, cols: int, delim: str, seed: int) -> bytes:
    grid = _grid(rows, cols, seed)
    return ("\n".join(delim.join(c or "0.1" for c in row) for row in grid) + "\n").encode()


def _long(header: list[str], seed: int, plates: int = 1, wells: int = 96) -> bytes:
    rng = random.Random(seed)
    lines = [",".join(header)]
    for p in range(plates):
        for k in range(wells):
            r, c = divmod(k, 12 if wells == 96 else 24)
            cells = []
            for h in header:
                if h == "well":
                    cells.append(f"{row_label(r)}{c + 1}")
                elif h == "row":
                    cells.append(row_label(r))
                elif h == "col":
                    cells.append(str(c + 1))
                elif h in ("plate", "replicate"):
                    cells.append(f"P{p + 1}" if h == "plate" else str(p + 1))
                elif h == "conc":
                    cells.append(f"{10 ** rng.uniform(-3, 2):.4g}")
                else:
                    cells.append(f"{rng.uniform(0.04, 3.2):.4f}")
            lines.append(",".join(cells))
    return ("\n".join(lines) + "\n").encode()


def _gen5(rows: int, cols: int, seed: int) -> bytes:
    from tests.plate_sim import to_gen5_text

    rng = random.Random(seed)
    read = PlateRead.empty(rows, cols)
    for r in range(rows):
        for c in range(cols):
            if rng.random() < 0.03:
                read.status[r, c] = WellStatus.OVERFLOW
                read.raw_tokens[f"{row_label(r)}{c + 1}"] = "OVRFLW"
            else:
                read.values[r, c] = rng.uniform(0.04, 3.2)
                read.status[r, c] = WellStatus.OK
    return to_gen5_text(read, plate_number=f"Plate {seed}").encode("cp1252")


def _driver_read(seed: int) -> bytes:
    """A driver read's archived document (a 96-well plate at two wavelengths)."""
    from acquisition.formats.driver_read import read_document
    from datamodel import ExportFile, Plate

    rng = random.Random(seed)
    reads = []
    for nm in (570, 630):
        read = PlateRead.empty(8, 12)
        read.wavelength_nm = nm
        for r in range(8):
            for c in range(12):
                read.values[r, c] = rng.uniform(0.04, 3.2)
                read.status[r, c] = WellStatus.OK
        reads.append(read)
    export = ExportFile(
        format="driver",
        plates=[Plate(plate_id="P1", barcode="BC0001", reads=reads)],
        instrument={"model": "SpectraMax M5", "serial": "SIM-1"},
    )
    return read_document(
        export,
        reader="bench",
        protocol="spectramax",
        port="/dev/pts/9",
        read_at="2024-01-01T00:00:00Z",
    )


def _xlsx(sheets: list[tuple[str, list[list[object]]]]) -> bytes:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets:
        ws = book.create_sheet(title)
        for row in rows:
            ws.append(row)
    buf = io.BytesIO()
    book.save(buf)
    return _fixed_dates(buf.getvalue())


def _fixed_dates(data: bytes) -> bytes:
    """The same workbook with fixed timestamps (so generated seeds are byte-reproducible)."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            content = src.read(info)
            if info.filename == "docProps/core.xml":
                content = re.sub(
                    rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", b"2024-01-01T00:00:00Z", content
                )
            dst.writestr(zipfile.ZipInfo(info.filename, (2024, 1, 1, 0, 0, 0)), content)
    return out.getvalue()


def _xlsx_grid(rows: int, cols: int, seed: int) -> list[list[object]]:
    grid = _grid(rows, cols, seed)
    table: list[list[object]] = [["OD 570"], [None, *range(1, cols + 1)]]
    for r, cells in enumerate(grid):
        table.append([row_label(r), *[float(c) if c[:1].isdigit() else c or None for c in cells]])
    return table


def _xlsx_long(seed: int) -> list[list[object]]:
    rng = random.Random(seed)
    table: list[list[object]] = [["plate", "well", "nm562", "nm660"]]
    for plate in ("P1", "P2"):
        for k in range(96):
            r, c = divmod(k, 12)
            table.append(
                [plate, f"{row_label(r)}{c + 1}", rng.uniform(0.1, 3), rng.uniform(0.01, 0.1)]
            )
    return table


def generated_seeds() -> list[Seed]:
    """Files whose shape is known: every grid shape, delimiter and table layout the readers take."""
    return [
        Seed("generated/gen5_96.txt", _gen5(8, 12, 1)),
        Seed("generated/gen5_384.txt", _gen5(16, 24, 2)),
        Seed("generated/grid_96_comma.csv", _labelled(8, 12, ",", 3)),
        Seed("generated/grid_96_semicolon.csv", _labelled(8, 12, ";", 4, decimal_comma=True)),
        Seed("generated/grid_384_tab.tsv", _labelled(16, 24, "\t", 5)),
        Seed("generated/bare_96.csv", _bare(8, 12, ",", 6)),
        Seed("generated/bare_384.tsv", _bare(16, 24, "\t", 7)),
        Seed("generated/long_wells.csv", _long(["well", "nm562", "nm660"], 8)),
        Seed("generated/long_rowcol.csv", _long(["row", "col", "conc", "od"], 9)),
        Seed("generated/long_plates.csv", _long(["plate", "well", "od"], 10, plates=2)),
        Seed("generated/long_replicates.csv", _long(["replicate", "well", "od"], 11, plates=3)),
        Seed("generated/long_384.csv", _long(["well", "od"], 12, wells=384)),
        Seed("generated/grid_96.xlsx", _xlsx([("Sheet1", _xlsx_grid(8, 12, 13))])),
        Seed("generated/grid_384.xlsx", _xlsx([("Plate", _xlsx_grid(16, 24, 14))])),
        Seed(
            "generated/two_sheets.xlsx",
            _xlsx([("A", _xlsx_grid(8, 12, 15)), ("B", _xlsx_grid(8, 12, 16))]),
        ),
        Seed("generated/long_table.xlsx", _xlsx([("Data", _xlsx_long(17))])),
        Seed("generated/driver_read.json", _driver_read(18)),
    ]
