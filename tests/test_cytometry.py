"""The Annexin V/PI analysis on synthetic FCS files with known truth, the flags, the
flowCore compensation reference, transforms, channel and control resolution, the report."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acquisition.cytometry import (
    analyze_fcs_batch,
    find_roles,
    group_experiments,
    read_fcs_keywords,
)
from acquisition.cytometry_channels import resolve_channels
from acquisition.formats.fcs import read_fcs
from analysis.compensation import compensate, estimate_spillover
from analysis.cytometry_model import CytometryDefaults, CytometryResult
from analysis.transforms import Arcsinh, Logicle
from errors import AnalysisError
from tests.conftest import CORPUS
from tests.fcs_sim import (
    POPULATIONS,
    Experiment,
    SampleSpec,
    Variant,
    fcs_bytes,
    simulate,
    write_experiment,
)

TOLERANCE = 1.5  # percentage points, the issue's acceptance bound
SPECS = {
    "mid": SampleSpec(fractions=(0.55, 0.21, 0.16, 0.08), seed=1),
    "healthy": SampleSpec(fractions=(0.90, 0.04, 0.03, 0.03), seed=2),
    "treated": SampleSpec(fractions=(0.30, 0.35, 0.30, 0.05), seed=3),
    "late": SampleSpec(fractions=(0.15, 0.10, 0.65, 0.10), seed=4),
    "clogged": SampleSpec(fractions=(0.50, 0.25, 0.20, 0.05), seed=5, instability=(0.4, 0.5)),
    "small": SampleSpec(fractions=(0.60, 0.20, 0.15, 0.05), seed=6, events=6000),
}


def _errors(result: CytometryResult, exp: Experiment) -> dict[str, float]:
    truth = exp.samples[Path(result.path)].truth
    return {p: float(result.percent(p) or 0.0) - truth[p] for p in POPULATIONS}


def _run(
    folder: Path, variant: Variant, file_matrix: bool, **kw: object
) -> tuple[Experiment, list[CytometryResult]]:
    exp = write_experiment(folder, SPECS, variant=variant, file_matrix=file_matrix)
    batch = analyze_fcs_batch(sorted(folder.glob("*.fcs")), **kw)  # type: ignore[arg-type]
    return exp, batch.results


CASES = [
    ("fcs3.1-float", True),
    ("fcs3.1-float", False),
    ("fcs3.0-float-be", True),
    ("fcs3.0-int", True),
    ("fcs3.0-int", False),
    ("fcs2.0-log", True),
    ("fcs2.0-log", False),
]


@pytest.mark.parametrize(
    ("variant", "file_matrix"), CASES, ids=[f"{v}-{'file' if m else 'controls'}" for v, m in CASES]
)
def test_quadrants_are_within_1_5_points_of_the_truth(
    tmp_path: Path, variant: Variant, file_matrix: bool
) -> None:
    exp, results = _run(tmp_path, variant, file_matrix)
    samples = [r for r in results if r.role == "sample"]
    assert len(samples) == len(SPECS)
    worst = 0.0
    for r in samples:
        assert r.compensation["source"] == ("file" if file_matrix else "controls")
        errors = _errors(r, exp)
        worst = max(worst, *(abs(e) for e in errors.values()))
        assert all(abs(e) <= TOLERANCE for e in errors.values()), (Path(r.path).name, errors)
    assert worst < TOLERANCE
    if not file_matrix:  # the estimate recovers the simulated spillover
        matrix = np.array(samples[0].compensation["matrix"]["values"])
        assert np.allclose(matrix, exp.spillover, atol=0.01)


@settings(max_examples=6, deadline=None)
@given(
    fractions=st.lists(st.floats(0.02, 1.0), min_size=4, max_size=4), seed=st.integers(0, 10_000)
)
def test_random_fractions_stay_within_1_5_points(
    tmp_path_factory: pytest.TempPathFactory, fractions: list[float], seed: int
) -> None:
    folder = tmp_path_factory.mktemp("random")
    spec = SampleSpec(fractions=tuple(fractions), seed=seed, events=15_000)  # type: ignore[arg-type]
    exp = write_experiment(folder, {"x": spec})
    result = next(
        r for r in analyze_fcs_batch(sorted(folder.glob("*.fcs"))).results if r.role == "sample"
    )
    errors = _errors(result, exp)
    assert all(abs(e) <= TOLERANCE for e in errors.values()), errors


def test_result_has_the_issue_shape(tmp_path: Path) -> None:
    _, results = _run(tmp_path, "fcs3.1-float", True)
    record = results[-1].to_dict()
    json.dumps(record, allow_nan=False)
    assert {
        "path",
        "kind",
        "role",
        "verdict",
        "flags",
        "populations",
        "gates",
        "compensation",
        "report",
    } <= set(record)
    assert record["kind"] == "cytometry"
    assert set(record["populations"]) == {"live", "early_apoptotic", "late_apoptotic", "necrotic"}
    assert all(set(v) == {"count", "percent"} for v in record["populations"].values())
    assert sum(v["percent"] for v in record["populations"].values()) == pytest.approx(100, abs=0.01)
    assert sum(v["count"] for v in record["populations"].values()) == record["gates"]["cells"]
    assert record["compensation"]["source"] in ("file", "controls", "none")
    assert {"channels", "values"} == set(record["compensation"]["matrix"])
    gates = record["gates"]
    assert gates["events"] >= gates["time"]["events"] >= gates["debris"]["events"] >= gates["cells"]
    th = gates["thresholds"]["annexin"]
    assert th["method"] in ("valley", "control") and th["value"] is not None


def test_gates_remove_debris_doublets_and_saturated_events(tmp_path: Path) -> None:
    exp, results = _run(tmp_path, "fcs3.1-float", True)
    r = next(r for r in results if Path(r.path).name == "mid.fcs")
    sim = exp.samples[Path(r.path)]
    cells = int(((sim.labels < 4) & sim.stable).sum())
    assert abs(r.gates["cells"] - cells) <= 0.01 * cells  # the gates keep the true singlet cells
    assert r.gates["saturated"]["events"] == int((sim.detectors[:, 4] >= 262143).sum())


def test_flow_instability_is_flagged_and_gated(tmp_path: Path) -> None:
    exp, results = _run(tmp_path, "fcs3.1-float", True)
    clogged = next(r for r in results if Path(r.path).name == "clogged.fcs")
    codes = [f.code for f in clogged.flags]
    assert "flow_instability" in codes
    sim = exp.samples[Path(clogged.path)]
    assert clogged.gates["time"]["excluded"] >= 0.8 * int((~sim.stable).sum())
    for r in results:
        if Path(r.path).name != "clogged.fcs":
            assert "flow_instability" not in [f.code for f in r.flags]


def test_dim_annexin_binding_makes_the_control_threshold_over_call(tmp_path: Path) -> None:
    """SCIENCE.md §7: the control threshold over-calls early apoptosis where live cells bind
    Annexin V dimly; the valley is right, and thresholds_disagree says so."""
    spec = SampleSpec(fractions=(0.6, 0.2, 0.15, 0.05), seed=11, dim_annexin=200)
    exp = write_experiment(tmp_path, {"s": spec})
    paths = sorted(tmp_path.glob("*.fcs"))
    valley = next(r for r in analyze_fcs_batch(paths).results if r.role == "sample")
    control_th = replace(CytometryDefaults(), threshold_method="control")
    control = next(
        r for r in analyze_fcs_batch(paths, thresholds=control_th).results if r.role == "sample"
    )
    assert abs(_errors(valley, exp)["early_apoptotic"]) <= TOLERANCE
    assert _errors(control, exp)["early_apoptotic"] > 5.0
    assert "thresholds_disagree" in [f.code for f in valley.flags]
    flag = next(f for f in valley.flags if f.code == "thresholds_disagree")
    assert flag.metrics["gap_points"] > 5 and "Annexin" in flag.message


def test_without_dim_binding_the_methods_agree(tmp_path: Path) -> None:
    spec = SampleSpec(fractions=(0.6, 0.2, 0.15, 0.05), seed=12, dim_annexin=0)
    write_experiment(tmp_path, {"s": spec})
    r = next(
        r for r in analyze_fcs_batch(sorted(tmp_path.glob("*.fcs"))).results if r.role == "sample"
    )
    assert "thresholds_disagree" not in [f.code for f in r.flags]


def test_few_events_saturated_events_and_high_necrotic(tmp_path: Path) -> None:
    specs = {
        "tiny": SampleSpec(events=1500, seed=21),
        "saturating": SampleSpec(saturated=0.05, seed=22),
        "necrotic": SampleSpec(fractions=(0.4, 0.1, 0.2, 0.3), seed=23),
    }
    write_experiment(tmp_path, specs)
    by_name = {
        Path(r.path).stem: r for r in analyze_fcs_batch(sorted(tmp_path.glob("*.fcs"))).results
    }
    assert "few_events" in [f.code for f in by_name["tiny"].flags]
    sat = next(f for f in by_name["saturating"].flags if f.code == "saturated_events")
    assert sat.metrics["channels"]["BL1-A"] > 0 and "voltage" in sat.message
    assert "high_necrotic" in [f.code for f in by_name["necrotic"].flags]
    for name in ("saturating", "necrotic"):
        assert "few_events" not in [f.code for f in by_name[name].flags]


def test_low_viability_untreated_control_flags_the_batch(tmp_path: Path) -> None:
    specs = {
        "untreated": SampleSpec(fractions=(0.5, 0.2, 0.2, 0.1), seed=31),
        "drug": SampleSpec(fractions=(0.3, 0.3, 0.3, 0.1), seed=32),
    }
    write_experiment(tmp_path, specs)
    results = {
        Path(r.path).stem: r for r in analyze_fcs_batch(sorted(tmp_path.glob("*.fcs"))).results
    }
    assert results["untreated"].role == "untreated"
    own = next(f for f in results["untreated"].flags if f.code == "low_viability_control")
    assert own.severity == "critical" and results["untreated"].verdict == "fail"
    other = next(f for f in results["drug"].flags if f.code == "low_viability_control")
    assert other.severity == "warning" and "unhealthy before the drug" in other.message


def test_healthy_untreated_control_is_not_flagged(tmp_path: Path) -> None:
    write_experiment(
        tmp_path, {"untreated": SampleSpec(fractions=(0.92, 0.04, 0.02, 0.02), seed=33)}
    )
    r = next(
        r
        for r in analyze_fcs_batch(sorted(tmp_path.glob("*.fcs"))).results
        if r.role == "untreated"
    )
    assert "low_viability_control" not in [f.code for f in r.flags]


def test_missing_controls_and_no_compensation(tmp_path: Path) -> None:
    write_experiment(
        tmp_path, {"s": SampleSpec(seed=41)}, file_matrix=False, controls=("unstained",)
    )
    r = next(
        r for r in analyze_fcs_batch(sorted(tmp_path.glob("*.fcs"))).results if r.role == "sample"
    )
    codes = [f.code for f in r.flags]
    assert "missing_controls" in codes and "no_compensation" in codes
    missing = next(f for f in r.flags if f.code == "missing_controls")
    assert set(missing.metrics["missing"]) == {"annexin_only", "pi_only"}
    assert r.compensation == {
        "source": "none",
        "keyword": None,
        "matrix": None,
        "reason": r.compensation["reason"],
    }
    assert r.populations is not None  # thresholds from the unstained tube and the valley


def test_no_controls_and_no_valley_cannot_count(tmp_path: Path) -> None:
    write_experiment(
        tmp_path, {"all_live": SampleSpec(fractions=(1.0, 0.0, 0.0, 0.0), seed=42)}, controls=()
    )
    r = analyze_fcs_batch(sorted(tmp_path.glob("*.fcs"))).results[0]
    assert r.populations is None and r.verdict == "fail"
    assert any(f.code == "missing_controls" and f.severity == "critical" for f in r.flags)


def test_compensation_inverts_the_spillover_exactly() -> None:
    rng = np.random.default_rng(0)
    dyes = rng.lognormal(6, 1.5, size=(1000, 3))
    spill = np.array([[1.0, 0.2, 0.05], [0.03, 1.0, 0.3], [0.0, 0.1, 1.0]])
    assert np.allclose(compensate(dyes @ spill, spill), dyes)


def test_estimated_spillover_reproduces_flowcore_reference() -> None:
    """flowCore's compref1 on its FACSCalibur controls, to 1e-3 (SCIENCE.md §6)."""
    folder = CORPUS / "fcs" / "compensation"
    channels = ("FL1-H", "FL2-H", "FL3-H", "FL4-H")
    match = {
        row["filename"]: row["channel"]
        for row in csv.DictReader((folder / "comp_match.csv").open())
    }

    def linear(stem: str) -> np.ndarray:
        d = read_fcs(folder / f"flowcore__{stem}.fcs").primary
        return np.column_stack([d.linear(c) for c in channels])

    unstained = next(k for k, v in match.items() if v == "unstained")
    stained = {v: linear(k) for k, v in match.items() if v != "unstained"}
    found = estimate_spillover(channels, linear(unstained), stained)
    lines = (folder / "flowcore_spillover_reference.txt").read_text().splitlines()
    header = [c.strip('"') for c in lines[0].split()]
    reference = np.array([[float(v) for v in line.split()[1:]] for line in lines[1:]])
    assert header == list(channels)
    assert np.abs(found.matrix - reference).max() < 1e-3


def test_logicle_and_arcsinh() -> None:
    lg = Logicle()
    assert lg.forward(np.array([0.0]))[0] == pytest.approx(0.5 / 4.5)
    assert lg.forward(np.array([262144.0]))[0] == pytest.approx(1.0)
    values = np.array([-5e4, -100.0, 0.0, 1.0, 150.0, 1e4, 262144.0, 1e6])
    assert np.allclose(lg.inverse(lg.forward(values)), values, rtol=1e-9, atol=1e-6)
    assert np.all(np.diff(lg.forward(values)) > 0)
    ash = Arcsinh()
    assert ash.forward(np.array([150.0]))[0] == pytest.approx(np.arcsinh(1.0))


def test_channels_come_from_the_stain_labels_or_fail_with_the_list(tmp_path: Path) -> None:
    sim = simulate(SampleSpec(events=3000), {"annexin", "pi"})
    good = tmp_path / "good.fcs"
    good.write_bytes(fcs_bytes(sim))
    ch = resolve_channels({good: read_fcs(good).primary}, {})
    assert (ch.annexin, ch.pi, ch.fsc_a, ch.fsc_h, ch.ssc_a, ch.time) == (
        "BL1-A",
        "BL3-A",
        "FSC-A",
        "FSC-H",
        "SSC-A",
        "Time",
    )
    bare = tmp_path / "bare.fcs"
    bare.write_bytes(fcs_bytes(sim, labels=(None,) * 6))
    with pytest.raises(AnalysisError) as err:
        resolve_channels({bare: read_fcs(bare).primary}, {})
    message = str(err.value)
    assert "\n" not in message and "BL1-A" in message and "--channel" in message
    given = resolve_channels({bare: read_fcs(bare).primary}, {"annexin": "BL1-A", "pi": "BL3-A"})
    assert given.annexin == "BL1-A"
    with pytest.raises(AnalysisError, match="no channel"):
        resolve_channels({bare: read_fcs(bare).primary}, {"annexin": "FITC-A", "pi": "BL3-A"})


def test_controls_are_found_by_keyword_stem_and_facsdiva_names(tmp_path: Path) -> None:
    sim = simulate(SampleSpec(events=2000), {"annexin", "pi"})
    files = {
        "Compensation Controls_BL1-A Stained Control.fcs": {
            "TUBE NAME": "BL1-A Stained Control",
            "$SRC": "Compensation Controls",
        },
        "Compensation Controls_BL3-A Stained Control.fcs": {},
        "Compensation Controls_APC-A Stained Control.fcs": {},
        "x_unstained_001.fcs": {},
        "tube7.fcs": {"TUBE NAME": "PI only"},
        "A1 untreated.fcs": {},
        "A2 10 IU.fcs": {},
    }
    datasets = {}
    for name, kw in files.items():
        path = tmp_path / name
        path.write_bytes(fcs_bytes(sim, keywords=kw))
        datasets[path] = read_fcs(path).primary
    channels = {"annexin": "BL1-A", "pi": "BL3-A"}
    roles = {p.name: r for p, (r, _) in find_roles(datasets, channels).items()}
    assert roles["Compensation Controls_BL1-A Stained Control.fcs"] == "annexin_only"
    assert roles["Compensation Controls_BL3-A Stained Control.fcs"] == "pi_only"
    assert roles["Compensation Controls_APC-A Stained Control.fcs"] == "other_control"
    assert roles["x_unstained_001.fcs"] == "unstained"
    assert roles["tube7.fcs"] == "pi_only"
    assert roles["A1 untreated.fcs"] == "untreated"
    assert roles["A2 10 IU.fcs"] == "sample"
    explicit = find_roles(datasets, channels, controls={"unstained": tmp_path / "A2 10 IU.fcs"})
    assert explicit[tmp_path / "A2 10 IU.fcs"][0] == "unstained"
    assert explicit[tmp_path / "x_unstained_001.fcs"][0] == "sample"
    with pytest.raises(AnalysisError, match="not among the inputs"):
        find_roles(datasets, channels, controls={"pi_only": tmp_path / "nope.fcs"})


def test_a_control_given_explicitly_joins_the_batch(tmp_path: Path) -> None:
    exp = write_experiment(
        tmp_path, {"s": SampleSpec(seed=71)}, control_names={"pi_only": "tube 3"}
    )
    pi_tube = exp.controls["pi_only"]
    others = [p for p in sorted(tmp_path.glob("*.fcs")) if p != pi_tube]
    batch = analyze_fcs_batch(others, controls={"pi_only": pi_tube})
    assert batch.roles[str(pi_tube)] == "pi_only (--control)"
    sample = next(r for r in batch.results if r.role == "sample")
    assert "missing_controls" not in [f.code for f in sample.flags]
    assert sample.compensation["source"] == "file"


def test_report_writes_png_html_csv_json(tmp_path: Path) -> None:
    write_experiment(tmp_path / "in", {"mid": SPECS["mid"], "clogged": SPECS["clogged"]})
    batch = analyze_fcs_batch(
        sorted((tmp_path / "in").glob("*.fcs")), report_dir=tmp_path / "out", report_name="run 1"
    )
    page = Path(batch.results[0].report["html"])
    assert page.read_text().count("data:image/png;base64,") == len(batch.results)
    for r in batch.results:
        png = Path(r.report["png"])
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = list(csv.DictReader(Path(batch.results[0].report["csv"]).open()))
    assert [row["path"] for row in rows] == [r.path for r in batch.results]
    assert float(rows[-1]["live_percent"]) == pytest.approx(batch.results[-1].percent("live"))
    stored = json.loads(Path(batch.results[0].report["json"]).read_text())
    assert stored["schema"] == 1 and len(stored["results"]) == len(batch.results)


def test_group_experiments_by_folder_and_keywords(tmp_path: Path) -> None:
    sim = simulate(SampleSpec(events=500), {"annexin", "pi"})
    layout = {
        "a/1.fcs": {"EXPERIMENT NAME": "exp1"},
        "a/2.fcs": {"EXPERIMENT NAME": "exp1"},
        "a/unstained.fcs": {},
        "b/1.fcs": {"EXPERIMENT NAME": "exp1"},
        "b/2.fcs": {"EXPERIMENT NAME": "exp2"},
    }
    paths = []
    for name, kw in layout.items():
        path = tmp_path / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(fcs_bytes(sim, keywords=kw))
        paths.append(path)
    assert read_fcs_keywords(paths[0])["EXPERIMENT NAME"] == "exp1"
    groups = {(e.folder.name, e.name): [p.name for p in e.files] for e in group_experiments(paths)}
    assert groups == {
        ("a", "exp1"): ["1.fcs", "2.fcs", "unstained.fcs"],
        ("b", "exp1"): ["1.fcs"],
        ("b", "exp2"): ["2.fcs"],
    }


def test_signalling_nan_and_inf_events_are_excluded_without_warnings(tmp_path: Path) -> None:
    """fuzz: a shifted float32 DATA segment held signalling NaNs, whose cast to float64
    raised a numpy RuntimeWarning in the analysis; such events are invalid and excluded."""
    import warnings

    sim = simulate(SampleSpec(events=4000, seed=51), {"annexin", "pi"})
    path = tmp_path / "junk.fcs"
    raw = bytearray(fcs_bytes(sim))
    layout = read_fcs_bytes_layout(bytes(raw))
    snan = np.array([0x7F800001, 0x7FC00000, 0x7F800000, 0xFF800000], dtype="<u4").tobytes()
    for event in range(0, 400, 10):  # FSC-A of every tenth of the first 400 events
        at = layout + (event * 6 + 1) * 4
        raw[at : at + 4] = snan[(event // 10 % 4) * 4 : (event // 10 % 4) * 4 + 4]
    path.write_bytes(bytes(raw))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = analyze_fcs_batch([path]).results[0]
    assert r.gates["saturated"]["invalid"] == 40
    json.dumps(r.to_dict(), allow_nan=False)


def read_fcs_bytes_layout(raw: bytes) -> int:
    from acquisition.formats.fcs import read_fcs_bytes

    layout = read_fcs_bytes(raw, Path("x.fcs")).primary.layout
    assert layout is not None
    return layout.begin


def test_a_tube_without_events_is_reported_not_raised(tmp_path: Path) -> None:
    write_experiment(tmp_path, {"s": SampleSpec(seed=61)})
    empty = simulate(SampleSpec(events=0, seed=62), {"annexin", "pi"})
    (tmp_path / "empty.fcs").write_bytes(fcs_bytes(empty))
    batch = analyze_fcs_batch(sorted(tmp_path.glob("*.fcs")), report_dir=tmp_path / "out")
    r = next(r for r in batch.results if Path(r.path).name == "empty.fcs")
    assert r.populations is None and r.verdict == "fail"
    assert any(f.code == "few_events" and f.severity == "critical" for f in r.flags)
    json.dumps(r.to_dict(), allow_nan=False)
    assert Path(r.report["png"]).exists()


def test_other_detectors_compensation_controls_are_left_out(tmp_path: Path) -> None:
    write_experiment(tmp_path, {"s": SampleSpec(seed=63)})
    other = simulate(SampleSpec(events=2000, seed=64), {"annexin"})
    (tmp_path / "Compensation Controls_APC-A Stained Control.fcs").write_bytes(fcs_bytes(other))
    batch = analyze_fcs_batch(sorted(tmp_path.glob("*.fcs")))
    assert [Path(p).name for p, _ in batch.skipped] == [
        "Compensation Controls_APC-A Stained Control.fcs"
    ]
    assert len(batch.results) == 4


def test_a_range_beyond_float32_does_not_warn(tmp_path: Path) -> None:
    """fuzz: $PnR = 1e308 on float32 data overflowed when compared with the events."""
    import warnings

    sim = simulate(SampleSpec(events=3000, seed=81), {"annexin", "pi"})
    raw = fcs_bytes(sim).replace(b"/$P2R/262144/", b"/$P2R/1e+308/")
    assert b"1e+308" in raw
    path = tmp_path / "wide.fcs"
    path.write_bytes(raw)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = analyze_fcs_batch([path]).results[0]
    assert r.gates["saturated"]["scatter_kept"]["FSC-A"] == 0


SMALL_SAMPLE = fcs_bytes(simulate(SampleSpec(events=1500, seed=91), {"annexin", "pi"}))


@settings(max_examples=60, deadline=None)
@given(flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 7)), min_size=1, max_size=12))
def test_damaged_events_never_break_the_analysis(
    tmp_path_factory: pytest.TempPathFactory, flips: list[tuple[float, int]]
) -> None:
    """Bit flips in the DATA segment (NaN, inf, huge or negative values): the analysis runs
    without numpy warnings and gives plain JSON, or fails with a one-line project error."""
    import warnings

    from errors import PlatewatchError

    raw = bytearray(SMALL_SAMPLE)
    start = len(raw) - 1500 * 6 * 4
    for where, bit in flips:
        raw[start + int(where * (len(raw) - start - 1))] ^= 1 << bit
    path = tmp_path_factory.mktemp("flipped") / "s.fcs"
    path.write_bytes(bytes(raw))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            batch = analyze_fcs_batch([path])
        except PlatewatchError as exc:
            assert "\n" not in str(exc)
            return
    json.dumps(batch.to_dicts(), allow_nan=False)
