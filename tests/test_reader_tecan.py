"""Tecan readers: i-control, SparkControl, XFLUOR4 (Sunrise) and Magellan workbooks.

Spot values are the cells the corpus files show (openpyxl dump); generated workbooks cover
the layouts the corpus lacks (German i-control, fluorescence, several labels, SparkControl
kinetic with reader tokens on a 384-well partial plate, settings-only exports).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from acquisition.formats import read_export
from datamodel import WellStatus
from errors import FormatError
from tests.workbooks import write_workbook

PR = "platereaders"


def test_icontrol_endpoint_grid_with_float32_values(corpus: Path) -> None:
    export = read_export(corpus / PR / "tread__single_time_single_reads.xlsx")
    assert export.format == "tecan_icontrol"
    assert export.instrument == {
        "model": "infinite 200Pro",
        "serial": "1234567890",
        "software": "Tecan i-control 2.0.10.0",
    }
    (read,) = export.plates[0].reads
    assert read.shape == (8, 12) and read.mode == "absorbance" and read.unit == "OD"
    assert read.wavelength_nm == 600 and read.temperature_c == 30.6
    assert read.measured_at == "1/1/2022 10:00:00 AM"
    # A1 is stored as 0.09319999814033508, the double of float32(0.0932)
    assert read.values[0, 0] == 0.0932 and read.values[3, 9] == 1.2636
    assert read.values[7, 11] == pytest.approx(0.0889, abs=1e-4)
    assert (read.status == WellStatus.OK).all()


def test_icontrol_kinetic_one_row_per_well(corpus: Path) -> None:
    export = read_export(corpus / PR / "tread__time_series_single_reads.xlsx")
    reads = export.plates[0].reads
    assert [r.time_s for r in reads] == [0, 10, 20, 30, 40]
    assert [r.temperature_c for r in reads] == [29.7, 29.6, 29.6, 29.6, 29.5]
    assert reads[0].values[0, 0] == 0.0947 and reads[4].values[2, 2] == 0.22
    assert reads[1].values[1, 2] == 0.4058
    # Part of plate A1-C3: the other wells were not read
    assert (reads[0].status == WellStatus.OK).sum() == 9
    assert reads[0].status[3, 0] == WellStatus.NOT_READ


def test_icontrol_multiple_reads_per_well_keeps_the_mean(corpus: Path) -> None:
    export = read_export(corpus / PR / "tread__single_time_multiple_reads.xlsx")
    (read,) = export.plates[0].reads
    assert read.values[0, 0] == 0.1036 and read.values[7, 11] == 0.1082
    per_position = export.metadata["multiple_reads_per_well"]
    assert per_position["A1"] == {"1;2": "0.096", "0;1": "0.0896", "1;0": "0.0891", "2;1": "0.1397"}


def test_spark_kinetic_cycles_as_rows(corpus: Path) -> None:
    export = read_export(corpus / PR / "MTPHandler__tekan_spark.xlsx")
    assert export.format == "tecan_spark"
    assert export.instrument["model"] == "Spark" and export.instrument["serial"] == "1708005973"
    reads = export.plates[0].reads
    assert len(reads) == 61
    assert reads[0].label == "Label 1" and reads[0].wavelength_nm == 420
    assert reads[1].time_s == 29.849 and reads[1].temperature_c == 24.6
    assert reads[0].values[0, 0] == 0.9969 and reads[60].values[0, 0] == 1.0469
    # Plate area A1-B12;C1-C9;D1-D12: C10-C12 were not read
    assert reads[0].status[2, 9] == WellStatus.NOT_READ
    assert (reads[0].status == WellStatus.OK).sum() == 45


def test_spark_luminescence_384_partial_plate(corpus: Path) -> None:
    export = read_export(corpus / PR / "MTPHandler__tekan_spark_endpoint.xlsx")
    (read,) = export.plates[0].reads
    assert read.mode == "luminescence" and read.unit == "RLU" and read.wavelength_nm is None
    assert read.shape == (16, 24)
    assert read.values[2, 10] == 47088 and read.values[3, 13] == 95432
    assert (read.status == WellStatus.OK).sum() == 9
    assert read.temperature_c == 25.5 and read.measured_at == "2025-05-12 13:19:41"


def test_sunrise_xfluor4_rawdata_grid(corpus: Path) -> None:
    export = read_export(corpus / PR / "curveball__Sunrise_180515_0916.xlsx")
    assert export.format == "tecan_xfluor4"
    assert export.instrument == {
        "model": "Sunrise",
        "serial": "1202006491",
        "software": "XFLUOR4 V 4.50",
    }
    (read,) = export.plates[0].reads
    assert read.label == "Rawdata" and read.wavelength_nm == 600
    assert read.values[0, 0] == 0.133 and read.values[7, 11] == 0.099
    assert read.measured_at == "2015-05-18 09:16:58"


def test_magellan_list_layout_with_metadata_after_the_data(corpus: Path) -> None:
    export = read_export(corpus / PR / "allotropy__magellan__SLA01P01_OD.xlsx")
    assert export.format == "tecan_magellan"
    assert export.instrument == {"model": "ULTRA", "serial": "12901000069", "software": "Magellan"}
    (plate,) = export.plates
    assert plate.plate_id == "96WEL008"
    (read,) = plate.reads
    assert read.label == "Raw data" and read.wavelength_nm == 595 and read.temperature_c == 23.4
    assert read.values[0, 0] == 0.1462 and read.values[1, 0] == 0.2118
    assert read.values[7, 11] == 0.0461
    assert read.measured_at == "2021-07-06 09:43:07"


def test_magellan_kinetic_blocks(corpus: Path) -> None:
    export = read_export(corpus / PR / "MTPHandler__magellan.xlsx")
    reads = export.plates[0].reads
    assert [r.time_s for r in reads] == [0, 900, 1802, 2700, 3600, 4502, 5400]
    assert [r.temperature_c for r in reads] == [37.1, 37.2, 37.1, 37.2, 36.9, 37.3, 37.2]
    assert reads[0].values[0, 3] == 2.7409 and reads[6].values[0, 3] == 2.7063
    assert reads[0].values[0, 4] == -0.0645  # A5, the second group of the row
    assert reads[0].measured_at == "Wednesday, August 16, 2023 16:12:40"


def _icontrol_german(path: Path) -> Path:
    """A German i-control export: fluorescence and absorbance labels, OVER tokens."""
    grid = [["<>", *range(1, 13)]]
    for r, letter in enumerate("ABCDEFGH"):
        grid.append([letter, *[1000 + 10 * r + c for c in range(12)]])
    grid[1][3] = "OVER"
    absorb = [["<>", *range(1, 13)]] + [
        [letter, *[round(0.1 + 0.01 * c, 4) for c in range(12)]] for letter in "ABCDEFGH"
    ]
    rows: list[list[object]] = [
        ["Programm: Tecan i-control", None, None, None, "Tecan i-control , 3.9.1.0"],
        ["Gerät: infinite M1000Pro", None, None, None, "Seriennummer: 1510004444"],
        [],
        ["Datum:", "24.12.2023"],
        ["Zeit:", "14:05:00"],
        ["Platte", None, None, None, "Greiner 96 Flat Black"],
        [],
        ["Label: Fluo"],
        ["Modus", None, None, None, "Fluoreszenz Top"],
        ["Anregungswellenlänge", None, None, None, 485, "nm"],
        ["Emissionswellenlänge", None, None, None, 535, "nm"],
        ["Startzeit:", "24.12.2023 14:05:10"],
        [None, "Temperatur: 25,1 °C"],
        *grid,
        [],
        ["Label: OD"],
        ["Modus", None, None, None, "Absorbanz"],
        ["Messwellenlänge", None, None, None, 450, "nm"],
        *absorb,
    ]
    return write_workbook(path, {"Sheet2": rows})


def test_icontrol_german_fluorescence_and_absorbance_labels(tmp_path: Path) -> None:
    export = read_export(_icontrol_german(tmp_path / "de.xlsx"))
    assert export.instrument["model"] == "infinite M1000Pro"
    assert export.instrument["serial"] == "1510004444"
    fluo, od = export.plates[0].reads
    assert fluo.label == "Fluo" and fluo.mode == "fluorescence" and fluo.unit == "RFU"
    assert fluo.wavelength_nm == 535 and fluo.temperature_c == 25.1
    assert fluo.status[0, 2] == WellStatus.OVERFLOW and fluo.raw_tokens == {"A3": "OVER"}
    assert fluo.values[7, 11] == 1081
    assert od.label == "OD" and od.mode == "absorbance" and od.wavelength_nm == 450
    assert od.values[0, 11] == 0.21


def test_spark_kinetic_384_partial_with_tokens(tmp_path: Path) -> None:
    wells = ["A1", "A2", "P23", "P24"]
    rows: list[list[object]] = [
        ["Application: SparkControl", None, None, None, "V3.1"],
        ["Device: Spark", None, None, None, "Serial number: 2001000001"],
        ["Plate", None, None, None, "[GRE384fw] - Greiner 384 Flat White"],
        [],
        ["Mode", "Fluorescence Top Reading"],
        ["Name", "GFP"],
        ["Excitation wavelength", None, None, None, 485, "nm"],
        ["Emission wavelength", None, None, None, 535, "nm"],
        [],
        ["GFP"],
        ["Cycle Nr.", "Time [s]", "Temp. [°C]", *wells],
        [1, 0, 30.1, 100, "OVER", 300, 400],
        [2, 60.2, 30.2, 110, 210, "Invalid", 410],
        [],
        ["End Time", None, None, None, "2024-01-01 10:02:00"],
    ]
    export = read_export(write_workbook(tmp_path / "spark.xlsx", {"Result sheet": rows}))
    first, second = export.plates[0].reads
    assert first.shape == (16, 24) and first.mode == "fluorescence" and first.wavelength_nm == 535
    assert first.label == "GFP" and second.time_s == 60.2 and second.temperature_c == 30.2
    assert first.status[0, 1] == WellStatus.OVERFLOW and first.raw_tokens == {"A2": "OVER"}
    assert second.status[15, 22] == WellStatus.INVALID and second.raw_tokens == {"P23": "Invalid"}
    assert second.values[15, 23] == 410
    assert (first.status == WellStatus.NOT_READ).sum() == 384 - 4


def test_settings_only_workbook_is_invalid_not_incomplete(tmp_path: Path) -> None:
    rows: list[list[object]] = [
        ["Application: Tecan i-control", None, None, None, "Tecan i-control , 2.0.10.0"],
        ["Device: infinite 200Pro"],
        ["Label: Label1"],
        ["Mode", None, None, None, "Absorbance"],
    ]
    path = write_workbook(tmp_path / "settings.xlsx", {"Sheet1": rows})
    with pytest.raises(FormatError) as info:
        read_export(path)
    assert type(info.value) is FormatError
    assert "without measurement data" in str(info.value) and str(path) in str(info.value)


def test_float32_artefacts_only_where_the_double_is_a_float32(tmp_path: Path) -> None:
    from acquisition.formats.workbook import float32_token

    assert float32_token("0.09319999814033508") == "0.0932"
    assert float32_token("0.1") == "0.1"  # short decimals are left alone
    assert float32_token("0.123456789012345") == "0.123456789012345"  # not a float32
    assert float32_token("OVER") == "OVER"
    assert np.float32(float(float32_token("0.2451000064611435"))) == np.float32(0.2451)


def test_icontrol_stacker_run_one_sheet_two_plates(tmp_path: Path) -> None:
    def block(plate_id: str, base: int) -> list[list[object]]:
        grid = [["<>", *range(1, 13)]] + [
            [letter, *[base + c for c in range(12)]] for letter in "ABCDEFGH"
        ]
        return [
            ["Application: Tecan i-control", None, None, None, "Tecan i-control , 2.0.10.0"],
            ["Device: infinite 200Pro", None, None, None, "Serial number: 99"],
            ["Plate-ID (Stacker)", None, None, None, plate_id],
            ["Label: Label1"],
            ["Mode", None, None, None, "Absorbance"],
            ["Measurement Wavelength", None, None, None, 600, "nm"],
            *grid,
            [],
        ]

    rows = block("PLATE-A", 1) + block("PLATE-B", 100)
    export = read_export(write_workbook(tmp_path / "stack.xlsx", {"Sheet2": rows}))
    assert [p.plate_id for p in export.plates] == ["PLATE-A", "PLATE-B"]
    assert export.plates[1].reads[0].values[0, 0] == 100


def test_magellan_compact_metadata_and_temperature_cells(tmp_path: Path) -> None:
    rows: list[list[object]] = [["Raw data", "Well positions"]]
    rows += [[round(0.01 * (k + 1), 2), f"{'ABCDEFGH'[k % 8]}{k // 8 + 1}"] for k in range(96)]
    rows += [
        ["Date of measurement: 2025-01-01/Time of measurement: 10:00:00"],
        ["Example_BCA.mth"],
        ["Unknown user"],
        ["infinite F50"],
        ["Instrument serial number: 123456789"],
        ["Plate Description: [SUNRISE_Standard] - Greiner 96 Flat"],
        ["Absorbance"],
        ["Measurement wavelength: 492 nm"],
        ["Label: Label1"],
    ]
    export = read_export(write_workbook(tmp_path / "compact.xlsx", {"Magellan Sheet 1": rows}))
    (plate,) = export.plates
    assert plate.plate_id == "SUNRISE_Standard"
    (read,) = plate.reads
    assert read.wavelength_nm == 492 and read.mode == "absorbance"
    assert read.values[0, 0] == 0.01 and read.values[7, 11] == 0.96
    assert export.instrument == {
        "model": "infinite F50",
        "serial": "123456789",
        "software": "Magellan",
    }
