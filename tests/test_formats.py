"""Readers: every Gen5 and generic-grid file in the corpus, tokens, sniffing, bad input."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acquisition.formats import read_export
from datamodel import WellStatus
from errors import FormatError, IncompleteFileError

GEN5 = [
    "allotropy__gen5__240411_172731_BNCH2345883_abs450_96well_non_numeric_values.txt",
    "allotropy__gen5__endpoint_stdcurve_singleplate.txt",
    "allotropy__gen5__kinetic_helper_gene_growth_curve.txt",
]
GRIDS = ["platereaders/wellmap__std_curve.csv", "doseresponse/ezmtt_MTT_96.csv"]


def test_every_gen5_text_file_in_the_corpus_is_a_gen5_file(corpus: Path) -> None:
    found = [
        p.name
        for p in (corpus / "platereaders").iterdir()
        if p.suffix == ".txt" and b"Software Version\t" in p.read_bytes()[:2000]
    ]
    assert sorted(found) == sorted(GEN5)


@pytest.mark.parametrize("name", GEN5)
def test_gen5_files_parse(corpus: Path, name: str) -> None:
    export = read_export(corpus / "platereaders" / name)
    assert export.format == "gen5"
    assert export.instrument["software"].startswith("Gen5 ")
    read = export.plates[0].reads[0]
    assert read.shape == (8, 12)
    assert read.wavelength_nm is not None


def test_gen5_non_numeric_tokens_are_kept_never_silent_nan(corpus: Path) -> None:
    export = read_export(corpus / "platereaders" / GEN5[0])
    read = export.plates[0].reads[0]
    assert read.label == "abs450:450" and read.wavelength_nm == 450
    assert read.raw_tokens["A8"] == "OVRFLW" and read.status[0, 7] == WellStatus.OVERFLOW
    assert read.raw_tokens["D12"] == "MISSED" and read.status[3, 11] == WellStatus.MISSED
    assert read.values[0, 0] == pytest.approx(2.100)
    ok = read.status == WellStatus.OK
    assert np.isfinite(read.values[ok]).all()
    assert int((~ok).sum()) == len(read.raw_tokens) == 13
    assert export.instrument["model"] == "Synergy H1"


def test_gen5_endpoint_keeps_raw_read_and_lists_derived_data(corpus: Path) -> None:
    export = read_export(corpus / "platereaders" / GEN5[1])
    reads = export.plates[0].reads
    assert [r.label for r in reads] == ["630nmAbsRead:630"]  # not the Layout grid
    assert reads[0].values[0, 0] == pytest.approx(3.337)
    assert reads[0].values[7, 0] == pytest.approx(0.001)
    assert "Blank 630nmAbsRead:630" in export.metadata["derived_datasets"]


def test_gen5_kinetic_reads_time_points_and_skips_aborted_padding(corpus: Path) -> None:
    export = read_export(corpus / "platereaders" / GEN5[2])
    reads = export.plates[0].reads
    assert len(reads) == 20
    assert reads[0].time_s == 22 and reads[1].time_s == 4 * 60 + 22
    assert reads[-1].time_s == 3600 + 16 * 60 + 22
    assert reads[0].temperature_c == 30.0 and reads[0].wavelength_nm == 600
    assert export.metadata["aborted_kinetic"] is True
    assert reads[0].values[0, 0] == pytest.approx(-0.066)
    # wells A1..D6 only: the rest of the 96-well plate was not read
    assert reads[0].status[7, 11] == WellStatus.NOT_READ


@pytest.mark.parametrize("name", GRIDS)
def test_generic_grid_files_parse(corpus: Path, name: str) -> None:
    export = read_export(corpus / name)
    assert export.format == "grid"
    assert export.plates[0].reads


def test_long_table_reads_each_wavelength_column(corpus: Path) -> None:
    export = read_export(corpus / "doseresponse" / "ezmtt_MTT_96.csv")
    reads = export.plates[0].reads
    assert [(r.label, r.wavelength_nm) for r in reads] == [("nm562", 562), ("nm660", 660)]
    assert reads[0].values[0, 0] == pytest.approx(0.5625)
    assert reads[1].values[7, 11] == pytest.approx(0.0865)


def test_labelled_grid_with_semicolons_and_decimal_commas(tmp_path: Path) -> None:
    lines = [";" + ";".join(str(c) for c in range(1, 13))]
    for r, letter in enumerate("ABCDEFGH"):
        lines.append(letter + ";" + ";".join(f"0,{r}{c:02d}" for c in range(12)))
    lines[3] = lines[3].replace("0,200", "OVRFLW")
    path = tmp_path / "plate.csv"
    path.write_text("\n".join(lines), encoding="cp1252")
    read = read_export(path).plates[0].reads[0]
    assert read.values[1, 5] == pytest.approx(0.105)
    assert read.status[2, 0] == WellStatus.OVERFLOW and read.raw_tokens["C1"] == "OVRFLW"


def test_bare_384_block_in_tsv(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    block = rng.uniform(0.05, 2.0, (16, 24))
    path = tmp_path / "bare.tsv"
    path.write_text("\n".join("\t".join(f"{v:.4f}" for v in row) for row in block))
    read = read_export(path).plates[0].reads[0]
    assert read.shape == (16, 24)
    np.testing.assert_allclose(read.values, block, atol=1e-4)


def test_generic_grid_xlsx(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    ws = book.active
    ws.append(["OD 570"])
    ws.append([None, *range(1, 13)])
    for r, letter in enumerate("ABCDEFGH"):
        ws.append([letter, *[0.1 * r + 0.01 * c for c in range(12)]])
    path = tmp_path / "plate.xlsx"
    book.save(path)
    read = read_export(path).plates[0].reads[0]
    assert read.wavelength_nm == 570
    assert read.values[7, 11] == pytest.approx(0.81)


def test_utf16_export_with_bom(tmp_path: Path) -> None:
    text = "\t" + "\t".join(str(c) for c in range(1, 13)) + "\r\n"
    text += "".join(
        letter + "\t" + "\t".join("1.5" for _ in range(12)) + "\r\n" for letter in "ABCDEFGH"
    )
    path = tmp_path / "utf16.txt"
    path.write_bytes(b"\xff\xfe" + text.encode("utf-16-le"))
    assert read_export(path).plates[0].reads[0].values[4, 4] == 1.5


@pytest.mark.parametrize(
    ("content", "cause"),
    [
        (b"", "empty file"),
        (b"   \r\n\r\n", "empty file"),
        (bytes(range(256)) * 8, "binary content"),
        (b"hello, this is not a plate\nat all\n", "no plate grid found"),
    ],
)
def test_bad_input_is_a_one_line_format_error(tmp_path: Path, content: bytes, cause: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(FormatError) as info:
        read_export(path)
    text = str(info.value)
    assert str(path) in text and cause in text and "\n" not in text


def test_gen5_cut_at_every_line_end_is_incomplete_until_the_grid_is_whole(
    corpus: Path, tmp_path: Path
) -> None:
    data = (corpus / "platereaders" / GEN5[0]).read_bytes()
    ends = [i + 1 for i, b in enumerate(data) if b == 0x0A]
    last_row = data.index(b"H\t") + data[data.index(b"H\t") :].index(b"\n") + 1
    path = tmp_path / "cut.txt"
    for end in ends:
        path.write_bytes(data[:end])
        if end < last_row:
            with pytest.raises(IncompleteFileError):
                read_export(path)
        else:
            assert read_export(path).plates[0].reads[0].shape == (8, 12)


@pytest.mark.parametrize("fraction", [0.3, 0.55, 0.8, 0.97])
def test_truncated_gen5_export_is_incomplete_not_misread(
    corpus: Path, tmp_path: Path, fraction: float
) -> None:
    data = (corpus / "platereaders" / GEN5[0]).read_bytes()
    cut = data[: int(len(data) * fraction)]
    path = tmp_path / "half.txt"
    path.write_bytes(cut)
    with pytest.raises(IncompleteFileError):
        read_export(path)


def test_vendor_exports_without_a_reader_are_named(corpus: Path) -> None:
    with pytest.raises(FormatError, match="FCS"):
        read_export(corpus / "fcs" / "flowcal__Data002.fcs")


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(
        st.one_of(
            st.floats(min_value=-0.5, max_value=4.0, allow_nan=False).map(lambda v: f"{v:.3f}"),
            st.sampled_from(["OVRFLW", "MISSED", "?????", "<0.000", ""]),
        ),
        min_size=96,
        max_size=96,
    ),
    delimiter=st.sampled_from([",", ";", "\t"]),
)
def test_grid_roundtrip_property(values: list[str], delimiter: str) -> None:
    """Any 8x12 labelled grid comes back value for value, token for token."""
    out = io.StringIO()
    out.write(delimiter + delimiter.join(str(c) for c in range(1, 13)) + "\n")
    for r, letter in enumerate("ABCDEFGH"):
        out.write(letter + delimiter + delimiter.join(values[r * 12 : r * 12 + 12]) + "\n")
    from acquisition.formats import Sample, sniff

    sample = Sample(path=Path("prop.csv"), data=out.getvalue().encode())
    read = sniff(sample).read(sample).plates[0].reads[0]
    for i, token in enumerate(values):
        r, c = divmod(i, 12)
        if token in ("OVRFLW", "MISSED", "?????", "<0.000"):
            assert read.raw_tokens[f"{'ABCDEFGH'[r]}{c + 1}"] == token
        elif token == "":
            assert read.status[r, c] == WellStatus.NOT_READ
        else:
            assert read.values[r, c] == pytest.approx(float(token))


@settings(max_examples=60, deadline=None)
@given(
    cells=st.lists(
        st.one_of(
            st.floats(min_value=-0.2, max_value=4.0, allow_nan=False).map(lambda v: round(v, 3)),
            st.sampled_from(["OVRFLW", "MISSED", "?????"]),
        ),
        min_size=96,
        max_size=96,
    )
)
def test_gen5_roundtrip_property(cells: list[float | str]) -> None:
    """Any 96-well endpoint read written as a Gen5 export reads back well for well."""
    from datamodel import PlateRead
    from tests.plate_sim import to_gen5_text

    read = PlateRead.empty(8, 12)
    for i, cell in enumerate(cells):
        r, c = divmod(i, 12)
        if isinstance(cell, str):
            read.status[r, c] = WellStatus.INVALID
            read.raw_tokens[f"{'ABCDEFGH'[r]}{c + 1}"] = cell
        else:
            read.values[r, c] = cell
            read.status[r, c] = WellStatus.OK
    from acquisition.formats import Sample, sniff

    sample = Sample(path=Path("prop.txt"), data=to_gen5_text(read).encode("cp1252"))
    back = sniff(sample).read(sample).plates[0].reads[0]
    assert back.raw_tokens == read.raw_tokens
    ok = read.status == WellStatus.OK
    np.testing.assert_allclose(back.values[ok], read.values[ok], atol=5e-4)
    assert (back.status == WellStatus.OK).sum() == ok.sum()
