"""Revvity Kaleido CSV exports: the corpus file, generated 2.0/3.5 layouts, bad input."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings

from acquisition.formats import read_export
from datamodel import PlateRead, WellStatus, parse_well, well_name
from errors import FormatError, IncompleteFileError
from tests.reader_mutations import check_outcome, mutated
from tests.vendor_writers import kaleido_text, random_grid

ABS = "allotropy__kaleido__absorbance_endpoint_single_plate_example_01.csv"


def _assert_grid(got: PlateRead, grid: list[list[str]]) -> None:
    for r, row in enumerate(grid):
        for c, token in enumerate(row):
            if not token:
                assert got.status[r, c] == WellStatus.NOT_READ, well_name(r, c)
            else:
                assert got.values[r, c] == pytest.approx(float(token)), well_name(r, c)


def test_absorbance_endpoint_full_precision(corpus: Path) -> None:
    export = read_export(corpus / "platereaders" / ABS)
    r = export.plates[0].reads[0]
    assert export.format == "kaleido"
    assert export.instrument == {
        "model": None,
        "serial": "1234567",
        "software": "Kaleido 2.0.3058.126",
    }
    assert (r.label, r.mode, r.wavelength_nm, r.shape) == ("ABS mono 1", "absorbance", 450, (8, 12))
    assert r.values[parse_well("A1")] == 2.2075694995298862  # every digit kept
    assert r.values[parse_well("H12")] == 0.043160960819347817
    assert r.values[parse_well("E12")] == 0.085858934461608569  # 18 significant digits
    assert r.measured_at == "2020-10-26T16:16:18.2284559-04:00"
    assert export.plates[0].barcode == "V-2020-10-26 16:16:17"
    assert int((r.status == WellStatus.OK).sum()) == 96


@pytest.mark.parametrize("version", ["2", "3"])
def test_generated_fluorescence_and_luminescence_results(tmp_path: Path, version: str) -> None:
    rng = random.Random(version)
    fi = random_grid(rng, 16, 24, low=1e3, high=2e5, digits=0)
    lum = random_grid(rng, 16, 24, low=10, high=9e5, digits=0)
    names = ("FI 1", "LUM 2") if version == "2" else ("Fluorescence intensity 1", "Luminescence 2")
    text = kaleido_text(
        [(names[0], fi), (names[1], lum)],
        version=version,
        settings={
            names[0]: {"Excitation Wavelength [nm]": "485", "Emission Wavelength [nm]": "535"}
        },
    )
    path = tmp_path / "k.csv"
    path.write_text(text, encoding="utf-8")
    reads = read_export(path).plates[0].reads
    assert [(r.mode, r.wavelength_nm) for r in reads] == [
        ("fluorescence", 535),
        ("luminescence", None),
    ]
    assert reads[1].label.startswith(names[1])
    _assert_grid(reads[0], fi)
    _assert_grid(reads[1], lum)


def test_cut_before_the_closing_sections_is_incomplete(corpus: Path) -> None:
    path = corpus / "platereaders" / ABS
    data = path.read_bytes()
    after = data.index(b"Analysis Result")
    barcode = data.index(b"PlateRepeat")  # before it, nothing says Kaleido yet
    for end in [i + 1 for i, b in enumerate(data) if b == 0x0A]:
        if barcode < end < after:
            with pytest.raises(IncompleteFileError):
                read_export(path, data[:end])
    assert read_export(path, data).plates


def test_a_plain_grid_titled_results_for_is_not_taken_for_kaleido(tmp_path: Path) -> None:
    grid = random_grid(random.Random(3), 8, 12)
    lines = ["Results for assay 7", "," + ",".join(str(c) for c in range(1, 13))]
    lines += [chr(65 + r) + "," + ",".join(row) for r, row in enumerate(grid)]
    path = tmp_path / "plain.csv"
    path.write_text("\n".join(lines) + "\n")
    export = read_export(path)
    assert export.format == "grid"
    _assert_grid(export.plates[0].reads[0], grid)


def test_export_without_results_is_invalid(tmp_path: Path) -> None:
    text = kaleido_text([], version="2")
    path = tmp_path / "none.csv"
    path.write_text("Results for ABS mono 1\r\n" + text)
    with pytest.raises(FormatError, match="without measured results") as info:
        read_export(path)
    assert not isinstance(info.value, IncompleteFileError)


SEEDS = [
    (
        Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "platereaders" / ABS
    ).read_bytes(),
    kaleido_text([("FI 1", random_grid(random.Random(1), 8, 12))], version="3").encode(),
]


@settings(max_examples=120, deadline=None)
@given(data=mutated(SEEDS))
def test_mutated_kaleido_exports_never_crash(data: bytes) -> None:
    check_outcome(Path("mutated-kaleido.csv"), data)
