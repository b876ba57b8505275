"""Thermo readers: SkanIt workbooks, Multiskan Sky workbooks, Multiskan/SkanIt text."""

from __future__ import annotations

from pathlib import Path

import pytest

from acquisition.formats import read_export
from datamodel import WellStatus
from errors import FormatError, IncompleteFileError
from tests.workbooks import write_workbook

PR = "platereaders"


def test_skanit_reads_the_raw_step_and_lists_calculated_steps(corpus: Path) -> None:
    export = read_export(corpus / PR / "allotropy__skanit__skanit_data.xlsx")
    assert export.format == "skanit"
    assert export.instrument["model"] == "Varioskan LUX"
    assert export.instrument["serial"] == "3020-81776"
    assert "7.0.0.50" in (export.instrument["software"] or "")
    (plate,) = export.plates
    (read,) = plate.reads  # the blank-subtracted and fitted steps are not reads
    assert read.label == "Absorbance 1" and read.wavelength_nm == 450
    assert read.values[0, 0] == 1.7455 and read.values[7, 11] == 0.1032
    assert read.measured_at == "6/5/2023 6:09:56 PM"
    assert export.metadata["derived_steps"][:2] == ["Blank Subtraction 1", "Standard Curve 1"]


def test_multiskan_sky_long_table_with_spaced_wells(corpus: Path) -> None:
    export = read_export(corpus / PR / "MTPHandler__Multiskan Sky.xlsx")
    assert export.format == "multiskan_sky"
    assert export.instrument["serial"] == "1530-00516C"
    reads = export.plates[0].reads
    assert len(reads) == 101
    assert reads[0].wavelength_nm == 340 and reads[0].time_s == 0
    assert reads[1].time_s == 5.99 and reads[100].time_s == 599.99
    assert reads[0].values[0, 1] == 1.1296  # 'A 2'
    assert reads[1].values[0, 1] == 1.1224
    assert (reads[0].status == WellStatus.OK).sum() == 7


def test_multiskan_text_tab_aligned_iterations(corpus: Path) -> None:
    export = read_export(corpus / PR / "MTPHandler__multiskan_spectrum_1500.txt")
    assert export.format == "multiskan"
    reads = export.plates[0].reads
    assert len(reads) == 62  # 31 iterations at 340 and at 420 nm
    assert {r.wavelength_nm for r in reads} == {340, 420}
    first = reads[0]
    assert first.values[0, 0] == 0.0440802853056135
    # row B of iteration 2 has a short number followed by two tabs: still 10 columns
    second = reads[1]
    assert second.values[1, 8] == 2.57561880119168 and second.values[1, 9] == 3.05211696472569
    assert (first.status[6:] == WellStatus.NOT_READ).all()  # rows G and H are empty
    nan_read = next(r for r in reads if r.raw_tokens)
    assert set(nan_read.raw_tokens.values()) == {"NaN"}


def _multiskan_text(plates: int = 2, ending: str = "\r\n") -> str:
    lines = ["Results of Photometric1", ""]
    for p in range(1, plates + 1):
        lines += [f"\tPlate:{p} - Wavelength:570", ""]
        for r in range(8):
            lines.append(
                "\t" + "\t".join(f"{0.1 * p + 0.01 * r + 0.001 * c:.4f}" for c in range(12)) + "\t"
            )
        lines.append("")
    return ending.join(lines)


def test_multiskan_endpoint_plates(tmp_path: Path) -> None:
    path = tmp_path / "ms.txt"
    path.write_text(_multiskan_text())
    export = read_export(path)
    assert [p.plate_id for p in export.plates] == ["Plate 1", "Plate 2"]
    assert export.plates[1].reads[0].values[7, 11] == pytest.approx(0.2 + 0.07 + 0.011)


def test_multiskan_cut_inside_a_block_is_incomplete(tmp_path: Path) -> None:
    text = _multiskan_text()
    path = tmp_path / "cut.txt"
    cut = text[: text.rindex("\t0.27")]  # the last block short of its row H
    path.write_text(cut)
    with pytest.raises(IncompleteFileError):
        read_export(path)
    path.write_text("Results of Photometric1\r\n\r\n")
    with pytest.raises(IncompleteFileError):
        read_export(path)


def test_multiskan_garbage_line_is_a_format_error_naming_the_line(tmp_path: Path) -> None:
    text = _multiskan_text().replace("\tPlate:2", "\tthis is not a plate line\r\n\tPlate:2", 1)
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(FormatError, match="line 14"):
        read_export(path)


def _skanit(step: str, corner: str, plates: int = 1) -> dict[str, list[list[object]]]:
    sheet: list[list[object]] = [
        ["Measurement results"],
        ["session.skax"],
        ["1/2/2024 3:04:05 PM"],
        [],
        [step],
        ["Excitation: 485 nm"],
        ["Emission: 535 nm"],
    ]
    for p in range(1, plates + 1):
        sheet += [[], [f"Plate {p}"], [], [corner, *[float(c) for c in range(1, 13)]]]
        sheet += [
            [letter, *[p * 1000 + 10 * r + c for c in range(12)]]
            for r, letter in enumerate("ABCDEFGH")
        ]
        sheet += [[], ["Sample", *[float(c) for c in range(1, 13)]]]
        sheet += [[letter, *["Un0001"] * 12] for letter in "ABCDEFGH"]
    return {
        f"{step}_01": sheet,
        "Blank Subtraction 1_02": [["Measurement results"], [], [], [], ["Blank Subtraction 1"]],
        "Session information": [
            ["Session information"],
            [],
            [None, "Execution time", None, None, "x"],
        ],
        "Instrument information": [
            ["Instrument information"],
            [],
            [None, "Name", None, None, "Fluoroskan"],
            [None, "Serial number", None, None, "1234-5678"],
        ],
    }


def test_skanit_fluorescence_step_with_two_plates(tmp_path: Path) -> None:
    path = write_workbook(tmp_path / "fl.xlsx", _skanit("Fluorescence 1", "Fluor", plates=2))
    export = read_export(path)
    assert [p.plate_id for p in export.plates] == ["Plate 1", "Plate 2"]
    read = export.plates[1].reads[0]
    assert read.mode == "fluorescence" and read.unit == "RFU" and read.wavelength_nm == 535
    assert read.values[7, 11] == 2000 + 70 + 11
    assert export.metadata["derived_steps"] == ["Blank Subtraction 1"]


def test_skanit_with_calculated_steps_only_is_invalid(tmp_path: Path) -> None:
    sheets = _skanit("Fluorescence 1", "Fluor")
    del sheets["Fluorescence 1_01"]
    path = write_workbook(tmp_path / "calc.xlsx", sheets)
    with pytest.raises(FormatError, match="calculated steps only") as info:
        read_export(path)
    assert type(info.value) is FormatError


def test_multiskan_sky_endpoint_long_table(tmp_path: Path) -> None:
    sheets: dict[str, list[list[object]]] = {
        "Absorbance results": [
            ["Measurement results Measure"],
            ["2024-02-02 10:00:00"],
            [],
            ["Endpoint"],
        ],
        "Raw data 600 nm": [
            ["Raw data"],
            [],
            ["Well", "Wavelength(s) [nm]", "Raw absorbance", "Measurement time(s)"],
            ["A 1", 600, 0.5, 0],
            ["H 12", 600, "OVER", 1.2],
        ],
        "General information": [["Session information"], [None, None, "Name", "Multiskan Sky"]],
    }
    export = read_export(write_workbook(tmp_path / "sky.xlsx", sheets))
    (read,) = export.plates[0].reads
    assert read.time_s is None and read.wavelength_nm == 600
    assert read.values[0, 0] == 0.5 and read.raw_tokens == {"H12": "OVER"}
    assert read.status[7, 11] == WellStatus.OVERFLOW


def test_skanit_several_wavelengths_and_named_plates(tmp_path: Path) -> None:
    sheet: list[list[object]] = [
        ["Measurement results"],
        ["s.skax"],
        ["1/2/2024 3:04:05 PM"],
        [],
        ["Absorbance 1"],
    ]
    for plate in ("Blank plate", "gch - Plate"):
        sheet += [[], [plate]]
        for wl, base in ((450, 1.0), (620, 0.1)):
            sheet += [[f"Wavelength: {wl} nm"], [], ["Abs", *[float(c) for c in range(1, 13)]]]
            sheet += [
                [letter, *[base + r / 100 for _ in range(12)]]
                for r, letter in enumerate("ABCDEFGH")
            ]
            sheet += [[]]
    sheets = _skanit("Absorbance 1", "Abs")
    sheets["Absorbance 1_01"] = sheet
    export = read_export(write_workbook(tmp_path / "abs.xlsx", sheets))
    assert [p.plate_id for p in export.plates] == ["Blank plate", "gch - Plate"]
    r450, r620 = export.plates[1].reads
    assert (r450.wavelength_nm, r620.wavelength_nm) == (450, 620)
    assert r620.values[7, 0] == pytest.approx(0.17)
