"""Gen5 text exports in every layout Gen5 writes, and Gen5 workbooks.

The corpus has three text files (``tests/test_formats.py`` checks them); the layouts here
are written from Gen5's export options (as allotropy's agilent_gen5 parser documents
them): several plates per file, several read steps and modes (absorbance, fluorescence
filter pairs, luminescence), kinetic tables with derived (blank-subtracted) copies and a
kinetic 'Results' block, row-wise kinetic tables, spectral scans, well tables, indented
sections, and exports whose template left the raw data out.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from acquisition.formats import read_export
from datamodel import WellStatus
from errors import FormatError, IncompleteFileError

WELLS96 = [f"{r}{c}" for r in "ABCDEFGH" for c in range(1, 13)]


def header(plate: str = "Plate 1", reader: str = "Synergy H1") -> list[str]:
    return [
        "",
        "",
        "Software Version\t3.15.15",
        "",
        "",
        "",
        "Experiment File Path:\tC:\\x.xpt",
        "Protocol File Path:\tC:\\x.prt",
        "",
        "",
        "",
        f"Plate Number\t{plate}",
        "Date\t6/12/2024",
        "Time\t5:47:49 PM",
        f"Reader Type:\t{reader}",
        "Reader Serial Number:\t24030706",
        "Reading Type\tReader",
        "",
    ]


def procedure(*steps: str, kinetic: str | None = None) -> list[str]:
    lines = ["Procedure Details", "", "Plate Type\t96 WELL PLATE (Use plate lid)"]
    if kinetic:
        lines.append(f"Start Kinetic\t{kinetic}")
    for step in steps:
        lines.extend(step.split("\n"))
    if kinetic:
        lines.append("End Kinetic\t")
    return [*lines, ""]


ABS = "Read\tod\n\tAbsorbance Endpoint\n\tFull Plate\n\tWavelengths:  600"
FLUOR = (
    "Read\tfluor\n\tFluorescence Endpoint\n\tFull Plate\n\tFilter Set 1\n"
    "\t    Excitation: 579,  Emission: 616\n\tFilter Set 2\n\t    Excitation: 479,  Emission: 520"
)


def grid(rows: dict[str, list[list[str]]]) -> list[str]:
    """A Results grid: per row letter, one list of 12 tokens per dataset label."""
    lines = ["Results", "\t" + "\t".join(str(c) for c in range(1, 13))]
    for letter in "ABCDEFGH":
        for k, (label, tokens) in enumerate(rows.items()):
            lead = letter if k == 0 else ""
            lines.append(lead + "\t" + "\t".join(tokens["ABCDEFGH".index(letter)]) + "\t" + label)
    return [*lines, ""]


def write(tmp_path: Path, lines: list[str], name: str = "gen5.txt") -> Path:
    path = tmp_path / name
    path.write_bytes("\r\n".join(lines).encode("cp1252"))
    return path


def values(base: float) -> list[list[str]]:
    return [[f"{base + r * 0.1 + c * 0.001:.3f}" for c in range(12)] for r in range(8)]


def test_several_read_modes_in_one_results_grid(tmp_path: Path) -> None:
    lines = header() + procedure(ABS, FLUOR)
    lines += ["", "Actual Temperature:\t22.8", ""]
    lines += grid(
        {"od:600": values(0.05), "fluor:579,616": values(70), "fluor:479,520": values(400)}
    )
    export = read_export(write(tmp_path, lines))
    od, red, green = export.plates[0].reads
    assert (od.mode, od.unit, od.wavelength_nm) == ("absorbance", "OD", 600)
    assert (red.mode, red.unit, red.wavelength_nm) == ("fluorescence", "RFU", 616)
    assert green.wavelength_nm == 520 and green.values[7, 11] == pytest.approx(400.711)
    assert od.values[0, 0] == 0.05 and od.temperature_c == 22.8
    assert od.measured_at == "6/12/2024 5:47:49 PM"
    assert [s["label"] for s in export.metadata["read_steps"]] == ["od", "fluor"]


def test_luminescence_without_a_step_label_is_luminescence(tmp_path: Path) -> None:
    step = "Read\tLuminescence Endpoint\n\tFull Plate\n\tIntegration Time: 0:01.00 (MM:SS.ss)"
    lines = (
        header()
        + procedure(step)
        + grid({"Lum": [[str(1000 * r + c) for c in range(12)] for r in range(8)]})
    )
    (read,) = read_export(write(tmp_path, lines)).plates[0].reads
    assert read.mode == "luminescence" and read.unit == "RLU" and read.wavelength_nm is None
    assert read.values[3, 4] == 3004


def test_indented_sections_read_like_the_others(corpus: Path, tmp_path: Path) -> None:
    source = (
        corpus
        / "platereaders"
        / "allotropy__gen5__240411_172731_BNCH2345883_abs450_96well_non_numeric_values.txt"
    )
    text = source.read_bytes().decode("cp1252")
    head, results = text.split("Results\r\n", 1)
    indented = (
        head + "\tResults\r\n" + "".join("\t" + ln for ln in results.splitlines(keepends=True))
    )
    path = tmp_path / "indented.txt"
    path.write_bytes(indented.encode("cp1252"))
    read = read_export(path).plates[0].reads[0]
    plain = read_export(source).plates[0].reads[0]
    assert read.raw_tokens == plain.raw_tokens
    assert (
        read.values[read.status == WellStatus.OK] == plain.values[plain.status == WellStatus.OK]
    ).all()


def kinetic_lines(n: int = 4, *, temp: bool = True, label: str = "OD600:450") -> list[str]:
    head = ["Time", *(["T° " + label] if temp else []), *WELLS96]
    lines = [label, "", "\t".join(head)]
    for k in range(n):
        row = [f"0:{k:02d}:00", *(["30.1"] if temp else [])]
        row += [f"{0.1 + k * 0.01 + i * 0.0001:.4f}" for i in range(96)]
        lines.append("\t".join(row))
    return [*lines, ""]


def test_kinetic_with_derived_tables_and_kinetic_results(tmp_path: Path) -> None:
    step = "    Read\tOD600\n\tAbsorbance Endpoint\n\tFull Plate\n\tWavelengths:  450"
    lines = header() + procedure(
        step, kinetic="Runtime 0:03:00 (HH:MM:SS), Interval 0:01:00, 4 Reads"
    )
    lines += kinetic_lines(4)
    lines += kinetic_lines(4, temp=False, label="Blank OD600:450")
    lines += ["Results", "\t" + "\t".join(str(c) for c in range(1, 13))]
    for letter in "ABCDEFGH":
        lines.append(letter + "\t" + "\t".join(["1.5"] * 12) + "\tMax V [Blank OD600:450]")
        lines.append("\t" + "\t".join(["?????"] * 12) + "\tLagtime [Blank OD600:450]")
    lines.append("")
    export = read_export(write(tmp_path, lines))
    reads = export.plates[0].reads
    assert [r.time_s for r in reads] == [0, 60, 120, 180]
    assert all(r.label == "OD600:450" and r.wavelength_nm == 450 for r in reads)
    assert reads[2].temperature_c == 30.1 and reads[2].values[0, 0] == pytest.approx(0.12)
    assert export.metadata["derived_datasets"] == [
        "Blank OD600:450",
        "Lagtime [Blank OD600:450]",
        "Max V [Blank OD600:450]",
    ]
    assert export.metadata["kinetic_interval_s"] == 60


def test_kinetic_table_cut_at_a_line_end_short_of_its_reads_is_incomplete(tmp_path: Path) -> None:
    step = "    Read\tOD600\n\tAbsorbance Endpoint\n\tFull Plate\n\tWavelengths:  450"
    lines = header() + procedure(
        step, kinetic="Runtime 0:05:00 (HH:MM:SS), Interval 0:01:00, 6 Reads"
    )
    lines += kinetic_lines(3)[:-1]  # three of six reads, the file ending after a whole row
    with pytest.raises(IncompleteFileError):
        read_export(write(tmp_path, [*lines, ""]))


def test_row_wise_kinetic_table(tmp_path: Path) -> None:
    step = "    Read\t450\n\tAbsorbance Endpoint\n\tFull Plate\n\tWavelengths:  450"
    lines = header() + procedure(
        step, kinetic="Runtime 0:02:00 (HH:MM:SS), Interval 0:01:00, 3 Reads"
    )
    lines += ["450", "", "Time\t0:00:00\t0:01:00\t0:02:00", "T° 450\t37.0\t37.1\t37.2"]
    for i, well in enumerate(WELLS96):
        lines.append(f"{well}\t{0.1 + i / 1000:.3f}\t{0.2 + i / 1000:.3f}\tOVRFLW")
    lines.append("")
    reads = read_export(write(tmp_path, lines)).plates[0].reads
    assert [r.time_s for r in reads] == [0, 60, 120]
    assert [r.temperature_c for r in reads] == [37.0, 37.1, 37.2]
    assert reads[1].values[7, 11] == pytest.approx(0.295)
    assert reads[2].status[0, 0] == WellStatus.OVERFLOW and reads[2].raw_tokens["A1"] == "OVRFLW"


def test_spectral_scan_one_read_per_wavelength(tmp_path: Path) -> None:
    step = "Read\tScan\n\tAbsorbance Spectrum\n\tFull Plate\n\tStart: 300 nm,  Stop: 320 nm,  Step: 10 nm"
    lines = header() + procedure(step) + ["Scan:Spectrum", "", "Wavelength\t" + "\t".join(WELLS96)]
    for wl in (300, 310, 320):
        lines.append(f"{wl}\t" + "\t".join(f"{wl / 1000:.3f}" for _ in WELLS96))
    lines.append("")
    reads = read_export(write(tmp_path, lines)).plates[0].reads
    assert [r.wavelength_nm for r in reads] == [300, 310, 320]
    assert reads[1].values[4, 4] == 0.31 and reads[0].mode == "absorbance"


def test_well_table_one_row_per_well(tmp_path: Path) -> None:
    step = "Read\tLuminescence Endpoint\n\tFull Plate"
    lines = header() + procedure(step) + ["Well\tWell ID\tLum\tBlank Lum"]
    for i, well in enumerate(WELLS96):
        lines.append(f"{well}\tSPL{i + 1}\t{1000 + i}\t{900 + i}")
    lines.append("")
    export = read_export(write(tmp_path, lines))
    (read,) = export.plates[0].reads
    assert read.label == "Lum" and read.mode == "luminescence" and read.values[7, 11] == 1095
    assert export.metadata["derived_datasets"] == ["Blank Lum"]


def test_several_plates_in_one_file(tmp_path: Path) -> None:
    lines: list[str] = []
    for p in (1, 2):
        lines += header(plate=f"Plate {p}") + procedure(ABS) + grid({"od:600": values(p)})
    export = read_export(write(tmp_path, lines))
    assert [p.plate_id for p in export.plates] == ["Plate 1", "Plate 2"]
    assert export.plates[1].reads[0].values[0, 0] == 2.0


def test_finished_export_without_read_data_is_invalid(tmp_path: Path) -> None:
    lines = (
        header()
        + procedure(ABS)
        + ["", "Actual Temperature:\t22.8", "", "", "Actual Temperature:\t22.8", ""]
    )
    path = write(tmp_path, lines)
    with pytest.raises(FormatError) as info:
        read_export(path)
    assert type(info.value) is FormatError and "no read data" in str(info.value)


def test_finished_export_with_only_derived_data_is_invalid(tmp_path: Path) -> None:
    lines = header() + procedure(ABS) + grid({"Blank od:600": values(0.01)})
    with pytest.raises(FormatError, match="only derived datasets") as info:
        read_export(write(tmp_path, lines))
    assert type(info.value) is FormatError


def test_export_cut_right_after_a_section_title_is_incomplete(tmp_path: Path) -> None:
    lines = header() + procedure(ABS) + ["Results", ""]
    with pytest.raises(IncompleteFileError):
        read_export(write(tmp_path, lines))


def test_gen5_workbook_kinetic_with_serial_time_offset(corpus: Path) -> None:
    export = read_export(corpus / "platereaders" / "MTPHandler__BioTek_Epoch2.xlsx")
    assert export.format == "gen5_xlsx"
    assert export.instrument == {"model": "ELx808", "serial": "Unknown", "software": "Gen5 3.08.01"}
    reads = export.plates[0].reads
    # the first time cell is empty (the first read); 2.0104 days is 0:15:00 after the offset
    assert [r.time_s for r in reads[:3]] == [0, 900, 1800]
    assert reads[-1].time_s == 353 * 900
    assert all(r.wavelength_nm == 630 and r.label == "630" for r in reads)
    assert reads[0].temperature_c == 36.9 and reads[0].values[0, 0] == 0.097
    assert reads[0].values[3, 8] == pytest.approx(0.1)  # D9
    assert (reads[0].status == WellStatus.OK).sum() == 36
    assert reads[0].measured_at == "2023-11-03 17:46:19"
    assert "Max V [630]" in export.metadata["derived_datasets"]
    assert export.metadata["kinetic_reads_planned"] == 401


def test_unnamed_read_steps_numbered_read_1_read_2(tmp_path: Path) -> None:
    steps = (
        "Read\tAbsorbance Endpoint\n\tFull Plate\n\tWavelengths:  570",
        "Read\tAbsorbance Endpoint\n\tFull Plate\n\tWavelengths:  630",
    )
    lines = header() + procedure(*steps)
    for n, (wl, base) in enumerate(((570, 0.5), (630, 0.05)), start=1):
        lines += [f"Read {n}:{wl}", "", *grid({f"Read {n}:{wl}": values(base)})[1:]]
    export = read_export(write(tmp_path, lines))
    first, second = export.plates[0].reads
    assert (first.label, first.wavelength_nm) == ("Read 1:570", 570)
    assert (second.label, second.wavelength_nm) == ("Read 2:630", 630)
    assert second.values[7, 11] == pytest.approx(0.05 + 0.7 + 0.011)


def test_fluorescence_polarization_channels(tmp_path: Path) -> None:
    step = (
        "Read\tFP\n\tFluorescence Polarization\n\tFluorescence Endpoint\n\tFull Plate\n"
        "\tFilter Set 1 (Polarization)\n\t    Excitation: 485/20,  Emission: 528/20"
    )
    lines = header() + procedure(step)
    lines += grid(
        {"FP:485/20,528/20 [Parallel]": values(100), "FP:485/20,528/20 [Perpendicular]": values(50)}
    )
    parallel, perpendicular = read_export(write(tmp_path, lines)).plates[0].reads
    assert parallel.mode == perpendicular.mode == "fluorescence"
    assert parallel.wavelength_nm == 528 and perpendicular.values[0, 0] == 50


def test_gen5_workbook_endpoint_results_in_column_b(tmp_path: Path) -> None:
    from tests.workbooks import write_workbook

    rows: list[list[object]] = [
        [],
        ["Software Version", "3.11.19"],
        [],
        ["Plate Number", "Plate 1"],
        ["Date", "2024-03-01 00:00:00"],
        ["Time", "09:30:00"],
        ["Reader Type:", "Synergy HTX"],
        ["Reader Serial Number:", "22011111"],
        [],
        ["Procedure Details"],
        [],
        ["Plate Type", "96 WELL PLATE"],
        ["Read", "570"],
        [None, "Absorbance Endpoint"],
        [None, "Full Plate"],
        [None, "Wavelengths:  570, 630"],
        [],
        ["Results"],
        [None, None, *range(1, 13)],
    ]
    for r, letter in enumerate("ABCDEFGH"):
        rows.append([None, letter, *[0.5 + r / 10 + c / 1000 for c in range(12)], "570:570"])
        rows.append([None, None, *[0.05] * 12, "570:630"])
        rows.append([None, None, *[0.45] * 12, "Delta OD"])
    export = read_export(write_workbook(tmp_path / "gen5.xlsx", {"Plate 1 - Sheet1": rows}))
    assert export.format == "gen5_xlsx" and export.instrument["model"] == "Synergy HTX"
    od570, od630 = export.plates[0].reads
    assert (od570.wavelength_nm, od630.wavelength_nm) == (570, 630)
    assert od570.values[7, 11] == pytest.approx(0.5 + 0.7 + 0.011) and od630.values[0, 0] == 0.05
    assert export.metadata["derived_datasets"] == ["Delta OD"]
    assert od570.measured_at == "2024-03-01 09:30:00"


def test_endpoint_then_kinetic_unnamed_fluorescence_reads(tmp_path: Path) -> None:
    """A Synergy H1 layout: an endpoint read with two filter sets, then a kinetic loop of
    one more read; labels 'Read 1:450,490', 'Read 2:450,490', temperature columns 'T°'."""
    endpoint = (
        "Read\tFluorescence Endpoint\n\tFull Plate\n\tFilter Set 1\n\t    Excitation: 450,  Emission: 490\n"
        "\tFilter Set 2\n\t    Excitation: 295,  Emission: 350"
    )
    kinetic = "    Read\tFluorescence Endpoint\n\tFull Plate\n\tFilter Set 1\n\t    Excitation: 450,  Emission: 490"
    lines = header() + procedure(endpoint)[:-1]
    lines += [
        "Start Kinetic\tRuntime 0:20:00 (HH:MM:SS), Interval 0:10:00, 3 Reads",
        *kinetic.split("\n"),
        "End Kinetic\t",
        "",
    ]
    for label, base in (("Read 1:450,490", 200), ("Read 1:295,350", 17000)):
        lines += ["", "Actual Temperature:\t40.0", "", label]
        lines += grid({label: [[str(base + 12 * r + c) for c in range(12)] for r in range(8)]})[1:]
    lines += ["Read 2:450,490", "", "Time\tT° Read 2:450,490\t" + "\t".join(WELLS96)]
    for k in range(3):
        lines.append(
            f"0:{7 + 10 * k:02d}:31\t40.{k}\t"
            + "\t".join(str(1000 + k * 100 + i) for i in range(96))
        )
    lines.append("")
    reads = read_export(write(tmp_path, lines)).plates[0].reads
    e1, e2, *kin = reads
    assert (e1.label, e1.mode, e1.wavelength_nm, e1.temperature_c) == (
        "Read 1:450,490",
        "fluorescence",
        490,
        40.0,
    )
    assert e2.wavelength_nm == 350 and e2.values[7, 11] == 17000 + 84 + 11
    assert [r.time_s for r in kin] == [451, 1051, 1651]
    assert [r.temperature_c for r in kin] == [40.0, 40.1, 40.2]
    assert all(r.mode == "fluorescence" and r.wavelength_nm == 490 for r in kin)


def test_masked_well_written_between_asterisks(tmp_path: Path) -> None:
    step = "Read\tAbsorbance Endpoint\n\tFull Plate\n\tWavelengths:  660"
    tokens = values(0.1)
    tokens[7][2] = "*0.356*"
    lines = header() + procedure(step) + grid({"660": tokens})
    (read,) = read_export(write(tmp_path, lines)).plates[0].reads
    assert read.status[7, 2] == WellStatus.MASKED and read.raw_tokens == {"H3": "*0.356*"}
