"""SoftMax Pro text exports: the corpus files, generated layouts beyond them, bad input."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
from hypothesis import given, settings

from acquisition.formats import read_export
from datamodel import PLATE_FORMATS, ExportFile, WellStatus, parse_well
from errors import FormatError, IncompleteFileError
from tests.reader_mutations import check_outcome, mutated
from tests.vendor_writers import (
    SoftmaxPlate,
    comma_decimal,
    random_grid,
    softmax_bytes,
    softmax_text,
)

PARTIAL = "allotropy__softmaxpro__MD_SMP_absorbance_endpoint_partial_plate_example05.txt"
EDITED = "allotropy__softmaxpro__abs_endpoint_plates.txt"
KINETIC = "allotropy__softmaxpro__spectramax340_kinetic_partial_plate.txt"
TIMEFORMAT = "MTPHandler__Spectramax190 molecular Devices.txt"
TOKENS = ("Masked", "Range?", "Error", "#SAT")


def read(corpus: Path, name: str) -> ExportFile:
    return read_export(corpus / "platereaders" / name)


def value(export: ExportFile, read: int, well: str, plate: int = 0) -> float:
    r, c = parse_well(well)
    return float(export.plates[plate].reads[read].values[r, c])


def test_utf16_partial_plate_three_wavelengths_side_by_side(corpus: Path) -> None:
    export = read(corpus, PARTIAL)
    assert export.format == "softmax" and export.instrument["software"] == "SoftMax Pro"
    reads = export.plates[0].reads
    assert export.plates[0].plate_id == "Plate1"
    assert [(r.label, r.wavelength_nm, r.mode) for r in reads] == [
        ("230 nm", 230, "absorbance"),
        ("260 nm", 260, "absorbance"),
        ("340 nm", 340, "absorbance"),
    ]
    assert value(export, 0, "C3") == 3.147 and value(export, 1, "C3") == 0.611
    assert value(export, 2, "C3") == 0.97 and value(export, 2, "F10") == 3.071
    for r in reads:  # wells C3..F10 were read, the rest of the plate was not
        assert r.shape == (8, 12) and int((r.status == WellStatus.OK).sum()) == 32
        assert r.status[0, 0] == WellStatus.NOT_READ and r.status[6, 2] == WellStatus.NOT_READ
    # the save time is not the read time: metadata only
    assert reads[0].measured_at is None
    assert export.metadata["date_last_saved"] == "3/6/2024 3:06:35 PM"
    assert export.metadata["reduced_data_ignored"] is True
    assert export.metadata["skipped_blocks"] == {"Group": ["Unknowns"]}


def test_edited_fixture_tokens_and_decimal_commas(corpus: Path) -> None:
    export = read(corpus, EDITED)
    reads = export.plates[0].reads
    assert [r.label for r in reads] == ["426 nm", "426 nm #2", "426 nm #3"]
    first = reads[0]
    assert first.raw_tokens == {"B1": "Path?"} and first.status[1, 0] == WellStatus.INVALID
    assert value(export, 0, "A2") == pytest.approx(0.02)  # written '0,02'
    assert value(export, 0, "C3") == pytest.approx(0.27)  # '0,27'
    assert value(export, 0, "H12") == 0.96 and value(export, 2, "H12") == 2.88
    assert first.temperature_c == 35
    assert export.metadata["skipped_blocks"]["Note"] == ["Basic Endpoint Protocol"]


def test_latin1_kinetic_plate_format_partial_plate(corpus: Path) -> None:
    export = read(corpus, KINETIC)
    reads = export.plates[0].reads
    assert export.plates[0].plate_id == "Plate#1"
    assert [(r.time_s, r.temperature_c) for r in reads] == [(0, 37), (30, 37), (60, 37)]
    assert all(r.label == "405 nm" and r.wavelength_nm == 405 for r in reads)
    assert value(export, 0, "A2") == 0.0546 and value(export, 0, "B2") == 0.1012
    assert value(export, 2, "A2") == 0.0557 and value(export, 2, "H10") == 0.109
    assert all(int((r.status == WellStatus.OK).sum()) == 72 for r in reads)  # A2..H10
    skipped = export.metadata["skipped_blocks"]
    assert skipped["Group"] == ["Standards", "Unknowns", "Control"] and len(skipped["Note"]) == 2


def test_utf16_time_format_kinetic(corpus: Path) -> None:
    export = read(corpus, TIMEFORMAT)
    reads = export.plates[0].reads
    assert [r.time_s for r in reads] == [15.0 * k for k in range(9)]
    assert reads[0].temperature_c == 21.6 and reads[-1].temperature_c == 21.5
    assert value(export, 0, "A1") == 0.0379 and value(export, 0, "A2") == 0.1316
    assert value(export, 8, "A3") == 0.0483
    assert all(int((r.status == WellStatus.OK).sum()) == 96 for r in reads)
    assert export.metadata["reduced_data_ignored"] is True


# --- generated layouts beyond the corpus ------------------------------------------------


def _plate(rng: random.Random, **kw: object) -> SoftmaxPlate:
    plate = SoftmaxPlate(name=str(kw.pop("name", "Plate1")), **kw)  # type: ignore[arg-type]
    rows, cols = PLATE_FORMATS[plate.wells]
    n_grids = len(plate.times) if plate.read_type == "Kinetic" else 1
    if plate.spectrum is not None:
        start, end, step = plate.spectrum
        n_grids = int((end - start) / step) + 1
    n_wl = 1 if plate.spectrum is not None else max(1, len(plate.wavelengths))
    region = (1, rows - 1, 2, cols - 1) if plate.name.endswith("partial") else None
    plate.grids = [
        [
            random_grid(rng, rows, cols, tokens=TOKENS, region=region, high=9000.0, digits=3)
            for _ in range(n_wl)
        ]
        for _ in range(n_grids)
    ]
    return plate


CASES = {
    "fluorescence-endpoint-2wl-utf16": dict(
        mode="Fluorescence", wavelengths=[538.0, 590.0], excitations=[485.0, 544.0]
    ),
    "luminescence-384-latin1": dict(mode="Luminescence", wells=384, wavelengths=[]),
    "kinetic-abs-2wl-partial": dict(
        name="Plate partial",
        read_type="Kinetic",
        wavelengths=[450.0, 620.0],
        times=["0:00:00", "0:00:30", "0:01:00", "1:00:00"],
        temperatures=["37.1", "37.0", "36.9", "37.2"],
    ),
    "kinetic-fluorescence-timeformat-384": dict(
        mode="Fluorescence",
        export_format="TimeFormat",
        read_type="Kinetic",
        wells=384,
        wavelengths=[528.0, 590.0],
        excitations=[485.0, 544.0],
        times=["00:00:00", "00:05:00", "00:10:00"],
        temperatures=["25.0", "25.1", "25.0"],
    ),
    "timeformat-endpoint-2wl": dict(export_format="TimeFormat", wavelengths=[562.0, 660.0]),
    "spectrum-plateformat": dict(read_type="Spectrum", spectrum=(400.0, 440.0, 20.0)),
    "spectrum-timeformat": dict(
        read_type="Spectrum", export_format="TimeFormat", spectrum=(500.0, 520.0, 10.0)
    ),
    "both-with-reduced": dict(data_type="Both", reduced=True, wavelengths=[570.0]),
    "reduced-timeformat": dict(export_format="TimeFormat", reduced=True),
    "6-well": dict(wells=6),
}
ENCODING = {"fluorescence-endpoint-2wl-utf16": "utf-16", "luminescence-384-latin1": "latin-1"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_generated_layout_reads_back_well_for_well(tmp_path: Path, case: str) -> None:
    rng = random.Random(case)
    plate = _plate(rng, **CASES[case])
    path = tmp_path / "export.txt"
    path.write_bytes(softmax_bytes(softmax_text([plate]), ENCODING.get(case, "utf-8")))
    export = read_export(path)
    reads = export.plates[0].reads
    expected = _expected(plate)
    assert len(reads) == len(expected)
    mode = {"Absorbance": "absorbance", "Fluorescence": "fluorescence"}.get(
        plate.mode, "luminescence"
    )
    for got, (grid, wavelength, time_s, temperature) in zip(reads, expected, strict=True):
        assert got.mode == mode and got.shape == PLATE_FORMATS[plate.wells]
        assert got.wavelength_nm == wavelength and got.time_s == time_s
        assert got.temperature_c == temperature
        _assert_grid(got, grid)
    labels = [r.label for r in reads]
    if plate.mode == "Fluorescence":
        assert labels[0].startswith("Ex 485/Em ")
    assert export.metadata["reduced_data_ignored"] is plate.reduced


def _expected(
    plate: SoftmaxPlate,
) -> list[tuple[list[list[str]], float | None, float | None, float | None]]:
    out = []
    if plate.spectrum is not None:
        start, _, step = plate.spectrum
        for t, per_wl in enumerate(plate.grids):
            out.append((per_wl[0], start + step * t, None, None))
        return out
    kinetic = plate.read_type == "Kinetic"
    order = (
        [(w, t) for w in range(len(plate.grids[0])) for t in range(len(plate.grids))]
        if plate.export_format == "TimeFormat"
        else [(w, t) for t in range(len(plate.grids)) for w in range(len(plate.grids[0]))]
    )
    for w, t in order:
        wl = plate.wavelengths[w] if w < len(plate.wavelengths) else None
        time_s = _clock(plate.times[t]) if kinetic else None
        temp = float(plate.temperatures[t]) if t < len(plate.temperatures) else None
        out.append((plate.grids[t][w], wl, time_s, temp))
    return out


def _clock(text: str) -> float:
    total = 0.0
    for part in text.split(":"):
        total = total * 60 + float(part)
    return total


def _assert_grid(got: object, grid: list[list[str]]) -> None:
    from datamodel import PlateRead

    assert isinstance(got, PlateRead)
    for r, row in enumerate(grid):
        for c, token in enumerate(row):
            well = f"{chr(65 + r)}{c + 1}"
            if not token:
                assert got.status[r, c] == WellStatus.NOT_READ, well
            elif token in TOKENS:
                assert got.raw_tokens[well] == token and got.status[r, c] != WellStatus.OK
            else:
                assert got.values[r, c] == pytest.approx(float(token.replace(",", "."))), well


def test_several_plates_same_name_and_decimal_commas(tmp_path: Path) -> None:
    rng = random.Random(7)
    a = _plate(rng, name="Assay", wavelengths=[450.0])
    b = _plate(rng, name="Assay", wavelengths=[450.0])
    b.grids = [[comma_decimal(g) for g in per_wl] for per_wl in b.grids]
    path = tmp_path / "two.txt"
    path.write_bytes(softmax_bytes(softmax_text([a, b], notes=2), "utf-16"))
    export = read_export(path)
    assert [p.plate_id for p in export.plates] == ["Assay", "Assay (2)"]
    _assert_grid(export.plates[1].reads[0], b.grids[0][0])


def test_saturation_and_mask_tokens_keep_their_status(tmp_path: Path) -> None:
    plate = SoftmaxPlate(name="P")
    grid = [["0.1"] * 12 for _ in range(8)]
    grid[0][0], grid[0][1], grid[0][2], grid[0][3] = "#SAT", "Masked", "Range?", "Error"
    plate.grids = [[grid]]
    path = tmp_path / "tokens.txt"
    path.write_text(softmax_text([plate]))
    got = read_export(path).plates[0].reads[0]
    assert [str(s) for s in got.status[0, :4]] == ["overflow", "masked", "overflow", "invalid"]
    assert got.raw_tokens == {"A1": "#SAT", "A2": "Masked", "A3": "Range?", "A4": "Error"}


# --- complete, incomplete, invalid ------------------------------------------------------


@pytest.mark.parametrize("name", [PARTIAL, EDITED, KINETIC, TIMEFORMAT])
def test_cut_at_any_line_end_is_incomplete_until_the_last_block_closes(
    corpus: Path, name: str
) -> None:
    data = (corpus / "platereaders" / name).read_bytes()
    text_end = data.rfind("~End".encode("utf-16-le") if data[:2] == b"\xff\xfe" else b"~End")
    newline = "\n".encode("utf-16-le") if data[:2] == b"\xff\xfe" else b"\n"
    ends = [i + len(newline) for i in range(len(data)) if data.startswith(newline, i)]
    path = corpus / "platereaders" / name
    for end in ends:
        if end <= text_end:
            with pytest.raises(IncompleteFileError):
                read_export(path, data[:end])
        else:
            assert read_export(path, data[:end]).plates


def test_template_without_data_is_invalid_not_incomplete(tmp_path: Path) -> None:
    plate = SoftmaxPlate(name="Template", grids=[[[[""] * 12 for _ in range(8)]]])
    path = tmp_path / "template.txt"
    path.write_text(softmax_text([plate]))
    with pytest.raises(FormatError, match="without read data") as info:
        read_export(path)
    assert not isinstance(info.value, IncompleteFileError)


def test_reduced_only_and_notes_only_exports_are_refused_with_the_reason(tmp_path: Path) -> None:
    plate = _plate(random.Random(1), data_type="Reduced")
    path = tmp_path / "reduced.txt"
    path.write_text(softmax_text([plate]))
    with pytest.raises(FormatError, match="reduced data only"):
        read_export(path)
    path.write_text(softmax_text([], notes=2))
    with pytest.raises(FormatError, match="without a Plate block"):
        read_export(path)
    scan = _plate(random.Random(1))
    scan.read_type = "Well Scan"
    path.write_text(softmax_text([scan]))
    with pytest.raises(FormatError, match="well-scan reads are not read"):
        read_export(path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda h: h.replace("\t96\t", "\t97\t", 1), "number of wells '97'"),
        (lambda h: h.replace("\tRaw\t", "\tRawish\t", 1), "no data type"),
        (lambda h: h.replace("\tEndpoint\t", "\tSweep\t", 1), "read type 'Sweep'"),
    ],
)
def test_bad_plate_header_names_the_line_and_field(tmp_path: Path, change, message: str) -> None:  # type: ignore[no-untyped-def]
    text = softmax_text([_plate(random.Random(2))], notes=0)
    lines = text.split("\r\n")
    lines[1] = change(lines[1])
    path = tmp_path / "bad.txt"
    path.write_text("\r\n".join(lines))
    with pytest.raises(FormatError, match="line 2: Plate header") as info:
        read_export(path)
    assert message in str(info.value) and not isinstance(info.value, IncompleteFileError)


def test_temperature_and_kinetic_times_are_numbers_never_nan(corpus: Path) -> None:
    for name in (KINETIC, TIMEFORMAT):
        for r in read(corpus, name).plates[0].reads:
            assert r.time_s is not None and math.isfinite(r.time_s)
            assert r.temperature_c is not None and math.isfinite(r.temperature_c)


# --- property: any mutation ends in a parse, "incomplete" or a FormatError -------------


def _seeds() -> list[bytes]:
    from tests.conftest import CORPUS

    seeds = [
        (CORPUS / "platereaders" / n).read_bytes() for n in (PARTIAL, EDITED, KINETIC, TIMEFORMAT)
    ]
    rng = random.Random(3)
    for case in ("kinetic-fluorescence-timeformat-384", "spectrum-plateformat", "6-well"):
        seeds.append(softmax_bytes(softmax_text([_plate(rng, **CASES[case])]), "utf-8"))
    return seeds


SEEDS = _seeds()


@settings(max_examples=150, deadline=None)
@given(data=mutated(SEEDS))
def test_mutated_softmax_exports_never_crash(data: bytes) -> None:
    check_outcome(Path("mutated-softmax.txt"), data)
