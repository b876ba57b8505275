"""Plate QC on simulated plates of known truth, and on the real ezmtt plate.

The rate tests are the acceptance criteria of issue 9, per layout family (tests/plate_sim.py:
lines interleaved by row, in row blocks, in column blocks, doses down the rows, 384 wells),
over both noise models (Gaussian; heavy tails + outlier wells + a drifting untreated
level), pooled per family:

* clean plates raise a warning or worse in ≤ 2 % (200 plates per noise model);
* every planted defect of 15 % (gradients end to end) is flagged in ≥ 95 % (200 plates per
  noise model where the outcome is statistical, fewer where it is deterministic);
* where the layout confounds an axis with the groups (a row gradient with the lines in row
  blocks, a column gradient with the lines in column blocks) the plate carries the info note
  that says so instead of a verdict;
* along the axis the dilution series runs on in a 96-well layout, only the untreated wells
  (and doses on the curve's plateau) measure a gradient independently of the dose
  response: there a 15 % gradient is at the design's detection limit (~91–95 % at a 1 %
  plate-level α; docs/qc_calibration.md), so 15 % must reach 90 % and 20 % must reach 95 %.

Seeds start at 3,000,000 (+ offsets per family, noise and case): disjoint from the seeds
the thresholds were tuned on (900000+; 2000+ was used once, before the last change of
``gradient_p``) and from the bench's (500000+). The rates are printed (pytest -s). Each
family's plates are analysed once, on both cores.
"""

from __future__ import annotations

import itertools
import math
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acquisition.formats import read_export
from analysis.assay import analyze_plate
from analysis.layout import load_layout
from analysis.wellgroups import multiplicative_sd
from analysis.withingroup import split_alpha, within_group_test
from tests.plate_sim import (
    ACCEPTANCE_NOISE,
    DEFECT_CASES,
    LAYOUT_FAMILIES,
    Defects,
    interleaved_layout,
    simulate_plate,
)
from tests.qc_runs import CLEAN, Tally, chunks, rates

SEED_BASE = 3_000_000
ROOT = Path(__file__).resolve().parent.parent

# plates per noise model: the outcomes near a threshold get 200, the ones far from it
# (flagged on every plate in bench/qc_rates.py's 500-plate runs) fewer
PLATES = {
    CLEAN: 200,
    "edge 15 %": 200,
    "column gradient 15 % end to end": 200,
    "row gradient 15 % end to end": 200,
    "contaminated blanks 15 %": 60,
    "2 dead wells": 60,
    "2 saturated wells": 25,
    "inactive asparaginase": 60,
    "column gradient 20 % end to end": 100,
    "row gradient 20 % end to end": 100,
}
PLATES_384 = {case: min(n, 100) if case != CLEAN else n for case, n in PLATES.items()}

# (family, case) → what the plates must show instead of "flagged in ≥ 95 %"
CONFOUNDED = {
    ("row_blocks", "row gradient 15 % end to end"),
    ("column_blocks", "column gradient 15 % end to end"),
}
# the axis each 96-well family runs its dilution series along
DETECTION_LIMIT = {
    ("interleaved", "column gradient 15 % end to end"): "column gradient 20 % end to end",
    ("row_blocks", "column gradient 15 % end to end"): "column gradient 20 % end to end",
    ("column_blocks", "row gradient 15 % end to end"): "row gradient 20 % end to end",
    ("doses_along_rows", "row gradient 15 % end to end"): "row gradient 20 % end to end",
}


def _cases(family: str) -> list[str]:
    extra = [limit for (f, _), limit in DETECTION_LIMIT.items() if f == family]
    return [CLEAN, *DEFECT_CASES, *extra]


@pytest.fixture(scope="module", params=list(LAYOUT_FAMILIES))
def family(request: pytest.FixtureRequest) -> tuple[str, dict[str, Tally], float]:
    """Every case of one layout family over both noise models: tallies pooled by case."""
    name = str(request.param)
    counts = PLATES_384 if name.endswith("384") else PLATES
    tasks = []
    for n_index, noise in enumerate(ACCEPTANCE_NOISE):
        for c_index, case in enumerate(_cases(name)):
            first = SEED_BASE + 100_000 * n_index + 10_000 * list(LAYOUT_FAMILIES).index(name)
            tasks += chunks(name, noise, case, first + 1_000 * c_index, counts[case])
    start = time.perf_counter()
    tallies = rates(tasks)
    wall = time.perf_counter() - start
    pooled: dict[str, Tally] = {}
    for (_, noise, case), tally in sorted(tallies.items()):
        total = pooled.setdefault(case, Tally(type(tally.outcomes)(), type(tally.culprits)()))
        total.outcomes.update(tally.outcomes)
        total.culprits.update(tally.culprits)
        print(f"\n{name} / {noise} / {case}: {dict(tally.outcomes)} {dict(tally.culprits)}")
    print(f"\n{name}: {sum(t.plates for t in tallies.values())} plates in {wall:.1f} s wall")
    return name, pooled, wall


def test_clean_plates_rarely_warn(family: tuple[str, dict[str, Tally], float]) -> None:
    name, pooled, _ = family
    clean = pooled[CLEAN]
    assert clean.plates == len(ACCEPTANCE_NOISE) * PLATES[CLEAN]
    assert clean.rate("warned") <= 0.02, (name, dict(clean.outcomes), dict(clean.culprits))


@pytest.mark.parametrize("case", list(DEFECT_CASES))
def test_planted_defects_are_flagged(
    family: tuple[str, dict[str, Tally], float], case: str
) -> None:
    name, pooled, _ = family
    tally = pooled[case]
    if (name, case) in CONFOUNDED:
        # the report says the layout cannot tell this gradient from the cell lines
        assert tally.rate("untestable") + tally.rate("flagged") >= 0.95, dict(tally.outcomes)
        assert tally.rate("untestable") >= 0.9, dict(tally.outcomes)
    elif (name, case) in DETECTION_LIMIT:
        assert tally.rate("flagged") >= 0.90, dict(tally.outcomes)
        stronger = pooled[DETECTION_LIMIT[name, case]]
        assert stronger.rate("flagged") >= 0.95, dict(stronger.outcomes)
    else:
        assert tally.rate("flagged") >= 0.95, (name, case, dict(tally.outcomes))


def test_family_runs_within_its_budget(family: tuple[str, dict[str, Tally], float]) -> None:
    """The whole suite must run in < 10 min on 2 cores: each family's plates in < 100 s."""
    name, _, wall = family
    assert wall < 100, f"{name}: {wall:.0f} s"


def test_interleaved_family_is_the_shipped_layout() -> None:
    shipped = load_layout(ROOT / "config/layouts/mtt-96.toml")
    assert interleaved_layout().wells == shipped.wells


def test_confounded_axis_is_an_info_note_and_the_verdict_stands(settings) -> None:  # type: ignore[no-untyped-def]
    layout = LAYOUT_FAMILIES["row_blocks"]()
    sim = simulate_plate(layout, 41, Defects())
    result = analyze_plate([sim.read], layout, settings.qc)
    note = next(f for f in result.flags if f.code == "plate_gradient")
    assert note.severity == "info" and result.verdict == "pass"
    assert note.metrics["untestable"] is True and note.metrics["axis"] == "rows"
    assert note.metrics["confounded_with"] == "cell line"
    assert "untestable" in note.message and "cell line" in note.message
    row = result.qc["gradient"]["row"]
    assert row["tested"] is False and row["note"] == "untestable: confounded with cell line"
    assert result.qc["gradient"]["column"]["tested"] is True


def test_reported_gradient_p_is_the_plate_level_decision(settings) -> None:  # type: ignore[no-untyped-def]
    """The flag fires exactly when the family's adjusted p is below gradient_p (and the
    change is large enough): gradient_p means what it says at the plate level."""
    layout = interleaved_layout()
    qc = settings.qc
    seen = {True: 0, False: 0}
    for seed in range(60):
        defects = Defects(
            gradient=0.10 + 0.002 * seed, gradient_axis="cols" if seed % 2 else "rows"
        )
        result = analyze_plate([simulate_plate(layout, 7000 + seed, defects).read], layout, qc)
        numbers = result.qc["gradient"]
        fired = any(f.code == "plate_gradient" and f.severity == "warning" for f in result.flags)
        big = max(abs(numbers[a]["change"]) for a in ("row", "column")) >= qc.gradient_trend
        if not fired:
            assert numbers["p"] >= qc.gradient_p or not big
        else:
            assert numbers["p"] < qc.gradient_p
        alphas = [numbers[a]["alpha"] for a in ("row", "column")]
        assert math.isclose(sum(alphas), qc.gradient_p, rel_tol=1e-3)
        seen[fired] += 1
    assert seen[True] and seen[False]  # both sides were exercised


group_sizes = st.lists(st.integers(2, 9), min_size=2, max_size=8)


@settings(max_examples=60, deadline=None)
@given(
    sizes=group_sizes,
    shifts=st.lists(st.floats(-0.5, 0.5), min_size=8, max_size=8),
    seed=st.integers(0, 10_000),
)
def test_within_group_estimates_ignore_differences_between_groups(
    sizes: list[int], shifts: list[float], seed: int
) -> None:
    """Adding any level to a whole group (biology: another line, another dose) changes no
    position estimate and no p-value: only wells of one group are ever compared."""
    rng = np.random.default_rng(seed)
    group = np.repeat(np.arange(len(sizes)), sizes).astype(np.intp)
    n = len(group)
    covariates = rng.random((n, 3))
    sigma = np.full(n, 0.06)
    ratio = 1.0 + rng.normal(0, 0.06, n) + 0.1 * covariates[:, 0]
    shifted = ratio + np.asarray(shifts)[group % 8]
    a = within_group_test(ratio, group, sigma, covariates)
    b = within_group_test(shifted, group, sigma, covariates)
    np.testing.assert_allclose(a.estimate, b.estimate, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(a.p, b.p, rtol=1e-6, atol=1e-12)


@settings(max_examples=200, deadline=None)
@given(
    z=st.lists(st.floats(0.0, 12.0), min_size=1, max_size=4),
    alpha=st.floats(1e-4, 0.05),
)
def test_alpha_split_spends_exactly_alpha_and_favours_the_weaker_test(
    z: list[float], alpha: float
) -> None:
    shares = split_alpha(alpha, z)
    assert math.isclose(sum(shares), alpha, rel_tol=1e-9)
    assert all(s >= alpha * 0.25 / len(z) * (1 - 1e-9) for s in shares)
    for (za, sa), (zb, sb) in itertools.combinations(zip(z, shares, strict=True), 2):
        if za < zb - 1e-9:
            assert sa >= sb * (1 - 1e-9)  # the test the layout measures worse gets more
        elif zb < za - 1e-9:
            assert sb >= sa * (1 - 1e-9)


def test_plate_noise_is_recovered_despite_outlier_wells() -> None:
    rng = np.random.default_rng(3)
    group = np.repeat(np.arange(20), 4).astype(np.intp)
    values = 1.0 + rng.normal(0, 0.06, len(group))
    values[[3, 17, 40]] = [0.02, 1.9, 0.4]  # dead, doubled and halved wells
    estimate = multiplicative_sd(values, group, np.zeros(len(group)))
    assert 0.045 < estimate < 0.08


def test_heavy_noise_model_has_heavier_tails() -> None:
    layout = interleaved_layout()

    def excess_kurtosis(noise: str) -> float:
        ratios = []
        for seed in range(40):
            read = simulate_plate(layout, seed, noise=noise, jitter_truth=False).read
            untreated = read.values[:, [1, 10]].ravel()
            ratios += list(untreated / np.median(untreated) - 1)
        r = np.asarray(ratios)
        return float(np.mean((r - r.mean()) ** 4) / np.var(r) ** 2 - 3)

    assert excess_kurtosis("heavy") > excess_kurtosis("gaussian") + 0.5


def test_flagged_wells_and_numbers_are_carried(layout96, settings, references) -> None:  # type: ignore[no-untyped-def]
    sim = simulate_plate(layout96, 5, Defects(saturated=2, dead_wells=1))
    result = analyze_plate([sim.read], layout96, settings.qc, references=references)
    saturated = next(f for f in result.flags if f.code == "saturated_wells")
    assert set(saturated.wells) == set(sim.planted_wells[1:])
    assert saturated.severity == "critical" and "OVRFLW" in saturated.message
    variability = next(f for f in result.flags if f.code == "replicate_variability")
    assert sim.planted_wells[0] in variability.metrics["outliers"]
    assert result.verdict == "fail"


def test_resistant_line_without_response_is_info_only(
    layout96, settings, references, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    body = (
        (ROOT / "config/layouts/mtt-96.toml")
        .read_text()
        .replace('cell_line = "REH"', 'cell_line = "MOLT-4R"')
    )
    path = tmp_path / "resistant.toml"
    path.write_text(body)
    layout = load_layout(path)
    from tests.plate_sim import DEFAULT_TRUTH, Truth

    truth = {"MOLT-4R": Truth(b=1.0, c=100.0, e=1.0), "MOLT-4P": DEFAULT_TRUTH["MOLT-4P"]}
    sim = simulate_plate(layout, 11, truth=truth)
    result = analyze_plate([sim.read], layout, settings.qc, references=references)
    flag = next(f for f in result.flags if f.code == "no_dose_response")
    assert flag.severity == "info" and "resistant" in flag.message
    assert result.verdict == "pass"


def test_outer_ring_left_empty_turns_ring_test_into_a_note(
    settings, references, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    body = (ROOT / "config/layouts/mtt-96.toml").read_text()
    body += "\n[row.'A,H']\nrole = 'empty'\n[col.'1,12']\nrole = 'empty'\n"
    body += "[block.1x6.B1]\nrole = 'blank'\n[block.1x6.B12]\nrole = 'positive_control'\n"
    path = tmp_path / "ring_free.toml"
    path.write_text(body)
    layout = load_layout(path)
    sim = simulate_plate(layout, 3, Defects(edge=0.3))
    result = analyze_plate([sim.read], layout, settings.qc, references=references)
    assert result.qc["edge"]["tested"] is False
    assert "prevented by the layout" in result.qc["edge"]["note"]
    assert "edge_effect" not in [f.code for f in result.flags]


def test_swapped_blank_and_untreated_is_a_layout_mismatch(
    layout96, settings, references, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    body = (ROOT / "config/layouts/mtt-96.toml").read_text()
    body = body.replace('[col.1]\nrole = "blank"', '[col.1]\nrole = "untreated"')
    body = body.replace("[col.'2,11']\nrole = \"untreated\"", "[col.'2,11']\nrole = \"blank\"")
    assert body.count('role = "blank"') == 1 and body.count('role = "untreated"') == 1
    path = tmp_path / "swapped.toml"
    path.write_text(body)
    sim = simulate_plate(layout96, 4)  # plate seeded with the right layout
    result = analyze_plate([sim.read], load_layout(path), settings.qc, references=references)
    codes = {f.code: f.severity for f in result.flags}
    assert codes.get("layout_mismatch") == "critical"
    assert result.verdict == "fail"


def test_ezmtt_real_plate_analyses_sensibly(corpus: Path, settings, references) -> None:  # type: ignore[no-untyped-def]
    export = read_export(corpus / "doseresponse" / "ezmtt_MTT_96.csv")
    layout = load_layout(ROOT / "examples" / "ezmtt.layout.toml")
    result = analyze_plate(export.plates[0].reads, layout, settings.qc, references=references)
    assert result.qc["reference_wavelength_nm"] == 660  # 562 − 660 nm
    missing = [f for f in result.flags if f.code == "missing_controls"]
    assert missing and "no blank" in missing[0].message
    curves = {c.compound: c for c in result.curves}
    drug_a, drug_b = curves["drug_a"].fit, curves["drug_b"].fit
    # drug_a kills at 10 µM only (column 6): the IC50 lies between 1 and 10 µM
    assert drug_a.response == "yes" and drug_a.ic50_qualifier == "="
    assert drug_a.ic50 is not None and 1000 < drug_a.ic50 < 10000
    assert drug_a.ic50_ci == (1000.0, 10000.0)
    # drug_b shows no effect up to 10 µM
    assert drug_b.response == "none" and drug_b.ic50_qualifier == ">" and drug_b.ic50 == 10000
    assert any(f.code == "no_dose_response" for f in result.flags)
    assert result.verdict == "warn"


def test_untreated_wells_enter_the_fit_at_dose_zero_even_with_a_conc_key(
    settings, references, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """A layout may give untreated wells a concentration key (e.g. a column-wide conc): they
    are still the 0-dose control of the curve."""
    body = (
        (ROOT / "config/layouts/mtt-96.toml")
        .read_text()
        .replace(
            "[col.'2,11']\nrole = \"untreated\"",
            "[col.'2,11']\nrole = \"untreated\"\nconc_IU_mL = 5",
        )
    )
    path = tmp_path / "untreated_with_conc.toml"
    path.write_text(body)
    layout = load_layout(path)
    assert layout.wells["A2"].role == "untreated" and layout.wells["A2"].conc == 5
    sim = simulate_plate(layout, 12)
    result = analyze_plate([sim.read], layout, settings.qc, references=references)
    for curve in result.curves:
        untreated = [w for w in curve.wells if layout.wells[w].role == "untreated"]
        assert untreated and float(curve.doses.max()) == 10.0  # top dose of the series, not 5
        assert int((curve.doses == 0).sum()) == len(untreated)


def test_ring_of_untreated_wells_makes_the_edge_test_an_info_note(settings) -> None:  # type: ignore[no-untyped-def]
    """Untreated wells in the whole outer ring, the dose series inside: an edge effect cannot
    be told from the dose response, and the report says so instead of testing it."""
    from analysis.layout import Layout, WellSpec
    from datamodel import well_name

    doses = [10.0, 5.0, 2.5, 1.25, 0.625, 0.3]
    wells = {}
    for r in range(8):
        for c in range(12):
            ring = r in (0, 7) or c in (0, 11)
            wells[well_name(r, c)] = (
                WellSpec(role="untreated", cell_line="REH")
                if ring
                else WellSpec(
                    role="treated", compound="asparaginase", conc=doses[r - 1], cell_line="REH"
                )
            )
    layout = Layout(wells=wells, source="ring-untreated")
    sim = simulate_plate(layout, 5, Defects(edge=0.2), jitter_truth=False)
    result = analyze_plate([sim.read], layout, settings.qc)
    note = next(f for f in result.flags if f.code == "edge_effect")
    assert note.severity == "info" and note.metrics["untestable"] is True
    assert note.metrics["confounded_with"] == "dose"
    assert result.qc["edge"]["tested"] is False
    assert "untestable" in result.qc["edge"]["note"]
