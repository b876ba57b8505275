"""`platewatch parse` and `analyze` on FCS files, as a user runs them (a real subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.fcs_sim import POPULATIONS, SampleSpec, write_experiment

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "service.py"), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def test_analyze_an_annexin_pi_batch_from_the_command_line(tmp_path: Path) -> None:
    specs = {
        "drug_0": SampleSpec(fractions=(0.85, 0.07, 0.05, 0.03), seed=11),
        "drug_high": SampleSpec(fractions=(0.30, 0.35, 0.30, 0.05), seed=12),
    }
    exp = write_experiment(tmp_path / "exp", specs)
    files = sorted((tmp_path / "exp").glob("*.fcs"))
    out = run("analyze", *files, "--report", tmp_path / "out", "--json")
    assert out.returncode == 0, out.stderr
    records = [json.loads(line) for line in out.stdout.splitlines()]
    by_path = {r["path"]: r for r in records}
    assert {r["role"] for r in records} == {"unstained", "annexin_only", "pi_only", "sample"}
    for path, sim in exp.samples.items():
        record = by_path[str(path)]
        assert record["kind"] == "cytometry" and record["compensation"]["source"] == "file"
        for population in POPULATIONS:
            assert abs(record["populations"][population]["percent"] - sim.truth[population]) <= 1.5
        assert record["report"]
    text = run("analyze", *files).stdout
    assert "early apoptotic" in text


def test_parse_an_fcs_file_shows_its_datasets(tmp_path: Path) -> None:
    write_experiment(tmp_path, {"s": SampleSpec(fractions=(0.5, 0.2, 0.2, 0.1), seed=3)})
    out = run("parse", tmp_path / "s.fcs", "--json")
    assert out.returncode == 0, out.stderr
    record = json.loads(out.stdout)
    assert record["format"] == "fcs" and record["path"] == str(tmp_path / "s.fcs")
    (dataset,) = record["datasets"]
    assert dataset["events"] > 1000 and {
        "name",
        "label",
        "bits",
        "range",
        "min",
        "max",
        "mean",
    } <= set(dataset["parameters"][0])


def test_unknown_channels_are_one_line_listing_them(tmp_path: Path) -> None:
    write_experiment(tmp_path, {"s": SampleSpec(fractions=(0.5, 0.2, 0.2, 0.1), seed=3)})
    out = run("analyze", *sorted(tmp_path.glob("*.fcs")), "--channel", "annexin=NOPE-A")
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert "NOPE-A" in out.stderr
