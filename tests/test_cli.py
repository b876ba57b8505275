"""The platewatch command end to end, as a user runs it (a real subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYOUT = ROOT / "config" / "layouts" / "mtt-96.toml"
EXAMPLE = ROOT / "examples" / "mtt_plate_clean.txt"
EDGE = ROOT / "examples" / "mtt_plate_edge_effect.txt"


def run(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "service.py"), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def jsonl(text: str) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("command", ["parse", "fit", "analyze", "demo"])
def test_every_command_has_help(command: str) -> None:
    out = run(command, "--help")
    assert out.returncode == 0 and "Usage:" in out.stdout


def test_parse_json_shape(corpus: Path) -> None:
    path = (
        corpus
        / "platereaders"
        / "allotropy__gen5__240411_172731_BNCH2345883_abs450_96well_non_numeric_values.txt"
    )
    out = run("parse", path, "--json")
    assert out.returncode == 0, out.stderr
    (record,) = jsonl(out.stdout)
    assert set(record) >= {"path", "sha256", "format", "instrument", "plates"}
    read = record["plates"][0]["reads"][0]
    assert set(read) >= {
        "label",
        "wavelength_nm",
        "time_s",
        "temperature_c",
        "rows",
        "cols",
        "values",
        "status",
    }
    assert read["values"][0][7] is None and read["status"][0][7] == "overflow"
    assert read["values"][0][0] == 2.1
    assert len(record["sha256"]) == 64


def test_parse_bad_files_exit_2_with_one_line_each(tmp_path: Path, corpus: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 4)
    good = corpus / "platereaders" / "allotropy__gen5__endpoint_stdcurve_singleplate.txt"
    out = run("parse", empty, good, junk, tmp_path / "missing.txt", "--json")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 3
    assert str(empty) in lines[0] and "empty file" in lines[0]
    assert str(junk) in lines[1] and "binary" in lines[1]
    assert "missing.txt" in lines[2] and "not found" in lines[2]
    records = jsonl(out.stdout)
    assert [("error" in r) for r in records] == [True, False, True, True]


def test_fit_ryegrass_json(corpus: Path) -> None:
    out = run(
        "fit",
        corpus / "doseresponse" / "drc_ryegrass.csv",
        "--dose",
        "conc",
        "--response",
        "rootl",
        "--json",
    )
    assert out.returncode == 0, out.stderr
    (record,) = jsonl(out.stdout)
    for key in (
        "group",
        "model",
        "converged",
        "b",
        "c",
        "d",
        "e",
        "se",
        "ic50",
        "ic50_ci",
        "ic50_qualifier",
        "absolute_ic50",
        "rse",
        "df",
        "loglik",
        "no_effect_p",
        "response",
    ):
        assert key in record
    assert record["e"] == pytest.approx(3.05795, rel=1e-4)
    assert record["ic50_ci_delta"] == pytest.approx([2.67053, 3.44538], rel=1e-4)  # drc delta
    assert record["ic50_ci_method"] == "fls" and record["ic50_ci"][0] > 0


def test_fit_groups_and_shared_parameters(corpus: Path) -> None:
    table = corpus / "doseresponse" / "drc_S.alba.csv"
    out = run(
        "fit",
        table,
        "--dose",
        "Dose",
        "--response",
        "DryMatter",
        "--group",
        "Herbicide",
        "--shared",
        "c,d",
        "--json",
    )
    assert out.returncode == 0, out.stderr
    fits = {r["group"]["Herbicide"]: r for r in jsonl(out.stdout)}
    assert fits["Bentazone"]["e"] == pytest.approx(28.6324, rel=2e-3)
    assert fits["Glyphosate"]["e"] == pytest.approx(66.8905, rel=2e-3)


def test_fit_unknown_column_is_exit_2(corpus: Path) -> None:
    out = run(
        "fit", corpus / "doseresponse" / "drc_ryegrass.csv", "--dose", "dose", "--response", "rootl"
    )
    assert out.returncode == 2
    assert "no column 'dose'" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_analyze_writes_report_and_json(tmp_path: Path) -> None:
    out = run("analyze", EXAMPLE, EDGE, "--layout", LAYOUT, "--report", tmp_path, "--json")
    assert out.returncode == 0, out.stderr
    clean, edge = jsonl(out.stdout)
    assert clean["kind"] == "plate" and clean["verdict"] == "pass"
    assert edge["verdict"] == "warn"
    assert "edge_effect" in [f["code"] for f in edge["flags"]]
    flag = next(f for f in edge["flags"] if f["code"] == "edge_effect")
    assert set(flag) == {"code", "severity", "wells", "message", "metrics"} and flag["wells"]
    curve = clean["curves"][0]
    assert curve["group"] == {"compound": "asparaginase", "cell_line": "REH"}
    assert curve["ic50_qualifier"] == "=" and 0.4 < curve["ic50"] < 1.6  # simulated truth 0.8 IU/mL
    html = Path(clean["report"]["html"]).read_text()
    assert "data:image/png;base64," in html and "<script" not in html and "PASS" in html
    assert Path(clean["report"]["png"]).stat().st_size > 20_000


def test_analyze_fail_on_gives_exit_1() -> None:
    assert run("analyze", EDGE, "--layout", LAYOUT, "--fail-on", "warn").returncode == 1
    assert run("analyze", EDGE, "--layout", LAYOUT, "--fail-on", "fail").returncode == 0
    assert run("analyze", EDGE, "--layout", LAYOUT, "--fail-on", "edge_effect").returncode == 1
    assert run("analyze", EXAMPLE, "--layout", LAYOUT, "--fail-on", "warn").returncode == 0


def test_analyze_uses_sidecar_layout(tmp_path: Path) -> None:
    plate = tmp_path / "run42.txt"
    plate.write_bytes(EXAMPLE.read_bytes())
    (tmp_path / "run42.layout.toml").write_text(LAYOUT.read_text())
    out = run("analyze", plate, "--json")
    assert out.returncode == 0, out.stderr
    assert jsonl(out.stdout)[0]["layout"].endswith("run42.layout.toml")


def test_analyze_ezmtt_from_the_corpus(corpus: Path) -> None:
    out = run(
        "analyze",
        corpus / "doseresponse" / "ezmtt_MTT_96.csv",
        "--layout",
        ROOT / "examples" / "ezmtt.layout.toml",
        "--json",
    )
    assert out.returncode == 0, out.stderr
    (record,) = jsonl(out.stdout)
    assert "missing_controls" in [f["code"] for f in record["flags"]]


@pytest.mark.parametrize(
    ("setup", "needle"),
    [
        ("empty", "empty file"),
        ("junk", "binary content"),
        ("truncated", "truncated"),
        ("wrong_plate_size", "outside the 8x12 plate"),
        ("no_layout", "no layout"),
        ("bad_config", "unknown key"),
    ],
)
def test_analyze_bad_input_is_exit_2_one_line(
    tmp_path: Path, corpus: Path, setup: str, needle: str
) -> None:
    plate = tmp_path / "plate.txt"
    plate.write_bytes(EXAMPLE.read_bytes())
    args: list[str | Path] = ["analyze", plate, "--layout", LAYOUT]
    if setup == "empty":
        plate.write_bytes(b"")
    elif setup == "junk":
        plate.write_bytes(b"\x00\x01\x02PK junk" * 100)
    elif setup == "truncated":
        plate.write_bytes(EXAMPLE.read_bytes()[: int(EXAMPLE.stat().st_size * 0.8)])
    elif setup == "wrong_plate_size":
        big = tmp_path / "384.toml"
        big.write_text("[well.P24]\nrole = 'blank'\n[well.A2]\nrole = 'untreated'\n")
        args = ["analyze", plate, "--layout", big]
    elif setup == "no_layout":
        args = ["analyze", plate]
    elif setup == "bad_config":
        config = tmp_path / "bad.toml"
        config.write_text("[qc]\nedge_ratoi = 1\n")
        args += ["--config", config]
    out = run(*args)
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1
    assert needle in out.stderr


def test_demo_runs_the_daemon_and_shows_verdicts_and_alerts(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "service.py"),
            "demo",
            "--state",
            str(tmp_path / "var"),
            "--duration",
            "40",
            "--bind",
            "127.0.0.1:0",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "mtt_plate_clean.txt: PASS" in out.stdout
    assert "mtt_plate_edge_effect.txt: WARN" in out.stdout
    assert "mtt_plate_failed.txt: FAIL" in out.stdout and "control_out_of_range" in out.stdout
    alerts = (tmp_path / "var" / "alerts.jsonl").read_text()
    assert "control_out_of_range" in alerts and "export_error.txt" in alerts
    assert list((tmp_path / "var" / "quarantine").glob("*export_error.txt.reason.txt"))
    assert list((tmp_path / "var" / "reports").glob("*.html"))
    assert "dashboard at http://127.0.0.1:" in out.stdout
    assert "[cytometry] asparaginase_1.fcs" in out.stdout  # the FCS experiment, analysed
    import re

    done = [int(n) for n in re.findall(r"TIMECOURSE demo-\d+ \[\w+\]: done (\d+)", out.stdout)]
    assert done and max(done) >= 4  # scheduled reads of the simulated SpectraMax arrived
