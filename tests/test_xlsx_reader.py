"""The streaming xlsx reader: the same cell texts as openpyxl, and the limits of base.py."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acquisition.formats.base import MAX_INFLATED_BYTES, read_sheets, read_sheets_openpyxl
from errors import FormatError, IncompleteFileError
from tests.workbooks import workbook_bytes


@pytest.mark.parametrize(
    "name",
    sorted(
        p.name
        for p in (Path(__file__).resolve().parents[2] / "shared" / "corpus" / "platereaders").glob(
            "*.xlsx"
        )
    ),
)
def test_corpus_workbooks_read_as_openpyxl_reads_them(corpus: Path, name: str) -> None:
    path = corpus / "platereaders" / name
    data = path.read_bytes()
    assert read_sheets(path, data) == read_sheets_openpyxl(path, data)


_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=12)
_CELL = st.one_of(
    st.none(),
    _TEXT.filter(lambda t: t.strip() == t and not t.startswith("=")),
    st.integers(min_value=-(10**9), max_value=10**9),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.booleans(),
    st.datetimes(min_value=dt.datetime(1901, 1, 1), max_value=dt.datetime(2100, 1, 1)).map(
        lambda d: d.replace(microsecond=0)
    ),
    st.times().map(lambda t: t.replace(microsecond=0)),
)


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(st.lists(_CELL, max_size=8), max_size=8), gap=st.integers(0, 3))
def test_generated_workbooks_read_as_openpyxl_reads_them(
    rows: list[list[object]], gap: int
) -> None:
    sheet = [[] for _ in range(gap)] + rows  # leading empty rows: gaps in the references
    data = workbook_bytes({"S1": sheet, "Second": [['<tag> & "quote"'], [1.5, None, "x"]]})
    path = Path("gen.xlsx")
    assert read_sheets(path, data) == read_sheets_openpyxl(path, data)


def test_durations_and_number_formats(tmp_path: Path) -> None:
    data = workbook_bytes(
        {"S": [[dt.timedelta(days=3, seconds=900), 2.0104166666666665, 45233]]},
        formats={("S", "A1"): "[h]:mm:ss", ("S", "B1"): "h:mm:ss", ("S", "C1"): "yyyy-mm-dd"},
    )
    ours = read_sheets(Path("d.xlsx"), data)
    assert ours == read_sheets_openpyxl(Path("d.xlsx"), data)
    assert ours[0][1][0] == ["3 days, 0:15:00", "1900-01-02 00:15:00", "2023-11-03 00:00:00"]


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, body in members.items():
            zf.writestr(name, body)
    return out.getvalue()


def test_a_zip_bomb_is_refused_by_its_declared_size() -> None:
    bomb = _zip(
        {
            "xl/workbook.xml": b"<workbook/>",
            "xl/worksheets/sheet1.xml": b"\0" * (MAX_INFLATED_BYTES + 1),
        }
    )
    assert len(bomb) < MAX_INFLATED_BYTES // 100
    with pytest.raises(FormatError, match="zip bomb"):
        read_sheets(Path("bomb.xlsx"), bomb)


def test_dtds_and_entities_are_refused() -> None:
    book = workbook_bytes({"S": [["a"]]})
    with zipfile.ZipFile(io.BytesIO(book)) as zf:
        parts = {n: zf.read(n) for n in zf.namelist()}
    body = parts["xl/workbook.xml"]
    body = body.split(b"?>", 1)[1] if body.startswith(b"<?xml") else body
    parts["xl/workbook.xml"] = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>' + body
    with pytest.raises(FormatError, match="DTD"):
        read_sheets(Path("dtd.xlsx"), _zip(parts))


def test_a_truncated_zip_is_incomplete_a_damaged_one_invalid(corpus: Path) -> None:
    data = (corpus / "platereaders" / "curveball__Sunrise_180515_0916.xlsx").read_bytes()
    for cut in (100, len(data) // 2, len(data) - 30):
        with pytest.raises(IncompleteFileError):
            read_sheets(Path("cut.xlsx"), data[:cut])
    damaged = bytearray(data)
    start = data.index(b"xl/worksheets/sheet1.xml") + 60  # inside the member's deflated data
    damaged[start : start + 8] = b"\xff" * 8
    with pytest.raises(FormatError) as info:
        read_sheets(Path("bad.xlsx"), bytes(damaged))
    assert type(info.value) is FormatError
