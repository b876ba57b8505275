"""Bad input of every kind (issue #7): exit 2 and one line, no traceback; never a confident
number from junk; a batch goes on past a bad file; an internal error is exit 70."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from analysis.assay import analyze_plate
from analysis.layout import load_layout
from datamodel import PlateRead, WellStatus
from errors import LayoutError
from tests.plate_sim import simulate_plate, to_gen5_text

ROOT = Path(__file__).resolve().parent.parent
LAYOUT = ROOT / "config" / "layouts" / "mtt-96.toml"
EXAMPLE = ROOT / "examples" / "mtt_plate_clean.txt"
NON_FINITE = re.compile(r"\b(nan|inf|infinity|n/a)\b|-inf|infx", re.IGNORECASE)


def run(*args: str | Path, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, str(ROOT / "service.py"), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        env={**os.environ, **env},
    )


def one_line_exit_2(out: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert out.returncode == 2, (out.returncode, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "Traceback" not in out.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def jsonl(text: str) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# --- the error contract at every boundary --------------------------------------------


def test_report_folder_that_is_a_file_or_has_no_parent(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    one_line_exit_2(
        run("analyze", EXAMPLE, "--layout", LAYOUT, "--report", afile), str(afile), "is a file"
    )
    missing = tmp_path / "no" / "such" / "folder"
    one_line_exit_2(
        run("analyze", EXAMPLE, "--layout", LAYOUT, "--report", missing), "does not exist"
    )


def test_fit_on_an_empty_file_a_directory_or_junk(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    one_line_exit_2(run("fit", empty, "--dose", "d", "--response", "r"), str(empty), "empty")
    one_line_exit_2(run("fit", tmp_path, "--dose", "d", "--response", "r"), "directory")
    junk = tmp_path / "junk.csv"
    junk.write_bytes(bytes(range(256)) * 10)
    one_line_exit_2(run("fit", junk, "--dose", "d", "--response", "r"), str(junk))
    words = tmp_path / "words.csv"
    words.write_text("d,r\na,b\nc,d\n")
    one_line_exit_2(run("fit", words, "--dose", "d", "--response", "r"), "no row has numbers")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"well,role\nA1,blank\n\x81\x8d\x8f\x90\x9d,x\n", "not text"),
        (bytes(range(256)) * 4, "binary"),
        (b"", "empty layout"),
        (b"   \n\n", "empty layout"),
    ],
)
def test_layouts_that_are_not_layouts(tmp_path: Path, content: bytes, needle: str) -> None:
    layout = tmp_path / "layout.csv"
    layout.write_bytes(content)
    one_line_exit_2(run("analyze", EXAMPLE, "--layout", layout), needle)


def test_layout_values_are_typed_strictly(tmp_path: Path) -> None:
    cases = {
        "conc = true": "[well.A1]\nrole = 'treated'\nconc = true\n",
        "conc = 'abc'": "[well.A1]\nrole = 'treated'\nconc = 'abc'\n",
        "expected_ic50 = true": "[well.A1]\nrole = 'untreated'\nexpected_ic50 = true\n",
    }
    for name, body in cases.items():
        path = tmp_path / "l.toml"
        path.write_text(body)
        with pytest.raises(LayoutError) as info:
            load_layout(path)
        text = str(info.value)
        assert "well A1" in text and "nan" not in text.lower(), (name, text)
        assert text.count(str(path)) == 1, text  # the path once, not twice


def test_layout_includes_stay_in_their_folder_and_cycles_are_named(tmp_path: Path) -> None:
    outside = tmp_path / "secret.toml"
    outside.write_text("[expt]\npassword = 'hunter2'\n")
    inner = tmp_path / "layouts"
    inner.mkdir()
    escape = inner / "escape.toml"
    escape.write_text("[meta]\ninclude = '../secret.toml'\n[well.A1]\nrole = 'blank'\n")
    with pytest.raises(LayoutError, match="outside the layout's folder") as info:
        load_layout(escape)
    assert "hunter2" not in str(info.value)
    passwd = inner / "passwd.toml"
    passwd.write_text("[meta]\ninclude = '../../../../../../etc/passwd'\n")
    with pytest.raises(LayoutError, match="outside the layout's folder") as info:
        load_layout(passwd)
    assert "root:" not in str(info.value)
    a, b = inner / "a.toml", inner / "b.toml"
    a.write_text("[meta]\ninclude = 'b.toml'\n[well.A1]\nrole = 'blank'\n")
    b.write_text("[meta]\ninclude = 'a.toml'\n")
    with pytest.raises(LayoutError, match=re.escape("include cycle: a.toml → b.toml → a.toml")):
        load_layout(a)


def test_config_values_are_typed_strictly(tmp_path: Path) -> None:
    config = tmp_path / "pw.toml"
    config.write_text("[analysis]\nwavelength_nm = -570\n")
    one_line_exit_2(
        run("analyze", EXAMPLE, "--layout", LAYOUT, "--config", config), "wavelength_nm"
    )


def test_fail_on_values_are_validated() -> None:
    assert run("analyze", EXAMPLE, "--layout", LAYOUT, "--fail-on", "WARN").returncode == 0
    one_line_exit_2(
        run("analyze", EXAMPLE, "--layout", LAYOUT, "--fail-on", "bogus_code"), "bogus_code"
    )


def test_a_batch_goes_on_past_a_bad_file_and_exits_with_the_worst(tmp_path: Path) -> None:
    junk = tmp_path / "a.txt"
    junk.write_bytes(b"\x00\x01" * 500)
    out = run("analyze", junk, EXAMPLE, "--layout", LAYOUT, "--json")
    assert out.returncode == 2
    first, second = jsonl(out.stdout)
    assert first == {"path": str(junk), "error": first["error"]} and "binary" in first["error"]
    assert second["verdict"] == "pass"
    assert len(out.stderr.strip().splitlines()) == 1


def test_an_internal_error_is_exit_70_with_one_line_naming_the_traceback(tmp_path: Path) -> None:
    script = (
        "import sys, acquisition.pipeline as p\n"
        "def boom(*a, **k): raise RuntimeError('planted bug')\n"
        "p.analyze_file = boom\n"
        "import service\n"
        f"sys.argv = ['platewatch', 'analyze', {str(EXAMPLE)!r}, {str(EXAMPLE)!r}, '--layout', {str(LAYOUT)!r}, '--json']\n"
        "service.main()\n"
    )
    import os

    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={**os.environ, "PLATEWATCH_CRASH_DIR": str(tmp_path)},
    )
    assert out.returncode == 70
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 2 and all("internal error" in line for line in lines)  # one per file
    assert "Traceback" not in out.stderr
    (log,) = tmp_path.glob("platewatch-crash-*.log")
    assert "planted bug" in log.read_text() and str(log) in lines[0]
    assert len(jsonl(out.stdout)) == 2  # both files reported, the batch went on


# --- readers: silent wrong results ---------------------------------------------------


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_long_table_with_one_read_column(tmp_path: Path, delimiter: str) -> None:
    path = tmp_path / "plate.csv"
    rows = [f"well{delimiter}nm570"] + [
        f"{r}{c}{delimiter}{0.1 + 0.01 * c:.3f}" for r in "ABCDEFGH" for c in range(1, 13)
    ]
    path.write_text("\n".join(rows))
    out = run("parse", path, "--json")
    assert out.returncode == 0, out.stderr
    (read,) = jsonl(out.stdout)[0]["plates"][0]["reads"]
    assert read["wavelength_nm"] == 570 and read["values"][7][11] == pytest.approx(0.22)


def test_duplicate_wells_split_by_plate_and_replicate_columns(corpus: Path, tmp_path: Path) -> None:
    out = run("parse", corpus / "doseresponse" / "cellHTS2_KcViab_384.csv", "--json")
    assert out.returncode == 0, out.stderr
    (record,) = jsonl(out.stdout)
    plates = record["plates"]
    assert len(plates) == 57 * 2 and plates[0]["plate"] == "plate 1 / replicate 1"
    read = plates[0]["reads"][0]
    assert (read["rows"], read["cols"]) == (16, 24)
    assert read["values"][0][0] == 887763 and read["unit"] != "OD"  # CellTiter-Glo counts
    dup = tmp_path / "dup.csv"
    dup.write_text("well,value\nA1,0.5\nA2,0.6\nA1,0.7\n")
    one_line_exit_2(run("parse", dup), "line 4", "A1 appears again (first on line 2)")


def test_position_columns_that_are_not_positions(tmp_path: Path) -> None:
    for col in ("1e977", "0", "-1", "13.5"):
        path = tmp_path / "rc.csv"
        path.write_text(f"row,col,od\nA,1,0.5\nB,{col},0.6\n")
        one_line_exit_2(run("parse", path), "line 3")


def test_numbers_no_instrument_reports_are_invalid_not_data(tmp_path: Path) -> None:
    sim = simulate_plate(load_layout(LAYOUT), 1)
    text = to_gen5_text(sim.read)
    text = text.replace(f"\t{sim.read.values[1, 3]:.3f}\t", "\t1e999\t", 1)
    path = tmp_path / "inf.txt"
    path.write_text(text, encoding="cp1252")
    (record,) = jsonl(run("parse", path, "--json").stdout)
    read = record["plates"][0]["reads"][0]
    assert read["status"][1][3] == "invalid" and read["values"][1][3] is None


# --- the analysis never claims what it cannot know -----------------------------------


def _plate(values: np.ndarray, status: WellStatus = WellStatus.OK) -> PlateRead:
    read = PlateRead.empty(8, 12, label="570", wavelength_nm=570.0)
    read.values[:] = values
    read.status[:] = status
    return read


@pytest.mark.parametrize(
    "case", ["all equal", "all zero", "all invalid", "all doses zero", "one absurd well"]
)
def test_degenerate_plates_get_the_right_flag_and_no_ic50_claim(
    case: str, tmp_path: Path, settings, references
) -> None:  # type: ignore[no-untyped-def]
    layout = load_layout(LAYOUT)
    if case == "all equal":
        read = _plate(np.full((8, 12), 0.5))
    elif case == "all zero":
        read = _plate(np.zeros((8, 12)))
    elif case == "all invalid":
        read = _plate(np.full((8, 12), np.nan), WellStatus.INVALID)
    elif case == "all doses zero":
        body = LAYOUT.read_text()
        body = re.sub(r"conc_IU_mL = [0-9.e-]+", "conc_IU_mL = 0", body)
        path = tmp_path / "zero.toml"
        path.write_text(body)
        layout = load_layout(path)
        read = simulate_plate(load_layout(LAYOUT), 2).read
    else:
        read = simulate_plate(layout, 3).read
        read.values[2, 5] = 1e308
    result = analyze_plate([read], layout, settings.qc, references=references)
    codes = {f.code: f.severity for f in result.flags}
    for flag in result.flags:
        assert not NON_FINITE.search(flag.message), (case, flag.message)
    if case in ("all equal", "all zero", "all invalid"):
        assert codes.get("no_signal") == "critical", codes
        assert "control_out_of_range" not in codes and not result.curves
    if case == "all doses zero":
        assert "layout_mismatch" in codes and "control_out_of_range" not in codes
        assert all(c.fit.ic50 is None for c in result.curves)
    if case == "one absurd well":
        assert "invalid_wells" in codes
        assert result.plate.status[2, 5] == WellStatus.INVALID
    record = result.to_dict("x")
    text = json.dumps(record)
    assert "Infinity" not in text and "NaN" not in text


def test_no_negative_ci_bound_and_no_non_finite_text_on_corpus_plates(corpus: Path) -> None:
    files = [
        (
            corpus
            / "platereaders"
            / "allotropy__gen5__240411_172731_BNCH2345883_abs450_96well_non_numeric_values.txt",
            LAYOUT,
        ),
        (corpus / "doseresponse" / "ezmtt_MTT_96.csv", ROOT / "examples" / "ezmtt.layout.toml"),
        (EXAMPLE, LAYOUT),
        (ROOT / "examples" / "mtt_plate_failed.txt", LAYOUT),
    ]
    for path, layout in files:
        out = run("analyze", path, "--layout", layout, "--json")
        assert out.returncode == 0, out.stderr
        for record in jsonl(out.stdout):
            for curve in record["curves"]:
                if curve["ic50_ci"]:
                    assert curve["ic50_ci"][0] > 0, (path.name, curve["group"], curve["ic50_ci"])
            for flag in record["flags"]:
                assert not NON_FINITE.search(flag["message"]), flag["message"]


def test_a_450_nm_read_under_a_570_nm_config_is_said(corpus: Path) -> None:
    path = (
        corpus
        / "platereaders"
        / "allotropy__gen5__240411_172731_BNCH2345883_abs450_96well_non_numeric_values.txt"
    )
    (record,) = jsonl(run("analyze", path, "--layout", LAYOUT, "--json").stdout)
    flag = next(f for f in record["flags"] if f["code"] == "wavelength_differs")
    assert "450 nm" in flag["message"] and "570 nm" in flag["message"]


def test_a_384_well_read_with_a_96_well_layout_is_a_layout_mismatch(settings, references) -> None:  # type: ignore[no-untyped-def]
    layout = load_layout(LAYOUT)
    small = simulate_plate(layout, 4).read
    read = PlateRead.empty(16, 24, label="570", wavelength_nm=570.0)
    read.values[:8, :12] = small.values
    read.status[:8, :12] = small.status
    result = analyze_plate([read], layout, settings.qc, references=references)
    mismatch = [f for f in result.flags if f.code == "layout_mismatch"]
    assert (
        mismatch and "96-well plate" in mismatch[0].message and "384 wells" in mismatch[0].message
    )


def test_explicit_layout_wins_over_a_sidecar_and_is_named(tmp_path: Path) -> None:
    plate = tmp_path / "run.txt"
    plate.write_bytes(EXAMPLE.read_bytes())
    sidecar = tmp_path / "run.layout.toml"
    sidecar.write_text("[well.A1]\nrole = 'blank'\n")
    (record,) = jsonl(run("analyze", plate, "--layout", LAYOUT, "--json").stdout)
    assert record["layout"] == str(LAYOUT)
    out = run("analyze", plate, "--layout", LAYOUT)
    assert f"layout {LAYOUT}" in out.stdout


def test_plates_with_similar_ids_get_their_own_reports(tmp_path: Path) -> None:
    sim = simulate_plate(load_layout(LAYOUT), 5).read
    one = to_gen5_text(sim)
    two = one.replace("Plate Number\tPlate 1", "Plate Number\tPlate_1")
    path = tmp_path / "two.txt"
    path.write_text(one + "\n" + two, encoding="cp1252")
    out = run("analyze", path, "--layout", LAYOUT, "--report", tmp_path / "out", "--json")
    assert out.returncode == 0, out.stderr
    reports = [r["report"]["html"] for r in jsonl(out.stdout)]
    assert len(reports) == 2 and len(set(reports)) == 2


def test_fit_of_a_curve_that_cannot_be_fitted_claims_no_ic50(tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    table.write_text("dose,resp\n0,1\n1,1\n2,1\n3,1\n4,1\n5,1\n")
    (record,) = jsonl(run("fit", table, "--dose", "dose", "--response", "resp", "--json").stdout)
    assert record["ic50"] is None and record["ic50_ci"] is None and not record["converged"]
    text = run("fit", table, "--dose", "dose", "--response", "resp").stdout
    assert "no IC50" in text and not NON_FINITE.search(text)
    big = tmp_path / "big.csv"
    big.write_text("dose,resp\n0,1e308\n1,1e308\n2,5\n3,1\n4,1\n5,1\n")
    out = run("fit", big, "--dose", "dose", "--response", "resp", "--json")
    assert out.returncode == 0 and jsonl(out.stdout)[0]["ic50"] is None
