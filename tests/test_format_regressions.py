"""Regression tests: every reproducer the fuzz harness (bench/fuzz_formats.py) found.

Each input is generated here (small, with its truth known) rather than stored; the
docstring of each test names the crash class the harness reported.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acquisition.formats import base as formats_base
from acquisition.formats import read_any, read_export
from acquisition.formats import text as formats_text
from acquisition.formats.base import MAX_WORKBOOK_CELLS, read_sheets_openpyxl
from acquisition.formats.grid import split_rows
from datamodel import PlateRead, WellStatus, row_index
from errors import FormatError
from tests import zip_mutations
from tests.format_oracle import check_export, message_problem
from tests.plate_sim import to_gen5_text

PATH = Path("regression/input.bin")


def _refused(data: bytes, *needles: str) -> str:
    """The one-line FormatError for ``data`` (each needle in it), else the test fails."""
    with pytest.raises(FormatError) as info:
        read_any(PATH, data)
    text = str(info.value)
    assert message_problem(text, PATH) == "", text
    for needle in needles:
        assert needle in text, text
    return text


def _workbook(rows: list[list[object]]) -> bytes:
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def _grid_96() -> list[list[object]]:
    rows: list[list[object]] = [["OD 570"], [None, *range(1, 13)]]
    rows += [[letter, *[0.1 + 0.01 * c for c in range(12)]] for letter in "ABCDEFGH"]
    return rows


def _with_sheet(data: bytes, change: Callable[[str], str]) -> bytes:
    members = zip_mutations.members_of(data)
    assert members is not None
    sheet = members["xl/worksheets/sheet1.xml"].decode()
    members["xl/worksheets/sheet1.xml"] = change(sheet).encode()
    return zip_mutations.write_clean(members)


# --- well statuses -----------------------------------------------------------------------


def test_unread_wells_are_well_status_members_not_plain_strings() -> None:
    """BrokenInvariant 'not_read is not a WellStatus': np.full stored the enum's str value."""
    read = PlateRead.empty(8, 12)
    assert all(s is WellStatus.NOT_READ for s in read.status.ravel())
    text = "well,od\nA1,0.5\nB2,OVRFLW\n"
    export = read_export(PATH.with_suffix(".csv"), text.encode())
    status = export.plates[0].reads[0].status
    assert status[0, 0] is WellStatus.OK and status[1, 1] is WellStatus.OVERFLOW
    assert status[7, 11] is WellStatus.NOT_READ
    check_export(export)


# --- messages ----------------------------------------------------------------------------


def test_a_long_bad_well_is_quoted_short_in_the_message() -> None:
    """BadMessage (1,292 characters): a long table quoted a whole mangled well cell."""
    lines = ["well,nm562,nm660", "A1,0.5,0.1", '"' + "B8,0.6526," * 130 + '",0.5,0.1']
    text = _refused("\n".join(lines).encode(), "line 3", "is not a well")
    assert len(text) < len(str(PATH)) + 120


def test_a_member_name_with_a_newline_is_quoted_on_one_line() -> None:
    data = _workbook(_grid_96())
    members = zip_mutations.parse(data)
    assert members is not None
    evil = zip_mutations.deflated("evil\nname.xml" + "x" * 500, b"<a/>")
    text = _refused(zip_mutations.build([*members, replace(evil, crc=1)]), "damaged xlsx/zip")
    assert len(text) < len(str(PATH)) + 200


# --- numbers in labels -------------------------------------------------------------------


def test_gen5_label_with_a_huge_wavelength_is_no_read() -> None:
    """BrokenInvariant 'non-finite wavelength': '570nm:1e977' gave an infinite wavelength.

    A label whose wavelength is no wavelength names no measurement: Gen5 calls such
    datasets derived, and an export of only those is refused, never read as infinite nm.
    """
    read = PlateRead.empty(8, 12)
    read.values[:] = 0.5
    read.status[:] = WellStatus.OK
    text = to_gen5_text(read).replace("570nm:570", "570nm:1e977")
    with pytest.raises(FormatError, match="only derived datasets"):
        check_export(read_export(PATH.with_suffix(".txt"), text.encode("cp1252")))


@pytest.mark.parametrize(
    ("label", "nm"),
    [("abs450:450", 450), ("x:0", None), ("x:-5", None), ("x:1e977", None), ("nm562", 562)],
)
def test_wavelengths_come_only_from_the_plausible_range(label: str, nm: float | None) -> None:
    assert formats_text.wavelength_from_label(label) == nm


# --- xlsx: zip level ---------------------------------------------------------------------


@pytest.mark.parametrize("method", [12, 14, 9, 99])
def test_xlsx_member_with_an_odd_compression_method_is_refused_by_name(method: int) -> None:
    """LZMAError from zipfile (method 14); bzip2 and LZMA also inflate without a bound."""
    members = zip_mutations.parse(_workbook(_grid_96()))
    assert members is not None
    k = next(i for i, m in enumerate(members) if m.name == b"xl/worksheets/sheet1.xml")
    members[k] = replace(members[k], method=method)
    _refused(zip_mutations.build(members), f"compression method {method}")


def test_xlsx_refusal_is_remembered_so_the_workbook_is_read_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A hang: a refused workbook was read again by every sniffer that asked."""
    calls = []
    real = formats_base.read_sheets

    def counting(path: Path, data: bytes) -> list[tuple[str, list[list[str]]]]:
        calls.append(path)
        return real(path, data)

    monkeypatch.setattr(formats_base, "read_sheets", counting)
    bomb = zip_mutations.sheet_bomb("empty_rows", 1, True)
    members = zip_mutations.parse(_workbook(_grid_96()))
    assert members is not None
    k = next(i for i, m in enumerate(members) if m.name == b"xl/worksheets/sheet1.xml")
    members[k] = replace(
        members[k],
        payload=bomb.payload,
        crc=bomb.crc or 0,
        compress_size=len(bomb.payload),
        file_size=bomb.size,
    )
    _refused(zip_mutations.build(members), "not a plate")  # an empty sheet, or refused
    assert len(calls) == 1


# --- xlsx: XML level ---------------------------------------------------------------------


@pytest.mark.parametrize("ref", ["1e10", "99999999999", "1048577"])
def test_xlsx_row_number_far_away_is_refused_not_padded_forever(ref: str) -> None:
    """MemoryError: openpyxl yields an empty row for every missing row number."""

    def far_row(sheet: str) -> str:
        sheet = re.sub(r"<dimension [^>]*/>", "", sheet)  # nothing tells openpyxl where to stop
        return sheet.replace('<row r="3"', f'<row r="{ref}"', 1)

    data = _with_sheet(_workbook(_grid_96()), far_row)
    with pytest.raises(FormatError, match=f"more than {MAX_WORKBOOK_CELLS} cells"):
        read_sheets_openpyxl(PATH, data)
    # The fast reader places cells by their own references (A3…), so the row number is
    # never padded to; the plate reads as written.
    export = read_export(PATH, data)
    assert export.plates[0].reads[0].values.shape == (8, 12)


def test_xlsx_dimension_claiming_the_whole_sheet_is_refused() -> None:
    def whole_sheet(sheet: str) -> str:
        return re.sub(r'<dimension ref="[^"]*"', '<dimension ref="A1:XFD1048576"', sheet)

    _refused(
        _with_sheet(_workbook(_grid_96()), whole_sheet), f"more than {MAX_WORKBOOK_CELLS} cells"
    )


def _with_one_shared_string(data: bytes, text: str) -> bytes:
    """The workbook with every inline 'LONG' cell showing one shared string ``text``."""
    members = zip_mutations.members_of(data)
    assert members is not None
    ns = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    members["xl/sharedStrings.xml"] = f'<sst xmlns="{ns}"><si><t>{text}</t></si></sst>'.encode()
    members["[Content_Types].xml"] = members["[Content_Types].xml"].replace(
        b"</Types>",
        b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
        b'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>',
    )
    members["xl/_rels/workbook.xml.rels"] = members["xl/_rels/workbook.xml.rels"].replace(
        b"</Relationships>",
        b'<Relationship Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        b'relationships/sharedStrings" Target="sharedStrings.xml" Id="rIdS"/></Relationships>',
    )
    sheet = members["xl/worksheets/sheet1.xml"]
    members["xl/worksheets/sheet1.xml"] = sheet.replace(
        b't="inlineStr"><is><t>LONG</t></is>', b't="s"><v>0</v>'
    )
    return zip_mutations.write_clean(members)


def test_xlsx_shared_string_shown_in_many_cells_counts_once_per_cell() -> None:
    """Cell text is bounded per cell: one long shared string shown in every cell is refused."""
    rows: list[list[object]] = [["OD 570"], [None, *range(1, 13)]]
    rows += [[letter, *["LONG"] * 12] for letter in "ABCDEFGH"]
    short = read_any(PATH, _with_one_shared_string(_workbook(rows), "OVRFLW"))
    assert short.plates[0].reads[0].raw_tokens["H12"] == "OVRFLW"  # the workbook is sound
    _refused(_with_one_shared_string(_workbook(rows), "x" * 400_000), "characters")


# --- text tables -------------------------------------------------------------------------


def test_text_table_over_the_cell_limit_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """It said 'no plate grid found': the grid sniffer swallowed the cell-limit error."""
    monkeypatch.setattr(formats_base, "MAX_CELLS", 100)
    lines = ["well,od"] + [f"A{c},0.5" for c in range(1, 13)] * 10
    _refused("\n".join(lines).encode(), "cells", "limit 100")


@settings(max_examples=100, deadline=None)
@given(
    text=st.lists(
        st.sampled_from(["a", "1", ",", ";", "\t", '"', "\r", "\n", "\r\n", "é", "€", "\x0b"]),
        max_size=200,
    ).map("".join),
    codec=st.sampled_from(["utf-8", "cp1252", "utf-8-sig"]),
    block=st.integers(min_value=1, max_value=16),
)
def test_tokenising_in_blocks_is_tokenising_the_whole_text(
    text: str, codec: str, block: int
) -> None:
    """Blocks end at line ends (never between CR and LF), so nothing changes but memory."""
    data = text.encode(codec, errors="replace")
    whole = formats_text.decode(data, "t")
    original = formats_text.BLOCK_BYTES
    formats_text.BLOCK_BYTES = block
    try:
        blocks = list(formats_text.decode_blocks(data, "t"))
    finally:
        formats_text.BLOCK_BYTES = original
    assert "".join(blocks) == whole
    assert split_rows(blocks, ",", PATH) == split_rows(whole, ",", PATH)


# --- well addressing ---------------------------------------------------------------------


@pytest.mark.parametrize("label", ["ı", "ſ", "ß", "Ä", "Ⅰ"])
def test_non_ascii_row_labels_are_no_rows(label: str) -> None:
    """'ı'.upper() is 'I': a grid went on into row I (and a 384-well plate) on a typo."""
    with pytest.raises(ValueError, match="not a plate row"):
        row_index(label)
    lines = ["," + ",".join(str(c) for c in range(1, 13))]
    lines += [f"{letter}," + ",".join("0.5" for _ in range(12)) for letter in "ABCDEFGH"]
    lines.append(f"{label}," + ",".join("9.9" for _ in range(12)))
    read = read_export(PATH.with_suffix(".csv"), "\n".join(lines).encode()).plates[0].reads[0]
    assert read.shape == (8, 12)
    assert (read.values == 0.5).all()


@pytest.mark.parametrize("col", ["0", "-1", "1e977", "13.5", "²"])
def test_row_col_table_with_an_impossible_column_is_refused(col: str) -> None:
    """IndexError/OverflowError, or the well landed silently in A12/A11 (columns 0, -1)."""
    lines = ["row,col,od", "A,1,0.5", "A,2,0.6", f"B,{col},0.7"]
    text = _refused("\n".join(lines).encode(), "line 4", "is not a well")
    assert col[:3] in text or col == "²"


def test_duplicate_well_in_a_long_table_names_both_lines() -> None:
    lines = ["well,od", "A1,0.5", "A2,0.6", "A1,0.7"]
    _refused("\n".join(lines).encode(), "line 4", "A1", "first on line 2")


def test_plate_and_replicate_columns_split_a_long_table_into_plates() -> None:
    lines = ["plate,replicate,well,od"]
    lines += [f"{p},{r},{w},{0.1 * (p + r)}" for p in (1, 2) for r in (1, 2) for w in ("A1", "B2")]
    export = read_export(PATH.with_suffix(".csv"), "\n".join(lines).encode())
    assert [p.plate_id for p in export.plates] == [
        "plate 1 / replicate 1",
        "plate 1 / replicate 2",
        "plate 2 / replicate 1",
        "plate 2 / replicate 2",
    ]
    assert export.plates[3].reads[0].values[1, 1] == pytest.approx(0.4)


@pytest.mark.parametrize(
    "doctype",
    [
        '<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>',
        '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>',
    ],
)
def test_xlsx_part_with_a_dtd_is_refused_before_parsing(doctype: str) -> None:
    """Growth of 40-90 MB per workbook: expat expands entities for megabytes before it stops."""

    def with_dtd(sheet: str) -> str:
        return re.sub(r"^<\?xml[^>]*\?>", "", sheet).replace(
            "<worksheet", doctype + "<worksheet", 1
        )

    _refused(_with_sheet(_workbook(_grid_96()), with_dtd), "declares a DTD")


@pytest.mark.parametrize("encoding", ["UTFFFFFF-8", "no-such-codec", "latin-1", ""])
def test_xlsx_part_declaring_an_encoding_other_than_utf_is_refused(encoding: str) -> None:
    """Fuzzing (bench/fuzz_formats, 10,000 cases per reader): expat raised LookupError for a
    declaration naming an unknown encoding."""

    def declared(sheet: str) -> str:
        return f'<?xml version="1.0" encoding="{encoding}"?>' + re.sub(
            r"^<\?xml[^>]*\?>", "", sheet
        )

    _refused(_with_sheet(_workbook(_grid_96()), declared), "declares the encoding")


def test_xlsx_crash_reproducers_of_the_fuzzer_are_refused_in_one_line() -> None:
    found = sorted((Path(__file__).parent / "data" / "fuzz").glob("*-unknown-encoding.bin"))
    assert [p.name.split("-")[0] for p in found] == ["gen5_xlsx", "tecan_xfluor4"]
    for path in found:
        _refused(path.read_bytes(), "declares the encoding")


# --- driver read documents -----------------------------------------------------------------


def _driver_doc(**read_changes: object) -> dict[str, object]:
    read = PlateRead.empty(8, 12)
    read.values[:] = 0.5
    read.status[:] = WellStatus.OK
    body = read.to_dict() | read_changes
    return {"format": "platewatch-read", "version": 1, "plates": [{"plate": "P1", "reads": [body]}]}


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"values": [[1e999] * 12] * 8}, "not a finite number"),  # json reads 1e999 as inf
        ({"values": [[10**400] * 12] * 8}, "beyond float range"),  # OverflowError in float()
        ({"rows": 7, "values": [[0.5] * 12] * 7, "status": [["ok"] * 12] * 7}, "plate format"),
        ({"status": [["A" * 5000] * 12] * 8}, "not a valid platewatch read"),  # quoted short
        ({"time_s": "soon"}, "time_s is not a number"),
        ({"rows": 8.0}, "is not a count"),
    ],
)
def test_driver_read_documents_with_junk_are_refused_in_one_line(
    change: dict[str, object], needle: str
) -> None:
    """Fuzzing found infinite ODs, OverflowError and 5,000-character messages here."""
    data = json.dumps(_driver_doc(**change)).replace("Infinity", "1e999").encode()
    _refused(data, needle)


def test_driver_read_document_with_nan_constants_is_refused() -> None:
    data = json.dumps(_driver_doc()).replace("0.5", "NaN", 1).encode()
    _refused(data, "NaN is not a number")


def test_a_read_label_with_a_wavelength_of_400_digits_is_refused_not_an_infinite_read(
    corpus: Path,
) -> None:
    """Hypothesis (test_format_properties, gen5, replace_field): 'abs450:999…9' read as a
    wavelength of inf."""
    path = (
        corpus
        / "platereaders"
        / "allotropy__gen5__240411_172731_BNCH2345883_abs450_96well_non_numeric_values.txt"
    )
    data = path.read_bytes().replace(b"abs450:450", b"abs450:" + b"9" * 400)
    _refused(data, "the wavelength is not a finite number")
