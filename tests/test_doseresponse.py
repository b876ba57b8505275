"""LL.4 fits against drc's published numbers (SCIENCE.md §3) and simulated truth."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analysis.doseresponse import LL4Fit, ResponseRules, fit_ll4, ll4
from analysis.jointfit import fit_ll4_joint

RYEGRASS = {"b": 2.98222, "c": 0.48141, "d": 7.79296, "e": 3.05795}
RYEGRASS_SE = {"b": 0.46506, "c": 0.21219, "d": 0.18857, "e": 0.18573}


@pytest.fixture(scope="module")
def ryegrass(corpus) -> LL4Fit:  # type: ignore[no-untyped-def]
    data = pd.read_csv(corpus / "doseresponse" / "drc_ryegrass.csv")
    return fit_ll4(data["conc"], data["rootl"])


def test_ryegrass_parameters_match_drc(ryegrass: LL4Fit) -> None:
    for name, value in RYEGRASS.items():
        assert getattr(ryegrass, name) == pytest.approx(value, rel=1e-4), name


def test_ryegrass_standard_errors_match_drc(ryegrass: LL4Fit) -> None:
    for name, value in RYEGRASS_SE.items():
        assert ryegrass.se[name] == pytest.approx(value, rel=1e-3), name


def test_ryegrass_ed50_delta_ci_rse_loglik_and_no_effect(ryegrass: LL4Fit) -> None:
    assert ryegrass.ic50_qualifier == "="
    assert ryegrass.ic50_ci_delta is not None  # drc ED(ryegrass.m1, 50, interval = "delta")
    assert ryegrass.ic50_ci_delta[0] == pytest.approx(2.67053, rel=1e-4)
    assert ryegrass.ic50_ci_delta[1] == pytest.approx(3.44538, rel=1e-4)
    assert ryegrass.df == 20
    assert ryegrass.rse == pytest.approx(0.5196256, rel=1e-6)
    assert ryegrass.loglik == pytest.approx(-16.15514, rel=1e-5)
    assert ryegrass.no_effect_chi2 == pytest.approx(91.87776, rel=1e-5)
    assert ryegrass.no_effect_p < 1e-6
    assert ryegrass.response == "yes"


def test_s_alba_joint_fit_matches_drc_ed50(corpus) -> None:  # type: ignore[no-untyped-def]
    data = pd.read_csv(corpus / "doseresponse" / "drc_S.alba.csv")
    fits = fit_ll4_joint(data["Dose"], data["DryMatter"], data["Herbicide"], shared=("c", "d"))
    # drc stops slightly early: SCIENCE allows 2e-3 relative
    assert fits["Bentazone"].e == pytest.approx(28.6324, rel=2e-3)
    assert fits["Glyphosate"].e == pytest.approx(66.8905, rel=2e-3)
    assert fits["Bentazone"].c == fits["Glyphosate"].c
    assert fits["Bentazone"].d == fits["Glyphosate"].d
    assert fits["Bentazone"].se["e"] == pytest.approx(2.0381, rel=2e-2)
    assert fits["Glyphosate"].se["e"] == pytest.approx(5.9688, rel=2e-2)


def test_flat_data_has_no_response_and_no_point_estimate() -> None:
    rng = np.random.default_rng(1)
    dose = np.repeat([0, 0.01, 0.1, 1, 10, 100], 4)
    fit = fit_ll4(dose, 100 + rng.normal(0, 5, dose.size), control=100)
    assert fit.response == "none"
    assert fit.ic50_qualifier == ">"
    assert fit.ic50 == 100
    assert fit.ic50_ci is None


def test_ic50_above_tested_range_is_qualified_not_extrapolated() -> None:
    rng = np.random.default_rng(2)
    dose = np.repeat([0, 0.001, 0.01, 0.1, 1, 3], 4)
    truth = ll4(dose.astype(float), 1.5, 0.0, 100.0, 20.0)  # IC50 20, top dose 3
    fit = fit_ll4(dose, truth + rng.normal(0, 2, dose.size), control=100)
    assert fit.ic50_qualifier == ">"
    assert fit.ic50 == 3
    assert fit.ic50_ci is None


def test_partial_response_reports_absolute_ic50_not_reached() -> None:
    rng = np.random.default_rng(3)
    dose = np.repeat([0, 0.01, 0.1, 1, 10, 100], 4).astype(float)
    y = ll4(dose, 1.2, 65.0, 100.0, 1.0) + rng.normal(0, 2, dose.size)
    fit = fit_ll4(dose, y, control=100)
    assert fit.response == "partial"
    assert fit.absolute_ic50 is None  # lower plateau 65 % never reaches 50 %
    assert fit.ic50 == pytest.approx(1.0, rel=0.5)


def test_step_response_gives_bounded_fit_and_bracket() -> None:
    dose = np.repeat([0, 1, 10, 100, 1000, 10000], 4).astype(float)
    y = np.where(dose >= 10000, 2.0, 100.0) + np.tile([1.0, -1.0, 0.5, -0.5], 6)
    fit = fit_ll4(dose, y, control=100)
    assert fit.bounded
    assert fit.response == "yes"
    assert fit.ic50_qualifier == "="
    assert fit.ic50_ci == (1000.0, 10000.0)
    assert fit.ic50_ci_method == "bracket"
    assert abs(fit.c) < 50 and abs(fit.d - 100) < 5


def test_too_few_points_is_not_a_crash() -> None:
    fit = fit_ll4([0, 1, 2], [100, 50, 10])
    assert not fit.converged
    assert fit.response == "none"


def test_rising_curve_fits_with_negative_slope() -> None:
    dose = np.repeat([0.1, 0.3, 1, 3, 10, 30], 3).astype(float)
    y = ll4(dose, -2.0, 10.0, 90.0, 2.0)
    fit = fit_ll4(dose, y)
    # (b, c, d) and (-b, d, c) are the same curve; reported in drc's form: c < d, b < 0 rising
    assert (fit.b, fit.c, fit.d, fit.e) == pytest.approx((-2.0, 10.0, 90.0, 2.0), rel=1e-4)


def test_falling_curve_is_reported_with_positive_slope_whatever_the_start() -> None:
    rng = np.random.default_rng(5)
    for seed_shift in range(20):
        dose = np.repeat([0, 1e-4, 1e-3, 1e-2, 1e-1, 1, 10], 4).astype(float)
        y = ll4(dose, 1.5, 3.0, 100.0, 0.004 * (1 + seed_shift / 10)) + rng.normal(0, 4, dose.size)
        fit = fit_ll4(dose, y, control=100)
        assert fit.b > 0 and fit.c < fit.d


def test_ryegrass_ic50_ci_is_drcs_log_scale_interval(ryegrass: LL4Fit) -> None:
    """The reported CI is drc's "fls": the delta interval of log e, back-transformed.

    drc prints it for the log-e parametrisation (LL2.4): ED50 log e 1.117746, 95 % CI
    [0.991051, 1.244442] (drc_reference_outputs.txt), i.e. exp → [2.69406, 3.47096].
    """
    assert ryegrass.ic50_ci_method == "fls"
    assert ryegrass.ic50_ci is not None
    assert ryegrass.ic50_ci[0] == pytest.approx(math.exp(0.991051), rel=1e-4)
    assert ryegrass.ic50_ci[1] == pytest.approx(math.exp(1.244442), rel=1e-4)


def test_simulated_curves_recover_truth_and_ci_covers() -> None:
    """300 simulated curves of known IC50: the (fls) CI should cover ~95 % of them."""
    rng = np.random.default_rng(42)
    dose = np.repeat(np.r_[0, 10.0 ** np.arange(-3, 2.5, 0.5)], 3)
    covered = 0
    errors = []
    n = 300
    for _ in range(n):
        e = 10 ** rng.uniform(-2, 1)
        y = ll4(dose, 1.5, 5.0, 100.0, e) + rng.normal(0, 5, dose.size)
        fit = fit_ll4(dose, y, control=100)
        assert fit.ic50_qualifier == "=" and fit.ic50_ci is not None
        covered += fit.ic50_ci[0] <= e <= fit.ic50_ci[1]
        errors.append(math.log(fit.e / e))
    assert 0.91 <= covered / n <= 0.99
    assert abs(float(np.median(errors))) < 0.05


def test_response_rules_defaults_agree_with_config_defaults(settings) -> None:  # type: ignore[no-untyped-def]
    rules = ResponseRules()
    assert settings.qc.response_p == rules.p_threshold
    assert settings.qc.min_effect == rules.min_effect
    assert settings.qc.partial_below == rules.partial_below
