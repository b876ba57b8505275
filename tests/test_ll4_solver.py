"""The numpy LL.4 solver against scipy's (MINPACK and trust-region-reflective), batch
invariance, and properties of the fit on arbitrary input."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.doseresponse import LL4Fit, fit_ll4, fit_ll4_many, jacobian, log_dose, residuals
from analysis.ll4_batch import bounds
from analysis.ll4_solver import Stack
from bench.screen import ScreenCurve, make_curve, make_screen
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def screen() -> list[tuple[ScreenCurve, LL4Fit]]:
    curves = make_screen(600, 5)
    fits = fit_ll4_many([(c.dose, c.response) for c in curves])
    return list(zip(curves, fits, strict=True))


def _params(fit: LL4Fit) -> np.ndarray:
    return np.array([fit.b, fit.c, fit.d, math.log(fit.e)])


def _res(v: np.ndarray, lx: np.ndarray, zero: np.ndarray, y: np.ndarray) -> np.ndarray:
    return residuals(lx, zero, y, v)


def _jac(v: np.ndarray, lx: np.ndarray, zero: np.ndarray, y: np.ndarray) -> np.ndarray:
    return jacobian(lx, zero, v)


def test_unbounded_fits_are_minpack_optima(screen: list[tuple[ScreenCurve, LL4Fit]]) -> None:
    """MINPACK (scipy.optimize.leastsq) started at our optimum finds nothing better and
    barely moves (by less than a hundredth of a standard error; in flat directions both
    stop wherever the RSS stops changing in its 12th digit)."""
    from scipy import optimize

    checked = 0
    for curve, fit in screen:
        if fit.bounded or not fit.converged or curve.shape not in ("sigmoid", "partial", "rising"):
            continue
        lx, zero = log_dose(curve.dose)
        y = curve.response
        p = _params(fit)
        q, *_ = optimize.leastsq(
            _res,
            p,
            args=(lx, zero, y),
            Dfun=_jac,
            full_output=True,
            xtol=1e-12,
            ftol=1e-14,
        )
        rss = float(np.sum(_res(q, lx, zero, y) ** 2))
        assert rss >= fit.rss * (1 - 1e-9)
        se = np.array([fit.se["b"], fit.se["c"], fit.se["d"], fit.se["e"] / fit.e])
        assert np.all(np.abs(q - p) <= 0.01 * se + 1e-9 * np.abs(p)), (q - p) / se
        checked += 1
    assert checked > 150


def test_bounded_fits_are_trust_region_reflective_optima(
    screen: list[tuple[ScreenCurve, LL4Fit]],
) -> None:
    """scipy's bounded least_squares (TRF, as the old fitter used) started at our bounded
    optimum cannot lower the RSS: ours is a stationary point of the box problem."""
    from scipy import optimize

    checked = 0
    for curve, fit in screen:
        if not fit.bounded or not fit.converged:
            continue
        lx, zero = log_dose(curve.dose)
        y = curve.response
        lower, upper = bounds(Stack.of([(lx, y)]))
        p = np.clip(_params(fit), lower[0], upper[0])
        res = optimize.least_squares(
            _res,
            np.clip(p, lower[0] + 1e-12, upper[0] - 1e-12),
            jac=_jac,
            args=(lx, zero, y),
            bounds=(lower[0], upper[0]),
            method="trf",
            xtol=1e-12,
            ftol=1e-14,
        )
        assert float(np.sum(res.fun**2)) >= fit.rss * (1 - 1e-7)
        checked += 1
    assert checked > 100


def test_a_curve_fits_the_same_alone_and_in_any_batch() -> None:
    """Each curve is its own problem: the batch changes only the rounding (padding, the
    order of sums), which in a valley the data leave flat can move the point a little
    along the valley, never the call or more than a thousandth of a standard error."""
    curves = [make_curve(3, i, shape) for i, shape in enumerate(["flat", "step", "steep"] * 12)]
    alone = [fit_ll4(c.dose, c.response) for c in curves]
    order = np.random.default_rng(0).permutation(len(curves))
    batched = fit_ll4_many([(curves[i].dose, curves[i].response) for i in order])
    for k, i in enumerate(order):
        a, b = alone[i], batched[k]
        assert (a.response, a.ic50_qualifier, a.bounded, a.converged) == (
            b.response, b.ic50_qualifier, b.bounded, b.converged,
        )  # fmt: skip
        assert b.rss == pytest.approx(a.rss, rel=1e-9)
        assert b.no_effect_p == pytest.approx(a.no_effect_p, rel=1e-6, abs=1e-300)
        for name in "bcd":
            se = a.se[name] if math.isfinite(a.se[name]) else 1.0
            assert abs(getattr(a, name) - getattr(b, name)) <= 1e-3 * se + 1e-9
        assert b.e == pytest.approx(a.e, rel=1e-3 * max(a.se["e"] / a.e, 1e-3))


def test_no_scipy_optimize_on_the_import_path() -> None:
    """issue 7's start-up budget: a plain fit does not import scipy.optimize (~0.15 s)."""
    code = (
        "import sys, numpy as np\n"
        "from analysis.doseresponse import fit_ll4\n"
        "fit_ll4(np.repeat([0, 0.1, 1, 10, 100], 3), np.repeat([100, 90, 50, 10, 5], 3) + 0.0)\n"
        "print('scipy.optimize' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


def test_many_of_nothing_and_bad_lengths() -> None:
    assert fit_ll4_many([]) == []
    with pytest.raises(ValueError, match="differ in length"):
        fit_ll4_many([([0, 1, 2], [1.0, 2.0])])


@settings(max_examples=60, deadline=None)
@given(
    doses=st.integers(3, 14),
    reps=st.integers(1, 4),
    values=st.lists(
        st.one_of(
            st.floats(-1e6, 1e6, allow_nan=False),
            st.just(0.0),
            st.just(math.nan),
            st.just(math.inf),
        ),
        min_size=3,
        max_size=60,
    ),
    controls=st.integers(0, 4),
    scale=st.sampled_from([1e-6, 1.0, 1e3]),
)
def test_any_curve_fits_without_raising_and_claims_consistently(
    doses: int, reps: int, values: list[float], controls: int, scale: float
) -> None:
    dose = np.r_[np.zeros(controls), np.repeat(scale * 2.0 ** np.arange(doses), reps)]
    y = np.resize(np.asarray(values, dtype=float), dose.size)
    fit = fit_ll4(dose, y)
    record = fit.to_dict()
    json.dumps(record, allow_nan=False)
    assert fit.response in ("yes", "partial", "none")
    if not fit.converged:
        assert fit.response == "none"
    elif fit.response == "none":
        assert fit.ic50_qualifier == ">" and fit.ic50 == fit.dose_max and fit.ic50_ci is None
    if fit.ic50 is not None and fit.ic50_qualifier == "=":
        assert fit.dose_min <= fit.ic50 <= fit.dose_max
    if fit.bounded and math.isfinite(fit.b):
        assert abs(fit.b) <= 20.0 * (1 + 1e-9)
    if fit.converged:
        assert fit.rss >= 0 and fit.c <= fit.d
