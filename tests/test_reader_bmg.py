"""BMG MARS CSV exports: the corpus files, generated plate/table views, bad input."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings

from acquisition.formats import read_export
from acquisition.formats.bmg import filter_wavelengths, parse_duration
from datamodel import ExportFile, PlateRead, WellStatus, parse_well, well_name
from errors import FormatError, IncompleteFileError
from tests.reader_mutations import check_outcome, mutated
from tests.vendor_writers import (
    BmgSet,
    bmg_plate_view,
    bmg_table_view,
    comma_decimal,
    mars_well,
    random_grid,
)

QC384 = "allotropy__bmg_mars__16-03-03 16-54-03 472 ABS 384 QC.csv"
LABTECH = "allotropy__bmg_mars__BMG Labtech format.CSV"
RAGGED = "allotropy__bmg_mars__MARS V3.40 V2 Output Missing line end separators.csv"
PHERASTAR = "allotropy__bmg_mars__PHERAstar output file.CSV"


def read(corpus: Path, name: str) -> ExportFile:
    return read_export(corpus / "platereaders" / name)


def at(read: PlateRead, well: str) -> float:
    r, c = parse_well(well)
    return float(read.values[r, c])


def test_labtech_format_absorbance_450(corpus: Path) -> None:
    export = read(corpus, LABTECH)
    r = export.plates[0].reads[0]
    assert export.format == "bmg" and export.instrument["software"] == "BMG MARS"
    assert (r.label, r.wavelength_nm, r.mode, r.shape) == (
        "Raw Data (450 1)",
        450,
        "absorbance",
        (8, 12),
    )
    assert at(r, "A1") == 0.073 and at(r, "H12") == 0.207 and at(r, "C9") == 0.71
    assert r.measured_at == "5/14/2021 3:29:50 PM"  # US date, 12-hour clock: kept raw
    assert export.plates[0].plate_id == "xxxxxxxxxxxxx"
    assert export.metadata["header"]["id2"] == "Plate 1"


def test_pherastar_two_spaces_before_the_filter(corpus: Path) -> None:
    export = read(corpus, PHERASTAR)
    r = export.plates[0].reads[0]
    assert r.label == "Raw Data (450)" and r.wavelength_nm == 450
    assert at(r, "A1") == 1.691 and at(r, "H12") == 0.884
    assert export.instrument["model"] == "PHERAstar"


def test_384_qc_plate_with_unread_wells_and_day_first_date(corpus: Path) -> None:
    r = read(corpus, QC384).plates[0].reads[0]
    assert r.shape == (16, 24) and r.wavelength_nm == 484
    assert at(r, "C1") == 2.368 and at(r, "P24") == 0.032 and at(r, "I7") == 0.07
    assert r.status[parse_well("J1")] == WellStatus.NOT_READ  # rows J-N: empty cells
    assert r.status[parse_well("A8")] == WellStatus.NOT_READ
    assert int((r.status == WellStatus.OK).sum()) == 99
    assert r.measured_at == "03/03/2016 16:54:03"


def test_ragged_rows_fluorescence_384(corpus: Path) -> None:
    export = read(corpus, RAGGED)
    r = export.plates[0].reads[0]
    assert r.mode == "fluorescence" and r.unit == "RFU" and r.wavelength_nm == 620
    assert r.label == "Raw Data (580/620)" and r.shape == (16, 24)
    assert at(r, "A1") == 25104 and at(r, "A20") == 24361 and at(r, "P12") == 62
    assert r.status[parse_well("A21")] == WellStatus.NOT_READ  # the missing end of row A
    assert r.status[parse_well("O11")] == WellStatus.NOT_READ  # an empty cell inside row O
    assert int((r.status == WellStatus.OK).sum()) == 302


def test_filter_texts_and_durations() -> None:
    assert filter_wavelengths("450 1") == (None, 450)
    assert filter_wavelengths("580/620") == (580, 620)
    assert filter_wavelengths("F: 482-16/525-20") == (482, 525)
    assert filter_wavelengths("No filter") == (None, None)
    assert parse_duration("1 h 15 min") == 4500 and parse_duration("0 min 38 s") == 38
    assert parse_duration("27 h") == 97200 and parse_duration("soon") is None


# --- generated layouts ------------------------------------------------------------------


def _assert_grid(got: PlateRead, grid: list[list[str]]) -> None:
    for r, row in enumerate(grid):
        for c, token in enumerate(row):
            if not token:
                assert got.status[r, c] == WellStatus.NOT_READ, well_name(r, c)
            else:
                assert got.values[r, c] == pytest.approx(float(token.replace(",", "."))), well_name(
                    r, c
                )


def test_dual_wavelength_with_derived_blocks_semicolons_and_decimal_commas(tmp_path: Path) -> None:
    rng = random.Random(1)
    raw450 = random_grid(rng, 8, 12)
    raw620 = random_grid(rng, 8, 12, high=0.2)
    sets = [
        BmgSet("Raw Data (450 1)", comma_decimal(raw450)),
        BmgSet("Raw Data (620 2)", comma_decimal(raw620)),
        BmgSet("Blank corrected based on Raw Data (450 1)", comma_decimal(random_grid(rng, 8, 12))),
        BmgSet(
            "Average over replicates based on Blank corrected (450 1)",
            comma_decimal(random_grid(rng, 8, 12)),
        ),
    ]
    path = tmp_path / "dual.csv"
    path.write_text(
        bmg_plate_view(sets, delimiter=";", date="14.05.2021", time="15:29:50"), encoding="cp1252"
    )
    export = read_export(path)
    reads = export.plates[0].reads
    assert [(r.label, r.wavelength_nm) for r in reads] == [
        ("Raw Data (450 1)", 450),
        ("Raw Data (620 2)", 620),
    ]
    _assert_grid(reads[0], raw450)
    _assert_grid(reads[1], raw620)
    assert export.metadata["derived_datasets"] == [
        "Average over replicates based on Blank corrected (450 1)",
        "Blank corrected based on Raw Data (450 1)",
    ]
    assert reads[0].measured_at == "14.05.2021 15:29:50"


def test_luminescence_1536_rows_a_to_z_then_lowercase(tmp_path: Path) -> None:
    rng = random.Random(2)
    grid = random_grid(rng, 32, 48, low=100, high=90000, digits=0, empty=0.1)
    path = tmp_path / "lum1536.csv"
    path.write_text(
        bmg_plate_view(
            [BmgSet("Raw Data (No filter)", grid)], mode_line="Luminescence", ragged=True
        )
    )
    r = read_export(path).plates[0].reads[0]
    assert r.shape == (32, 48) and r.mode == "luminescence" and r.unit == "RLU"
    assert r.wavelength_nm is None
    _assert_grid(r, grid)


def test_kinetic_cycles_in_the_plate_view(tmp_path: Path) -> None:
    rng = random.Random(3)
    grids = [random_grid(rng, 8, 12) for _ in range(3)]
    text = bmg_plate_view(
        [BmgSet("Raw Data (600)", g) for g in grids],
        cycles=[(1, "0 min  - Inj. only"), (2, "0 min 38 s"), (3, "1 min 16 s")],
    )
    path = tmp_path / "cycles.csv"
    path.write_text(text)
    reads = read_export(path).plates[0].reads
    assert [r.time_s for r in reads] == [0, 38, 76]
    assert len({r.label for r in reads}) == 1
    for r, g in zip(reads, grids, strict=True):
        _assert_grid(r, g)


def test_table_view_kinetic_and_spectrum(tmp_path: Path) -> None:
    wells = ["A01", "A02", "B01", "H12"]
    times = ["0 min", "1 h 15 min", "2 h"]
    values = {w: [f"{k * 100 + n}" for n in range(3)] for k, w in enumerate(wells)}
    path = tmp_path / "table.csv"
    path.write_text(bmg_table_view(["Raw Data (485/520)"] * 3, wells, values, axis=("Time", times)))
    reads = read_export(path).plates[0].reads
    assert [r.time_s for r in reads] == [0, 4500, 7200]
    assert reads[1].values[parse_well("B1")] == 201 and reads[2].values[parse_well("H12")] == 302
    assert (
        reads[0].status[parse_well("C5")] == WellStatus.NOT_READ and reads[0].mode == "fluorescence"
    )
    spectrum = bmg_table_view(
        ["Raw Data (Abs Spectrum)"] * 3,
        wells,
        values,
        axis=("Wavelength [nm]", ["260", "261", "262"]),
        mode_line="Absorbance spectrum",
    )
    path.write_text(spectrum)
    reads = read_export(path).plates[0].reads
    assert [r.wavelength_nm for r in reads] == [260, 261, 262]
    assert reads[0].mode == "absorbance"


def test_table_view_with_an_empty_line_after_every_line(tmp_path: Path) -> None:
    wells = ["A01", "A02", "B01"]
    values = {w: [str(k), str(k + 10)] for k, w in enumerate(wells)}
    text = bmg_table_view(
        ["Raw Data (600)"] * 2, wells, values, axis=("Time", ["0 h ", "0 h 15 min"])
    )
    path = tmp_path / "spaced.csv"
    path.write_text(text.replace("\r\n", "\r\n\r\n"))
    reads = read_export(path).plates[0].reads
    assert [r.time_s for r in reads] == [0, 900]
    assert reads[1].values[parse_well("B1")] == 12 and int((reads[0].status == "ok").sum()) == 3


def test_table_view_endpoint_keeps_mars_calculations_out(tmp_path: Path) -> None:
    wells = [mars_well(w) for w in ("A1", "A2", "P24")]
    values = {w: ["0.5", "0.25"] for w in wells}
    path = tmp_path / "t.csv"
    path.write_text(
        bmg_table_view(
            ["Raw Data (450 1)", "Blank corrected based on Raw Data (450 1)"],
            wells,
            values,
            mode_line="Absorbance",
        )
    )
    export = read_export(path)
    assert len(export.plates[0].reads) == 1 and export.plates[0].reads[0].shape == (16, 24)
    assert export.metadata["derived_datasets"] == ["Blank corrected based on Raw Data (450 1)"]


# --- complete, incomplete, invalid ------------------------------------------------------


@pytest.mark.parametrize("name", [QC384, LABTECH, RAGGED, PHERASTAR])
def test_cut_inside_the_grid_is_incomplete(corpus: Path, name: str) -> None:
    path = corpus / "platereaders" / name
    data = path.read_bytes()
    last = data.rstrip().rfind(b"\n")
    for end in [i + 1 for i, b in enumerate(data) if b == 0x0A]:
        if end <= last:
            with pytest.raises(IncompleteFileError):
                read_export(path, data[:end])
    for cut in range(last + 2, len(data.rstrip())):  # inside the last row
        with pytest.raises(IncompleteFileError):
            read_export(path, data[:cut])
    assert read_export(path, data).plates


def test_only_mars_calculations_is_invalid_with_the_reason(tmp_path: Path) -> None:
    grid = random_grid(random.Random(4), 8, 12)
    path = tmp_path / "derived.csv"
    path.write_text(bmg_plate_view([BmgSet("Blank corrected based on Raw Data (450 1)", grid)]))
    with pytest.raises(FormatError, match="only data MARS computed") as info:
        read_export(path)
    assert not isinstance(info.value, IncompleteFileError)


# --- property ---------------------------------------------------------------------------


def _seeds() -> list[bytes]:
    from tests.conftest import CORPUS

    seeds = [
        (CORPUS / "platereaders" / n).read_bytes() for n in (QC384, LABTECH, RAGGED, PHERASTAR)
    ]
    rng = random.Random(5)
    seeds.append(
        bmg_plate_view(
            [BmgSet("Raw Data (450 1)", random_grid(rng, 8, 12))], delimiter=";"
        ).encode()
    )
    seeds.append(
        bmg_table_view(
            ["Raw Data (485/520)"] * 2,
            ["A01", "B02"],
            {"A01": ["1", "2"], "B02": ["3", "4"]},
            axis=("Time", ["0 min", "5 min"]),
        ).encode()
    )
    return seeds


SEEDS = _seeds()


@settings(max_examples=150, deadline=None)
@given(data=mutated(SEEDS))
def test_mutated_bmg_exports_never_crash(data: bytes) -> None:
    check_outcome(Path("mutated-bmg.csv"), data)
