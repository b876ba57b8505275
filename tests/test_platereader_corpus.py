"""Every file of ``../shared/corpus/platereaders/``: exports parse, other files are refused.

Parametrised over the folder, so a file added there is tested without code changes: it
must parse as an export (the contract checks below), unless its name says it is a layout
or an instrument definition, which must be refused with a one-line FormatError that says
what it is (found by content: the readers never look at the name). Spot values per file
live in each reader's own test file (``tests/test_reader_<format>.py``).
"""

from __future__ import annotations

import fnmatch
import json
import math

import pytest

from acquisition.formats import READERS, read_export
from datamodel import PLATE_FORMATS, UNITS, WellStatus, parse_well
from errors import FormatError, IncompleteFileError
from tests.conftest import CORPUS

FOLDER = CORPUS / "platereaders"
FILES = sorted(p.name for p in FOLDER.iterdir() if p.is_file() and p.name != "SOURCES.md")

# Files that are not exports, and what the refusal must call them.
NOT_EXPORTS = {
    "*.toml": "wellmap plate layout",
    "*.yaml": "instrument definition",
    "*plate_template*.csv": "plate map",
}
# Readers written on the "readers-b" branch; the lead removes these marks when merging.
IN_PROGRESS: set[str] = set()  # files whose reader is still being written (none now)


def _refusal(name: str) -> str | None:
    return next(
        (what for pattern, what in NOT_EXPORTS.items() if fnmatch.fnmatch(name, pattern)), None
    )


def _cases() -> list[object]:
    marks = pytest.mark.xfail(strict=False, reason="reader in progress (readers-b)")
    return [pytest.param(n, marks=marks) if n in IN_PROGRESS else n for n in FILES]


def test_the_corpus_folder_is_there_and_known() -> None:
    assert len(FILES) >= 30
    assert all((FOLDER / n).stat().st_size > 0 for n in FILES)


@pytest.mark.parametrize("name", _cases())
def test_corpus_file(name: str) -> None:
    path = FOLDER / name
    what = _refusal(name)
    if what is not None:
        with pytest.raises(FormatError) as info:
            read_export(path)
        message = str(info.value)
        assert not isinstance(info.value, IncompleteFileError), message
        assert what in message and "not a plate-reader export" in message, message
        assert str(path) in message and "\n" not in message
        return
    export = read_export(path)
    assert export.format in {r.name for r in READERS}
    assert export.plates, "an export without plates"
    assert set(export.instrument) >= {"model", "serial", "software"}
    json.dumps(export.metadata, allow_nan=False, default=str)
    for plate in export.plates:
        assert plate.plate_id and plate.reads
        for read in plate.reads:
            _check_read(read)


def _check_read(read: object) -> None:
    from datamodel import PlateRead

    assert isinstance(read, PlateRead)
    assert read.shape in PLATE_FORMATS.values()
    assert read.mode in UNITS
    ok = read.status == WellStatus.OK
    assert ok.any(), f"{read.label}: no well has a value"
    assert all(math.isfinite(v) for v in read.values[ok].tolist())
    for r in range(read.shape[0]):
        for c in range(read.shape[1]):
            status = read.status[r, c]
            if status not in (WellStatus.OK, WellStatus.NOT_READ):
                assert any(parse_well(w) == (r, c) for w in read.raw_tokens), (read.label, r, c)
    for value in (read.wavelength_nm, read.time_s, read.temperature_c):
        assert value is None or math.isfinite(value)
    if read.mode == "luminescence":
        assert read.unit == "RLU"  # counts are never called OD
    json.dumps(read.to_dict(), allow_nan=False)
