"""SpectraMax iD3 SpreadsheetML exports: the corpus file, generated plates, unsafe XML."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings

from acquisition.formats import read_export
from datamodel import PlateRead, WellStatus, parse_well, well_name
from errors import FormatError, IncompleteFileError
from tests.reader_mutations import check_outcome, mutated
from tests.vendor_writers import random_grid, spreadsheetml_text

XML = "growth-curve-calculator__sample_endpoints_1.xml"


def _assert_grid(got: PlateRead, grid: list[list[str]]) -> None:
    for r, row in enumerate(grid):
        for c, token in enumerate(row):
            if not token:
                assert got.status[r, c] == WellStatus.NOT_READ, well_name(r, c)
            else:
                assert got.values[r, c] == pytest.approx(float(token)), well_name(r, c)


@pytest.fixture(params=["whole-tree", "streamed"])
def xml_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test on both parsing paths (small documents whole, big ones streamed)."""
    if request.param == "streamed":
        monkeypatch.setattr("acquisition.formats.spreadsheetml.WHOLE_TREE_CHARS", 100)
    return str(request.param)


def test_two_plates_with_gaps_placed_by_cell_index(corpus: Path, xml_path: str) -> None:
    export = read_export(corpus / "platereaders" / XML)
    assert export.format == "spreadsheetml"
    assert export.instrument == {
        "model": "iD3-2585",
        "serial": "2585",
        "software": "SpectraMax 1.2.0.0",
    }
    chlamy, phaeo = export.plates
    assert (chlamy.plate_id, phaeo.plate_id) == ("Chlamy", "Phaeo")
    a, b = chlamy.reads[0], phaeo.reads[0]
    assert (a.wavelength_nm, b.wavelength_nm, a.mode) == (750, 700, "absorbance")
    # plate 1: cells start at ss:Index 7 = plate column 5
    assert a.values[parse_well("A5")] == 0.05 and a.values[parse_well("A8")] == 1.0629999999999999
    assert a.status[parse_well("A4")] == WellStatus.NOT_READ and int((a.status == "ok").sum()) == 32
    assert (
        b.values[parse_well("A1")] == 0.28299999999999997
        and b.values[parse_well("H10")] == 0.14399999999999999
    )
    assert int((b.status == "ok").sum()) == 80
    assert a.measured_at == "08/06/2024 22:19:29" and b.measured_at == "08/06/2024 22:21:08"


def test_generated_fluorescence_two_wavelengths_and_384(tmp_path: Path, xml_path: str) -> None:
    rng = random.Random(1)
    g1 = random_grid(rng, 8, 12, empty=0.2, low=100, high=5e4, digits=1)
    g2 = random_grid(rng, 8, 12, empty=0.2, low=100, high=5e4, digits=1)
    g3 = random_grid(rng, 16, 24, empty=0.1)
    text = spreadsheetml_text(
        [
            (
                "FL plate",
                "Fl",
                "01/02/2025 10:00:00",
                [("485 nm/535 nm", g1), ("544 nm/590 nm", g2)],
            ),
            ("Abs 384", "Abs", "01/02/2025 10:05:00", [("600 nm/-", g3)]),
        ]
    )
    path = tmp_path / "id3.xml"
    path.write_text(text, encoding="utf-8")
    export = read_export(path)
    fl = export.plates[0].reads
    assert [(r.mode, r.wavelength_nm, r.label) for r in fl] == [
        ("fluorescence", 535, "485 nm/535 nm"),
        ("fluorescence", 590, "544 nm/590 nm"),
    ]
    _assert_grid(fl[0], g1)
    _assert_grid(fl[1], g2)
    big = export.plates[1].reads[0]
    assert big.shape == (16, 24)
    _assert_grid(big, g3)


def test_dtd_and_entities_are_refused_before_parsing(tmp_path: Path) -> None:
    bomb = (
        '<?xml version="1.0"?>\n<?mso-application progid="Excel.Sheet"?>\n'
        '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>\n'
        "<Workbook>&lol2;</Workbook>\n"
    )
    path = tmp_path / "bomb.xml"
    path.write_text(bomb)
    with pytest.raises(FormatError, match="DTD or entity") as info:
        read_export(path)
    assert not isinstance(info.value, IncompleteFileError)


def test_cut_anywhere_is_incomplete_and_broken_xml_is_invalid(corpus: Path, xml_path: str) -> None:
    data = (corpus / "platereaders" / XML).read_bytes()
    path = corpus / "platereaders" / XML
    for cut in range(60, len(data) - 12, 97):
        with pytest.raises(IncompleteFileError):
            read_export(path, data[:cut])
    broken = data.replace(b"</Row>", b"</Rox>", 1)
    with pytest.raises(FormatError, match="not well-formed") as info:
        read_export(path, broken)
    assert not isinstance(info.value, IncompleteFileError)


def test_settings_only_document_is_invalid(tmp_path: Path) -> None:
    text = spreadsheetml_text([]).replace(
        "</Table>", "<Row><Cell><Data>Plate  (1 of 1)</Data></Cell></Row></Table>"
    )
    path = tmp_path / "settings.xml"
    path.write_text(text)
    with pytest.raises(FormatError, match="without well data"):
        read_export(path)


SEEDS = [
    (
        Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "platereaders" / XML
    ).read_bytes(),
    spreadsheetml_text(
        [("P", "Lum", "x", [("-/-", random_grid(random.Random(2), 8, 12, empty=0.3))])]
    ).encode(),
]


@settings(max_examples=120, deadline=None)
@given(data=mutated(SEEDS))
def test_mutated_spreadsheetml_exports_never_crash(data: bytes) -> None:
    check_outcome(Path("mutated-id3.xml"), data)
