"""Memory: hostile and huge inputs are refused (or read) within a bounded peak RSS.

Each file is written to disk and read by ``read_any`` in a fresh subprocess, whose peak
resident set (``ru_maxrss``) and outcome are reported; the limit is 300 MB for the whole
process (interpreter, numpy and openpyxl included). The subprocess runs under an
address-space cap so that a regression shows as a MemoryError here, not as the machine
swapping.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from acquisition.formats.base import DEFAULT_MAX_BYTES, MAX_CELLS, MiB
from tests import zip_mutations
from tests.format_seeds import generated_seeds

ROOT = Path(__file__).resolve().parent.parent
PEAK_LIMIT_MB = 300
_READ = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (2 * 1024**3, 2 * 1024**3))
from pathlib import Path
from acquisition.formats import read_any
from errors import FormatError
outcome, message = "ok", ""
try:
    export = read_any(Path(sys.argv[1]))
    message = f"{len(export.plates)} plates, {sum(len(p.reads) for p in export.plates)} reads"
except FormatError as exc:
    outcome, message = type(exc).__name__, str(exc)
except MemoryError:
    outcome = "MemoryError"
print(json.dumps({"outcome": outcome, "message": message}))
"""
# Linux carries the high-water mark of the process that forked a child over into the
# child's ru_maxrss (exec saves the old address space's peak), so a reader started from
# pytest would report pytest's size. A small launcher starts the reader and reports
# RUSAGE_CHILDREN: the reader's own peak, plus at most the launcher's few megabytes.
_LAUNCH = """
import json, resource, subprocess, sys
done = subprocess.run([sys.executable, "-c", sys.argv[1], sys.argv[2]], capture_output=True, text=True)
if done.returncode:
    sys.exit(done.stderr[-2000:] or f"reader exited with {done.returncode}")
result = json.loads(done.stdout)
result["peak_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / 1e6
print(json.dumps(result))
"""


def read_in_subprocess(path: Path) -> dict[str, object]:
    """Outcome, message and peak RSS (MB) of ``read_any(path)`` in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-c", _LAUNCH, _READ, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
        env={"PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, object] = json.loads(done.stdout)
    return result


def _workbook_with_sheet(payload: bytes, crc: int, declared: int) -> bytes:
    """The generated 96-well workbook with its worksheet member replaced by ``payload``."""
    seed = next(s for s in generated_seeds() if s.name == "generated/grid_96.xlsx")
    members = zip_mutations.parse(seed.data)
    assert members is not None
    out = []
    for m in members:
        if m.name == b"xl/worksheets/sheet1.xml":
            m = zip_mutations.RawMember(
                name=m.name,
                payload=payload,
                method=zipfile.ZIP_DEFLATED,
                flags=0,
                crc=crc,
                compress_size=len(payload),
                file_size=declared,
            )
        out.append(m)
    return zip_mutations.build(out)


@pytest.fixture(scope="module")
def two_gib_sheet() -> zip_mutations.Bomb:
    return zip_mutations.sheet_bomb("spaces", 2048, True)


@pytest.mark.parametrize("declared", ["honest", "small", "under_the_limit"])
def test_xlsx_bomb_of_2_gib_is_refused_within_300_mb(
    tmp_path: Path, two_gib_sheet: zip_mutations.Bomb, declared: str
) -> None:
    """~2 MB on disk, a worksheet that inflates to 2 GiB; its declared size honest or lying."""
    bomb = two_gib_sheet
    size = {"honest": bomb.size, "small": 4096, "under_the_limit": 31 * 1024**2}[declared]
    path = tmp_path / "bomb.xlsx"
    path.write_bytes(_workbook_with_sheet(bomb.payload, bomb.crc or 0, size))
    assert 1_000_000 < path.stat().st_size < 3_000_000
    assert bomb.size > 2 * 1024**3
    result = read_in_subprocess(path)
    assert result["outcome"] == "FormatError", result
    assert str(result["message"]).startswith(f"{path}: ")
    assert "\n" not in str(result["message"])
    assert float(str(result["peak_mb"])) < PEAK_LIMIT_MB, result


@pytest.mark.parametrize("filler", ["rows", "empty_rows"])
def test_xlsx_dense_sheet_under_the_inflation_limit_is_refused_within_300_mb(
    tmp_path: Path, filler: str
) -> None:
    """30 MiB of rows (just under the declared-size limit): the element limit refuses it."""
    bomb = zip_mutations.sheet_bomb(filler, 30, True)
    path = tmp_path / "dense.xlsx"
    path.write_bytes(_workbook_with_sheet(bomb.payload, bomb.crc or 0, bomb.size))
    result = read_in_subprocess(path)
    assert result["outcome"] == "FormatError", result
    assert "XML elements" in str(result["message"])
    assert float(str(result["peak_mb"])) < PEAK_LIMIT_MB, result


def _long_table(path: Path, *, reads: int, digits: int, max_bytes: int, max_cells: int) -> int:
    """A long table (plate, well, reads...) of whole 384-well plates; returns its cells."""
    rng = random.Random(7)
    size, cells, plate = 0, 0, 0
    per_plate = 384 * (reads + 2)
    with path.open("w") as fh:
        fh.write("plate,well," + ",".join(f"nm{562 + k}" for k in range(reads)) + "\n")
        while size < max_bytes and cells + per_plate <= max_cells:
            plate += 1
            lines = []
            for k in range(384):
                well = "ABCDEFGHIJKLMNOP"[k // 24] + str(k % 24 + 1)
                values = ",".join(f"{rng.uniform(0, 3):.{digits}f}" for _ in range(reads))
                lines.append(f"P{plate},{well},{values}\n")
            chunk = "".join(lines)
            fh.write(chunk)
            size += len(chunk)
            cells += per_plate
    return cells


def test_50_mb_long_table_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    _long_table(path, reads=2, digits=4, max_bytes=50_000_000, max_cells=10**9)
    assert path.stat().st_size > 50_000_000 > DEFAULT_MAX_BYTES
    result = read_in_subprocess(path)
    assert result["outcome"] == "FormatError", result
    assert "too large" in str(result["message"]) and str(path) in str(result["message"])
    assert float(str(result["peak_mb"])) < PEAK_LIMIT_MB, result


def test_long_table_over_the_cell_limit_is_refused_within_300_mb(tmp_path: Path) -> None:
    """Under the size limit, over the cell limit: refused by a count, before tokenising."""
    path = tmp_path / "long.csv"
    cells = _long_table(path, reads=2, digits=4, max_bytes=DEFAULT_MAX_BYTES - MiB, max_cells=10**9)
    assert cells > MAX_CELLS and path.stat().st_size < DEFAULT_MAX_BYTES
    result = read_in_subprocess(path)
    assert result["outcome"] == "FormatError", result
    assert "cells" in str(result["message"]) and str(path) in str(result["message"])
    assert float(str(result["peak_mb"])) < PEAK_LIMIT_MB, result


def test_largest_long_table_within_the_limits_reads_within_300_mb(tmp_path: Path) -> None:
    """Just under both limits, long numbers: a legitimate (if absurd) table that parses."""
    path = tmp_path / "wide.csv"
    cells = _long_table(
        path, reads=18, digits=13, max_bytes=DEFAULT_MAX_BYTES - MiB, max_cells=MAX_CELLS
    )
    assert cells > 0.9 * MAX_CELLS and path.stat().st_size > 0.8 * DEFAULT_MAX_BYTES
    result = read_in_subprocess(path)
    assert result["outcome"] == "ok", result
    assert float(str(result["peak_mb"])) < PEAK_LIMIT_MB, result
