"""PerkinElmer EnVision CSV exports: the corpus files, generated layouts, bad input."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings

from acquisition.formats import read_export
from datamodel import ExportFile, PlateRead, WellStatus, parse_well, well_name
from errors import FormatError, IncompleteFileError
from tests.reader_mutations import check_outcome, mutated
from tests.vendor_writers import EnvisionRead, envision_text, random_grid

A450 = "allotropy__envision__PE_Envision_absorbance_A450_example.csv"
PLATE2 = "allotropy__envision__PE_Envision_absorbance_example01.csv"
ABS = "De=1st Ex=Btm Em=N/A Wdw=N/A (8)"
HTRF = ("De=1st Ex=Top Em=Top Wdw=1 (14)", "De=2nd Ex=Top Em=Top Wdw=1 (142)")
LUM = "De=USLum Ex=N/A Em=N/A Wdw=N/A (2)"


def read(corpus: Path, name: str) -> ExportFile:
    return read_export(corpus / "platereaders" / name)


def at(read: PlateRead, well: str) -> float:
    return float(read.values[parse_well(well)])


def test_labelled_grids_two_plates(corpus: Path) -> None:
    export = read(corpus, A450)
    assert export.format == "envision"
    assert export.instrument == {
        "model": "EnVision",
        "serial": "1050242",
        "software": "EnVision Workstation 1.14.3049.1642",
    }
    assert [p.plate_id for p in export.plates] == ["Plate 1", "Plate 2"]
    first, second = (p.reads[0] for p in export.plates)
    assert (first.label, first.mode, first.wavelength_nm) == (
        "A450(1) channel 1",
        "absorbance",
        450,
    )
    assert at(first, "A1") == 0.15 and at(first, "H12") == 0.095 and at(second, "A4") == 2.0
    assert (
        first.measured_at == "1/15/2024 10:30:00 AM"
        and second.measured_at == "1/15/2024 10:31:35 AM"
    )
    assert first.temperature_c == 22.0
    assert export.plates[0].barcode is None  # ="" is no barcode


def test_plate2_bare_matrices_barcodes_and_calculated_plate(corpus: Path) -> None:
    export = read(corpus, PLATE2)
    plates = export.plates
    assert [(p.plate_id, p.barcode) for p in plates] == [
        ("Plate 1", "8/22/2023 10:50:28 AM"),
        ("Plate 2", "8/22/2023 10:57:39 AM"),
    ]
    bca = plates[0].reads[0]
    assert bca.shape == (16, 24) and bca.wavelength_nm == 562 and bca.mode == "absorbance"
    assert at(bca, "A1") == 2.63 and at(bca, "P24") == 2.639 and at(bca, "J1") == 3.133
    # plate 2: the measured label only; the crosstalk-corrected copy is a calculation
    assert len(plates[1].reads) == 1
    screen = plates[1].reads[0]
    assert at(screen, "A1") == 8 and at(screen, "A15") == 0 and at(screen, "P24") == 4
    assert screen.mode == "luminescence"  # Ex=N/A Em=Top: emitted light, no excitation filter
    assert export.metadata["derived_datasets"] == [
        "Calc 1: Crosstalk = Crosstalk correction where Label : Screen 384 OptiPlate(1) channel 1"
    ]


# --- generated layouts ------------------------------------------------------------------


def _assert_grid(got: PlateRead, grid: list[list[str]], dropped: tuple[int, ...] = ()) -> None:
    for r, row in enumerate(grid):
        for c, token in enumerate(row):
            if r in dropped or not token:
                assert got.status[r, c] == WellStatus.NOT_READ, well_name(r, c)
            else:
                assert got.values[r, c] == pytest.approx(float(token)), well_name(r, c)


def test_htrf_two_channels_with_labels_and_filters(tmp_path: Path) -> None:
    rng = random.Random(1)
    ch1, ch2 = (random_grid(rng, 8, 12, low=1000, high=90000, digits=0) for _ in range(2))
    reads = [
        EnvisionRead(1, "HTRF Laser [Eu]", HTRF[0], random_grid(rng, 8, 12), calculated=True),
        EnvisionRead(1, "HTRF Laser [Eu]", HTRF[0], ch1, channel=1, unit="Counts"),
        EnvisionRead(1, "HTRF Laser [Eu]", HTRF[1], ch2, channel=2, unit="Counts"),
    ]
    text = envision_text(
        reads,
        labels={
            "HTRF Laser [Eu]": {
                "Exc. filter": "UV2 (TRF) 320",
                "Ems. filter": "APC 665",
                "2nd ems. filter": "Cy5 620",
            }
        },
        filters={
            "APC 665": "M665 CWL=665nm BW=75nm Tmin=75%",
            "Cy5 620": "X620 CWL=620nm BW=10nm Tmin=65%",
        },
    )
    path = tmp_path / "htrf.csv"
    path.write_text(text)
    export = read_export(path)
    got = export.plates[0].reads
    assert [(r.label, r.mode, r.wavelength_nm) for r in got] == [
        ("HTRF Laser [Eu](1) channel 1", "fluorescence", 665),
        ("HTRF Laser [Eu](1) channel 2", "fluorescence", 620),
    ]
    _assert_grid(got[0], ch1)
    _assert_grid(got[1], ch2)
    assert export.metadata["derived_datasets"] == ["Calculated results: Calc 1: HTRF Laser [Eu]"]


def test_luminescence_384_with_left_out_rows_and_plate_info_at_end(tmp_path: Path) -> None:
    rng = random.Random(2)
    grid = random_grid(rng, 16, 24, low=10, high=5e5, digits=0)
    dropped = tuple(r for r in range(16) if r % 4)  # only rows A, E, I, M were read
    reads = [
        EnvisionRead(1, "US LUM 384", LUM, grid, unit="CPS", drop_rows=dropped, barcode="LoP_pool")
    ]
    path = tmp_path / "lum.csv"
    path.write_text(envision_text(reads, placement_end=True, rows_cols=(16, 24)))
    export = read_export(path)
    r = export.plates[0].reads[0]
    assert export.plates[0].barcode == "LoP_pool"
    assert r.mode == "luminescence" and r.shape == (16, 24) and r.unit == "RLU"
    _assert_grid(r, grid, dropped)


def test_several_labels_per_plate_bare_and_untitled(tmp_path: Path) -> None:
    rng = random.Random(3)
    a, b, c = (random_grid(rng, 8, 12) for _ in range(3))
    reads = [
        EnvisionRead(1, "A450", ABS, a, style="bare"),
        EnvisionRead(1, "A620", ABS, b, style="untitled"),
        EnvisionRead(2, "A450", ABS, c, style="bare"),
    ]
    path = tmp_path / "multi.csv"
    path.write_text(envision_text(reads))
    export = read_export(path)
    assert [len(p.reads) for p in export.plates] == [2, 1]
    assert [r.wavelength_nm for r in export.plates[0].reads] == [450, 620]
    _assert_grid(export.plates[0].reads[1], b)
    _assert_grid(export.plates[1].reads[0], c)


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_system_field_separator_semicolon_or_tab(tmp_path: Path, delimiter: str) -> None:
    grid = random_grid(random.Random(6), 8, 12)
    text = envision_text([EnvisionRead(1, "A450", ABS, grid, barcode="BC-1")]).replace(
        ",", delimiter
    )
    if delimiter == ";":  # a European PC: decimal commas too
        text = text.replace("0.", "0,").replace("1.", "1,").replace("2.", "2,").replace("3.", "3,")
    path = tmp_path / "sep.csv"
    path.write_text(text)
    export = read_export(path)
    assert export.plates[0].barcode == "BC-1"
    _assert_grid(export.plates[0].reads[0], grid)


# --- complete, incomplete, invalid ------------------------------------------------------


@pytest.mark.parametrize("name", [A450, PLATE2])
def test_cut_before_the_settings_sections_is_incomplete(corpus: Path, name: str) -> None:
    path = corpus / "platereaders" / name
    data = path.read_bytes()
    data_end = data.index(b"Basic assay information")
    settings_start = data.index(b"Protocol information")
    for end in [i + 1 for i, b in enumerate(data) if b == 0x0A]:
        if end <= data_end:
            with pytest.raises(IncompleteFileError):
                read_export(path, data[:end])
        elif end > settings_start:  # values all there: a cut among the settings loses settings
            assert read_export(path, data[:end]).plates


def test_calculated_results_only_is_invalid(tmp_path: Path) -> None:
    reads = [
        EnvisionRead(1, "Ratio", HTRF[0], random_grid(random.Random(4), 8, 12), calculated=True)
    ]
    path = tmp_path / "calc.csv"
    path.write_text(envision_text(reads))
    with pytest.raises(FormatError, match="only calculated results") as info:
        read_export(path)
    assert not isinstance(info.value, IncompleteFileError)


# --- property ---------------------------------------------------------------------------


def _seeds() -> list[bytes]:
    from tests.conftest import CORPUS

    rng = random.Random(5)
    generated = envision_text(
        [
            EnvisionRead(1, "US LUM", LUM, random_grid(rng, 8, 12), style="bare"),
            EnvisionRead(1, "FI 485", HTRF[0], random_grid(rng, 8, 12), drop_rows=(2, 3)),
        ],
        placement_end=True,
    )
    return [(CORPUS / "platereaders" / n).read_bytes() for n in (A450, PLATE2)] + [
        generated.encode()
    ]


SEEDS = _seeds()


@settings(max_examples=150, deadline=None)
@given(data=mutated(SEEDS))
def test_mutated_envision_exports_never_crash(data: bytes) -> None:
    check_outcome(Path("mutated-envision.csv"), data)
