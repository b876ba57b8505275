"""The timecourse analysis against simulated truth (issue 13 parts 2–4).

Rates over ≥ 200 seeded timecourses per planted defect (72 h, a read every 2 h at 570 nm
with a 650 nm reference): each defect flagged in ≥ 95 %, clean timecourses warn in ≤ 5 %,
the doubling time within 10 % of the model's; the IC50 of each read against the model's
``e``; GR values against hand-computed ones; nothing NaN or infinite in any stored body.
Run with ``pytest -s`` to see the rates.
"""

from __future__ import annotations

import json
import math
import random
import re
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.growth import breakpoint_h, exponential_phase, trend
from analysis.grvalues import fit_gr, gr_from_doubling_time, gr_from_time_zero, ll3u
from analysis.layout import Layout, WellSpec
from analysis.model import FLAG_CODES
from analysis.timecourse import (
    THRESHOLD_KEYS,
    MissedRead,
    TimecourseDefaults,
    TimePoint,
    analyze_timecourse,
    kinetic_points,
    sparkline,
)
from analysis.timecourse_report import write_timecourse_report
from datamodel import PlateRead, WellStatus, parse_well, well_name
from drivers.plate_model import PlateModel
from tests.timecourse_sim import DEFECTS, simulate_timecourse, timecourse_model

SEEDS = range(200)
PLANTED = {
    "growth_stop": "growth_stalled",
    "blank_rise": "blank_rising",
    "edge_drying": "edge_drift",
}
TIMECOURSE_FLAGS = {"growth_stalled", "blank_rising", "edge_drift", "read_missed"}
NOT_A_NUMBER = re.compile(r"\b(nan|inf|infinity)\b", re.IGNORECASE)


def _stored(body: dict[str, Any]) -> dict[str, Any]:
    """The body as the store keeps it: strict JSON (raises on NaN/inf), read back."""
    loaded: dict[str, Any] = json.loads(json.dumps(body, allow_nan=False))
    for flag in loaded["flags"]:
        assert not NOT_A_NUMBER.search(flag["message"]), flag["message"]
    return loaded


# -- rates over seeded timecourses ------------------------------------------------------------


def _rates(defect: str) -> tuple[Counter[str], list[Any], float]:
    counts: Counter[str] = Counter()
    kept = []
    started = time.perf_counter()
    for seed in SEEDS:
        sim = simulate_timecourse(seed, defect)  # type: ignore[arg-type]
        result = analyze_timecourse(sim.points, sim.layout, curves=False, end_h=72.0)
        body = _stored(result.to_dict())
        codes = {f["code"] for f in body["flags"]}
        counts.update(codes)
        if not any(f["severity"] != "info" for f in body["flags"]):
            counts["(no warning)"] += 1
        kept.append((sim, body))
    return counts, kept, time.perf_counter() - started


@pytest.mark.parametrize("defect", DEFECTS)
def test_each_planted_defect_is_flagged_in_95_percent(defect: str) -> None:
    counts, kept, seconds = _rates(defect)
    n = len(SEEDS)
    want = PLANTED[defect]
    others = {code: counts[code] / n for code in TIMECOURSE_FLAGS - {want}}
    print(
        f"\n{defect}: {want} in {counts[want]}/{n} = {counts[want] / n:.1%}; other timecourse "
        f"flags {others}; {seconds:.1f} s for {n} timecourses"
    )
    assert counts[want] / n >= 0.95
    assert all(rate <= 0.05 for rate in others.values())
    truths = [sim.truth for sim, _ in kept]
    if defect == "edge_drying":
        assert min(t["edge_loss_at_end"] for t in truths) >= 0.15  # as the issue plants it
    if defect == "growth_stop":
        errors = [
            body["summary"]["growth"]["stalled_since_h"] - sim.truth["growth_stop_h"]
            for sim, body in kept
            if body["summary"]["growth"].get("stalled_since_h") is not None
        ]
        print(
            f"  stall onset error: median {np.median(errors):+.2f} h, |p90| {np.percentile(np.abs(errors), 90):.2f} h"
        )
        assert np.percentile(np.abs(errors), 90) < 4.0


def test_clean_timecourses_warn_rarely_and_the_doubling_time_is_the_models() -> None:
    counts, kept, seconds = _rates("clean")
    n = len(SEEDS)
    warned = n - counts["(no warning)"]
    ratios = np.array(
        [
            (body["summary"]["growth"]["doubling_time_h"] or math.nan) / sim.model.doubling_time_h
            for sim, body in kept
        ]
    )
    within = float(np.mean(np.abs(ratios - 1) <= 0.10))

    def covers(body: dict[str, Any], doubling: float) -> bool:
        low, high = body["summary"]["growth"]["doubling_time_ci"]
        return bool(low <= doubling <= (high or math.inf))

    def window_truth(sim: Any, body: dict[str, Any]) -> float:
        """The model's own doubling time over the fitted window (logistic growth slows)."""
        a, b = body["summary"]["growth"]["window_h"]
        n = sim.model.cell_signal
        return math.log(2) * (b - a) / (math.log(n(b)) - math.log(n(a)))

    covered = np.mean([covers(body, sim.model.doubling_time_h) for sim, body in kept])
    covered_window = np.mean([covers(body, window_truth(sim, body)) for sim, body in kept])
    print(
        f"\nclean: warned {warned}/{n} = {warned / n:.1%} ({dict(counts)}); doubling time / "
        f"model's: median {np.median(ratios):.3f}, 5–95 % {np.percentile(ratios, 5):.3f}–"
        f"{np.percentile(ratios, 95):.3f}, within 10 % in {within:.1%}; the 95 % CI holds the "
        f"model's in {covered:.1%} and the model's over the fitted window in "
        f"{covered_window:.1%}; {seconds:.1f} s for {n} timecourses"
    )
    assert warned / n <= 0.05
    assert within >= 0.95
    assert abs(float(np.median(ratios)) - 1) < 0.05
    assert covered_window >= 0.8  # the CI is about sampling noise, not the logistic slowing


def test_a_constant_edge_effect_or_high_blank_is_not_a_trend() -> None:
    """A plate that reads 20 % low at the edge from the start, with blanks at 0.18 OD,
    is the plate checks' business (edge_effect, high_background), not a drift over time;
    neither is the default plate model, whose growth slows towards its capacity."""
    flagged: Counter[str] = Counter()
    for seed in range(40):
        model = replace(timecourse_model(seed), edge_loss=0.2, blank_od=0.18)
        for m in (model, PlateModel(seed=seed)):
            sim = simulate_timecourse(seed, every_h=4, model=m)
            result = analyze_timecourse(sim.points, sim.layout, curves=False)
            flagged.update(f.code for f in result.flags)
            ring = result.summary["edge"]["series"]
            if m is model:
                assert 0.75 < float(np.median(ring)) < 0.9  # the edge effect is there
    assert not flagged, flagged


def test_the_flags_do_not_depend_on_the_curve_fits() -> None:
    for seed, defect in ((1, "clean"), (2, "growth_stop"), (3, "blank_rise"), (4, "edge_drying")):
        sim = simulate_timecourse(seed, defect, every_h=6)  # type: ignore[arg-type]
        fast = analyze_timecourse(sim.points, sim.layout, curves=False)
        full = analyze_timecourse(sim.points, sim.layout, curves=True)
        assert [f.to_dict() for f in fast.flags] == [f.to_dict() for f in full.flags]
        assert fast.summary["growth"] == full.summary["growth"]
        assert full.summary["ic50"] and not fast.summary["ic50"]


def test_reads_arriving_out_of_order_give_the_same_analysis() -> None:
    sim = simulate_timecourse(11, "edge_drying", every_h=4, missed=(2,))
    shuffled = list(sim.points)
    random.Random(5).shuffle(shuffled)
    a = analyze_timecourse(sim.points, sim.layout, missed=sim.missed, curves=False).to_dict()
    b = analyze_timecourse(shuffled, sim.layout, missed=sim.missed, curves=False).to_dict()
    assert a == b
    assert a["summary"]["t_h"] == sorted(a["summary"]["t_h"])


# -- IC50 over time ----------------------------------------------------------------------------


def test_ic50_per_read_is_the_models_e() -> None:
    """The model kills towards a fixed LL.4 (its IC50 stays e while the curve deepens):
    every read's IC50 must estimate e, its 95 % CI holding e about 95 % of the time."""
    covered: list[bool] = []
    late_ratios: list[float] = []
    for seed in range(20):
        sim = simulate_timecourse(seed, every_h=6)
        result = analyze_timecourse(sim.points, sim.layout, end_h=72.0)
        truth = {line.name: line.ic50 for line in sim.model.cell_lines}
        body = _stored(result.to_dict())
        assert {c["cell_line"] for c in body["summary"]["ic50"]} == set(truth)
        for curve in body["summary"]["ic50"]:
            e = truth[curve["cell_line"]]
            first = curve["points"][0]
            assert first["t_h"] == 0 and first["response"] == "none"  # nothing killed yet
            for p in curve["points"]:
                if p["response"] == "none" or p["ic50_qualifier"] != "=" or not p["ic50_ci"]:
                    continue
                low, high = p["ic50_ci"]
                covered.append(low <= e <= high)
                if p["t_h"] >= 24:
                    late_ratios.append(p["ic50"] / e)
    coverage = float(np.mean(covered))
    median = float(np.median(late_ratios))
    print(
        f"\nIC50 per read: {len(covered)} estimates, 95 % CI holds the model's e in "
        f"{coverage:.1%}; from hour 24 IC50/e median {median:.3f}, 5–95 % "
        f"{np.percentile(late_ratios, 5):.3f}–{np.percentile(late_ratios, 95):.3f}"
    )
    assert len(covered) >= 300
    assert coverage >= 0.88
    assert abs(median - 1) < 0.05
    assert np.percentile(late_ratios, 5) > 0.8 and np.percentile(late_ratios, 95) < 1.25


# -- GR values ---------------------------------------------------------------------------------


def test_gr_values_match_hand_computed_ones() -> None:
    # time zero 0.2, control 0.8 (2 doublings): GR(x) = 2^(log2(x/0.2) / 2) − 1
    x = np.array([0.8, 0.4, 0.2, 0.1, 0.0, -0.01])
    expected = [1.0, math.sqrt(2) - 1, 0.0, 1 / math.sqrt(2) - 1, -1.0, -1.0]
    assert gr_from_time_zero(x, 0.2, 0.8) == pytest.approx(expected, abs=1e-12)
    # 48 h at a 24 h doubling time is the same 2 doublings: the two formulas agree
    assert gr_from_doubling_time(x, 0.8, 48.0, 24.0) == pytest.approx(expected, abs=1e-12)
    # one doubling, half the control: 2^(1 + log2(0.5)/1) − 1 = 0
    assert gr_from_doubling_time([0.5], 1.0, 24.0, 24.0) == pytest.approx([0.0])


def _exact_plate(values: dict[str, float], blank: float = 0.05) -> PlateRead:
    grid = np.full((8, 12), blank)
    for well, v in values.items():
        grid[parse_well(well)] = blank + v
    status = np.full((8, 12), WellStatus.OK, dtype=object)
    return PlateRead(
        values=grid, status=status, label="570nm", wavelength_nm=570.0, mode="absorbance"
    )


def _small_layout() -> Layout:
    wells = {well_name(r, 0): WellSpec("blank") for r in range(8)}
    for r in range(8):
        wells[well_name(r, 1)] = WellSpec("untreated", cell_line="L")
        for c, dose in ((2, 0.1), (3, 1.0), (4, 10.0)):
            wells[well_name(r, c)] = WellSpec("treated", "drug", dose, "µM", cell_line="L")
    return Layout(wells=wells, source="exact", declared_shape=(8, 12))


def test_gr_values_of_an_exact_timecourse_are_the_hand_computed_ones() -> None:
    """Noise-free reads: 0.2 OD above blank everywhere at hour 0; at hour 48 the untreated
    wells read 0.8 (two doublings), the doses 0.4, 0.2 and 0.05."""
    layout = _small_layout()
    zero = {w: 0.2 for w, s in layout.wells.items() if s.role != "blank"}
    later: dict[str, float] = {}
    for w, s in layout.wells.items():
        if s.role == "untreated":
            later[w] = 0.8
        elif s.role == "treated":
            later[w] = {0.1: 0.4, 1.0: 0.2, 10.0: 0.05}[s.conc or 0.0]
    points = [
        TimePoint(0.0, [_exact_plate(zero)], "t0"),
        TimePoint(48.0, [_exact_plate(later)], "t48"),
    ]
    body = _stored(analyze_timecourse(points, layout, curves=False).to_dict())
    assert body["summary"]["gr"]["source"] == "time_zero"
    gr_by_dose = {0.1: math.sqrt(2) - 1, 1.0: 0.0, 10.0: 2 ** (math.log2(0.25) / 2) - 1}
    for well, spec in layout.wells.items():
        if spec.role == "treated":
            assert body["wells"][well]["gr"] == [
                None,
                pytest.approx(gr_by_dose[spec.conc or 0.0], abs=1e-4),
            ]
        elif spec.role == "untreated":
            assert body["wells"][well]["gr"][1] == pytest.approx(1.0, abs=1e-4)
    # without the time-zero read, a known 24 h doubling time gives the same values
    known = _stored(
        analyze_timecourse(points[1:], layout, curves=False, doubling_time_h={"L": 24.0}).to_dict()
    )
    assert known["summary"]["gr"]["source"] == "doubling_time"
    assert known["wells"]["A5"]["gr"] == [pytest.approx(gr_by_dose[10.0], abs=1e-4)]
    # neither: no GR values, and the summary says why
    none = analyze_timecourse(points[1:], layout, curves=False).to_dict()
    assert none["summary"]["gr"]["source"] is None and "gr" not in none["wells"]["A5"]
    assert "GR values not computed" in none["summary"]["gr"]["note"]


def test_gr_curve_metrics_of_exact_ll3u_data() -> None:
    doses = np.repeat(10.0 ** np.arange(-3, 2), 3)  # 0.001 … 10, triplicates
    gr = ll3u(doses, -0.4, 0.05, 1.3)
    fit = fit_gr(doses, gr)
    assert fit.response == "yes" and fit.p < 1e-6
    assert (fit.gr_inf, fit.gec50, fit.h) == pytest.approx((-0.4, 0.05, 1.3), rel=1e-5)
    gr50 = 0.05 * ((1 + 0.4) / (0.5 + 0.4) - 1) ** (1 / 1.3)
    assert fit.gr50_qualifier == "=" and fit.gr50 == pytest.approx(gr50, rel=1e-5)
    assert ll3u(np.array([gr50]), -0.4, 0.05, 1.3)[0] == pytest.approx(0.5)
    # GRmax: the lowest mean GR of the two highest doses
    assert fit.gr_max == pytest.approx(min(ll3u(np.array([1.0, 10.0]), -0.4, 0.05, 1.3)))
    # a curve that never falls to 0.5: GR50 not reached, reported at the top dose
    weak = fit_gr(doses, ll3u(doses, 0.7, 0.05, 1.3))
    assert weak.gr50_qualifier == ">" and weak.gr50 == 10.0
    # flat noise: no sigmoid, no GEC50 or slope claimed
    rng = np.random.default_rng(3)
    flat = fit_gr(doses, 0.9 + rng.normal(0, 0.02, len(doses)))
    assert flat.response == "none" and flat.to_dict()["gec50"] is None
    assert flat.gr50_qualifier == ">"


def test_gr_metrics_follow_the_simulated_kill() -> None:
    sim = simulate_timecourse(5, every_h=8)
    body = _stored(analyze_timecourse(sim.points, sim.layout).to_dict())
    curves = {c["cell_line"]: c for c in body["summary"]["gr"]["curves"]}
    assert set(curves) == {"REH", "MOLT-4P"}
    for curve in curves.values():
        late = [p for p in curve["points"] if p["t_h"] >= 24]
        assert late and all(p["response"] == "yes" and p["gr_max"] < 0 for p in late)
        assert all(p["gr50_qualifier"] == "=" for p in late)
    # the sensitive line's GR50 sits far below the resistant one's, as their IC50s do
    reh = np.median([p["gr50"] for p in curves["REH"]["points"] if p["t_h"] >= 24])
    molt = np.median([p["gr50"] for p in curves["MOLT-4P"]["points"] if p["t_h"] >= 24])
    assert molt < reh / 20


# -- missed reads, odd inputs ------------------------------------------------------------------


def test_missed_reads_are_flagged_with_what_they_cost() -> None:
    sim = simulate_timecourse(8, every_h=2, missed=(0, 10, 11, 12, 36))
    body = _stored(
        analyze_timecourse(sim.points, sim.layout, missed=sim.missed, curves=False).to_dict()
    )
    (flag,) = [f for f in body["flags"] if f["code"] == "read_missed"]
    text = flag["message"]
    assert flag["severity"] == "warning"
    assert "5 planned reads missed" in text
    assert "time-zero read is missing" in text and "no GR values" in text
    lo, hi = body["summary"]["growth"]["window_h"]
    in_phase = sum(1 for h in (20.0, 22.0, 24.0) if lo <= h <= hi)
    assert in_phase >= 1 and flag["metrics"]["in_exponential_phase"] == in_phase
    assert f"{in_phase} fell in the exponential phase" in text
    assert "longest gap between reads is now 8 h (planned every 2 h)" in text
    assert "newest reads are missing" in text and "hour 70" in text
    assert "Check the reader" in text  # the catalogue's cause and action follow
    assert flag["metrics"]["indices"] == [0, 10, 11, 12, 36]
    assert flag["metrics"]["due_h"] == [0.0, 20.0, 22.0, 24.0, 72.0]
    assert body["summary"]["missed"][0] == {
        "index": 0,
        "due_h": 0.0,
        "reason": "reader offline (simulated)",
    }
    clean = analyze_timecourse(sim.points, sim.layout, curves=False)
    assert "read_missed" not in {f.code for f in clean.flags}


def test_a_timecourse_with_no_reads_yet_reports_only_its_missed_reads() -> None:
    layout = simulate_timecourse(1, every_h=24).layout
    result = analyze_timecourse([], layout, missed=[MissedRead(0, 0.0, "offline")])
    body = _stored(result.to_dict())
    assert [f["code"] for f in body["flags"]] == ["read_missed"]
    assert body["summary"]["reads"] == 0 and body["summary"]["growth"]["doubling_time_h"] is None
    assert analyze_timecourse([], layout).to_dict()["flags"] == []


def test_a_read_that_cannot_be_analysed_is_reported_and_skipped() -> None:
    sim = simulate_timecourse(2, every_h=6)
    small = PlateRead(
        values=np.full((4, 6), 0.1),
        status=np.full((4, 6), WellStatus.OK, dtype=object),
        label="570nm",
        wavelength_nm=570.0,
    )
    points = [*sim.points, TimePoint(80.0, [small], "tiny"), TimePoint(90.0, [], "empty")]
    body = _stored(analyze_timecourse(points, sim.layout, curves=False).to_dict())
    errors = {e["id"]: e["error"] for e in body["summary"]["errors"]}
    assert set(errors) == {"tiny", "empty"}
    assert "outside the 4x6 plate" in errors["tiny"] and "no reads" in errors["empty"]
    assert body["summary"]["reads"] == len(sim.points)
    assert body["points"][-1]["error"] == errors["empty"]


def test_each_read_gets_the_plate_flags_when_asked(settings: Any) -> None:
    sim = simulate_timecourse(4, "edge_drying", every_h=8)
    body = _stored(
        analyze_timecourse(sim.points, sim.layout, plate_qc=settings.qc, curves=True).to_dict()
    )
    verdicts = [p["plate_verdict"] for p in body["points"]]
    assert all(v in ("pass", "warn", "fail") for v in verdicts)
    codes = [{f["code"] for f in p["plate_flags"]} for p in body["points"]]
    assert "edge_effect" not in codes[0] and "edge_effect" in codes[-1]  # evaporation built up
    assert "edge_drift" in {f["code"] for f in body["flags"]}
    assert body["summary"]["latest"]["plate_verdict"] == verdicts[-1]
    assert body["summary"]["ic50"]


def test_flag_codes_and_thresholds_are_declared() -> None:
    assert TIMECOURSE_FLAGS <= FLAG_CODES
    defaults = TimecourseDefaults()
    assert set(THRESHOLD_KEYS) == set(vars(defaults))
    assert all(isinstance(getattr(defaults, k), int | float) for k in THRESHOLD_KEYS)


# -- growth numerics, sparkline ----------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    doubling=st.floats(5.0, 80.0),
    every=st.sampled_from([0.5, 1.0, 2.0, 4.0]),
    lag=st.integers(0, 3),
)
def test_exact_exponential_growth_gives_its_doubling_time(
    doubling: float, every: float, lag: int
) -> None:
    t = np.arange(0, 48 + 1e-9, every)
    signal = 0.1 * np.exp2(np.maximum(t - lag * every, 0) / doubling)  # a short lag first
    fit = exponential_phase(t, signal)
    if lag == 0:
        assert fit.doubling_time_h == pytest.approx(doubling, rel=1e-6)
    else:  # the widened window may take in the corner read where growth starts
        assert fit.doubling_time_h == pytest.approx(doubling, rel=0.03)
    assert fit.significant


@pytest.mark.parametrize("lag_h", [6.0, 10.0, 16.0])
def test_a_lag_and_a_plateau_are_kept_out_of_the_exponential_phase(lag_h: float) -> None:
    t = np.arange(0, 73, 2.0)
    grown = np.clip(t - lag_h, 0, 40)  # flat until lag_h, then 40 h of growth, then flat
    fit = exponential_phase(t, 0.1 * np.exp2(grown / 25.0))
    assert fit.window_h is not None
    assert lag_h - 2.0 <= fit.window_h[0] and fit.window_h[1] <= lag_h + 40 + 2.0
    assert fit.doubling_time_h == pytest.approx(25.0, rel=0.03)


@settings(max_examples=40, deadline=None)
@given(slope=st.floats(-0.01, 0.01), start=st.floats(0.0, 1.0), n=st.integers(5, 40))
def test_trend_of_a_straight_line(slope: float, start: float, n: int) -> None:
    t = np.linspace(0, 72, n)
    tr = trend(t, start + slope * t)
    assert tr is not None and tr.slope == pytest.approx(slope, abs=1e-12)
    assert tr.change == pytest.approx(slope * 72, abs=1e-9)
    if abs(slope) > 1e-9:
        assert (tr.p_up if slope > 0 else tr.p_down) < 1e-3


def test_the_bend_of_a_stalled_series_is_found() -> None:
    t = np.arange(0, 73, 2.0)
    signal = 0.1 * np.exp(0.03 * np.minimum(t, 34.0))
    assert breakpoint_h(t, signal) == 34.0


def test_sparkline() -> None:
    assert sparkline([1, 2, 3, 4, 5, 6, 7, 8]) == "▁▂▃▄▅▆▇█"
    assert sparkline([0.1, None, float("nan"), 0.3]) == "▁  █"
    assert sparkline([2.0, 2.0]) == "▄▄" and sparkline([]) == "" and sparkline([None]) == " "
    assert len(sparkline(list(range(100)), width=20)) == 20
    assert sparkline(list(range(100)), width=20)[0] == "▁"


# -- report ------------------------------------------------------------------------------------


def test_the_report_is_drawn_from_the_stored_body(tmp_path: Path) -> None:
    sim = simulate_timecourse(7, "growth_stop", every_h=3, missed=(3, 4))
    result = analyze_timecourse(
        sim.points, sim.layout, missed=sim.missed, end_h=72.0, timecourse_id="<tc-7>"
    )
    body = _stored(result.to_dict())
    paths = write_timecourse_report(body, tmp_path, "timecourse <7>", source="reader-1")
    png, page = Path(paths["png"]), Path(paths["html"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 50_000
    text = page.read_text(encoding="utf-8")
    assert "data:image/png;base64," in text
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", text)  # self-contained
    assert "&lt;tc-7&gt;" in text and "<tc-7>" not in text
    assert "growth_stalled" in text and "read_missed" in text
    assert "Missed reads" in text and "reader offline (simulated)" in text
    assert "/" not in Path(paths["png"]).name and png.parent == tmp_path
    # a body with nothing in it still renders (a timecourse whose reads were all missed)
    empty = _stored(analyze_timecourse([], sim.layout, missed=sim.missed).to_dict())
    assert Path(write_timecourse_report(empty, tmp_path, "empty")["png"]).exists()


def test_a_real_kinetic_export_is_a_timecourse(corpus: Path) -> None:
    """Gen5's kinetic OD600 run (aborted after 20 reads, 4 min apart, readings below the
    blank): the reads assemble in time order and the analysis says what it cannot judge."""
    from acquisition.formats import read_export

    export = read_export(
        corpus / "platereaders" / "allotropy__gen5__kinetic_helper_gene_growth_curve.txt"
    )
    (plate,) = export.plates
    reads = list(plate.reads)
    points = kinetic_points(reads[::-1], id="gen5")  # any order in, time order out
    assert len(points) == 20 and [p.t_h for p in points] == sorted(p.t_h for p in points)
    assert points[0].t_h == pytest.approx(22 / 3600) and points[-1].t_h == pytest.approx(
        4582 / 3600
    )
    read_wells = [well_name(r, c) for r in range(4) for c in range(6)]
    layout = Layout(
        wells={w: WellSpec("untreated", cell_line="culture") for w in read_wells},
        source="kinetic",
        declared_shape=(8, 12),
    )
    body = _stored(analyze_timecourse(points, layout).to_dict())
    assert body["summary"]["reads"] == 20 and body["flags"] == []
    assert body["summary"]["growth"]["doubling_time_h"] is None
    assert "signal" in body["summary"]["growth"]["note"]  # nothing above the blank to log
    assert body["summary"]["blank"]["series"] == [None] * 20  # the layout has no blanks
    assert len(body["wells"]["A1"]["signal"]) == 20


def test_untreated_wells_that_never_grow_are_flagged() -> None:
    model = replace(timecourse_model(3), growth_stop_h=0.0)
    sim = simulate_timecourse(3, every_h=3, model=model)
    body = _stored(analyze_timecourse(sim.points, sim.layout, curves=False).to_dict())
    (flag,) = [f for f in body["flags"] if f["code"] == "growth_stalled"]
    assert "have not grown" in flag["message"] and "seeding" in flag["message"]
    assert (
        body["summary"]["gr"]["source"] == "time_zero"
        and "have not grown" in body["summary"]["gr"]["note"]
    )
