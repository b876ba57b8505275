"""Four-parameter log-logistic (drc ``LL.4``) dose-response fits.

    f(x) = c + (d - c) / (1 + exp(b (ln x - ln e)))

fitted as drc does (SCIENCE.md §3): ordinary least squares on the individual observations,
parametrised in ``log e``; started from many points (a variable-projection grid over
``(b, log e)`` in which ``c, d`` are solved exactly, plus drc's own self-starter) and polished
by Levenberg–Marquardt; standard errors from the observed Hessian of the residual sum of
squares, ``vcov = 2 s² H⁻¹``; drc's fls and delta 95 % CIs for the IC50 on ``t(n − 4)``; an
F-test against a flat line for the missing-response call. When the optimum runs off (the
data do not pin all four parameters), the curve is refitted inside plausible bounds.

:func:`fit_ll4_many` fits many curves at once (stacked and vectorised, each curve still its
own problem: :mod:`analysis.ll4_batch`, :mod:`analysis.ll4_solver`); :func:`fit_ll4` is one
curve. The model is in :mod:`analysis.ll4`, what a fit reports in :mod:`analysis.ll4_result`.
Pure functions: no I/O, and no ``scipy.optimize`` on the import path (the solver is numpy).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy.typing as npt

from analysis import ll4_batch
from analysis.ll4 import (
    ZERO_LOG,
    Array,
    Mask,
    band_of,
    hessian_rss,
    jacobian,
    ll4,
    log_dose,
    residuals,
    t_quantile,
)
from analysis.ll4_result import LL4Fit, Qualifier, Response, ResponseRules, classify

__all__ = [
    "ZERO_LOG",
    "Array",
    "LL4Fit",
    "Mask",
    "Qualifier",
    "Response",
    "ResponseRules",
    "band_of",
    "classify",
    "fit_ll4",
    "fit_ll4_many",
    "hessian_rss",
    "jacobian",
    "ll4",
    "log_dose",
    "residuals",
    "t_quantile",
]


def fit_ll4(
    dose: npt.ArrayLike,
    response: npt.ArrayLike,
    *,
    control: float | None = None,
    rules: ResponseRules | None = None,
    level: float = 0.95,
    n_starts: int = 1,
) -> LL4Fit:
    """Fit LL.4 to individual observations (``dose`` ≥ 0; 0 is the untreated control).

    ``control`` is the response that counts as 100 % (100 for % of untreated data); when
    left out it is the mean response at dose 0, or the fitted upper plateau.
    """
    return fit_ll4_many(
        [(dose, response)], controls=[control], rules=rules, level=level, n_starts=n_starts
    )[0]


def fit_ll4_many(
    curves: Iterable[tuple[npt.ArrayLike, npt.ArrayLike]],
    *,
    controls: Sequence[float | None] | None = None,
    rules: ResponseRules | None = None,
    level: float = 0.95,
    n_starts: int = 1,
) -> list[LL4Fit]:
    """:func:`fit_ll4` of every ``(dose, response)`` curve, in order, the numerics stacked.

    A curve's result is the one :func:`fit_ll4` gives it alone, to rounding (each curve is
    its own least-squares problem; the batch only shares numpy calls). ``controls`` gives each
    curve's 100 % (None: the mean at dose 0, or the fitted upper plateau). Many curves at
    once are far faster than one at a time: a plate's curves, a table, a timecourse.
    """
    rules = rules or ResponseRules()
    prepared = [
        ll4_batch.prepare(dose, response, None if controls is None else controls[i])
        for i, (dose, response) in enumerate(curves)
    ]
    ll4_batch.fit_prepared(prepared, rules, level, n_starts)
    return [c.fit for c in prepared]
