"""What an LL.4 fit reports: :class:`LL4Fit`, and the response call and IC50 rules.

:func:`classify` turns a fitted curve into the response call (``yes``/``partial``/``none``,
SCIENCE.md §3), the never-extrapolated IC50 with its qualifier and CI (drc's fls interval,
or the bracketing doses of a bounded fit), and the absolute IC50.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from analysis.ll4 import Array, band_of, ll4, t_quantile

Response = Literal["yes", "partial", "none"]
Qualifier = Literal["=", ">", "<"]

B_MAX = 20.0  # the slope bound of the bounded refit
Y_LIMIT = 1e100  # |response| beyond this overflows the sums of squares


@dataclass(frozen=True)
class ResponseRules:
    """When a curve counts as a dose response (SCIENCE.md §3, judgement defaults)."""

    p_threshold: float = 0.05  # F-test against a flat line
    min_effect: float = 0.25  # below this effect at the top dose: no response
    partial_below: float = 0.50  # significant, but the kill stays below this: partial


@dataclass
class LL4Fit:
    """The result of one LL.4 fit, with everything a report or a QC rule needs."""

    converged: bool
    n: int
    b: float = math.nan
    c: float = math.nan
    d: float = math.nan
    e: float = math.nan
    se: dict[str, float] = field(default_factory=dict)
    vcov: Array | None = None  # (b, c, d, e)
    rss: float = math.nan
    df: int = 0
    rse: float = math.nan
    loglik: float = math.nan
    no_effect_f: float = math.nan
    no_effect_p: float = math.nan
    no_effect_chi2: float = math.nan
    ic50: float | None = None
    ic50_ci: tuple[float, float] | None = None
    ic50_qualifier: Qualifier = "="
    absolute_ic50: float | None = None
    absolute_ic50_qualifier: Qualifier | None = None
    control: float = math.nan
    top_dose_effect: float = math.nan  # fraction of control lost at the highest dose
    max_effect: float = math.nan  # largest fraction of control lost over the tested doses
    response: Response = "none"
    dose_min: float = math.nan  # lowest positive dose
    dose_max: float = math.nan
    message: str = ""
    bounded: bool = False  # refitted inside bounds: the data did not pin all parameters
    ic50_ci_method: Literal["fls", "bracket"] | None = None
    ic50_ci_delta: tuple[float, float] | None = None  # drc's interval = "delta" (may be < 0)
    flat_level: float = math.nan  # the flat model's level (mean response): used when "none"

    @property
    def slope_at_bound(self) -> bool:
        """The slope sits on the bounded fit's limit: it is a bound, not a finding."""
        return self.bounded and math.isfinite(self.b) and abs(self.b) >= 0.999 * B_MAX

    def predict(self, dose: npt.ArrayLike) -> Array:
        return ll4(np.asarray(dose, dtype=float), self.b, self.c, self.d, self.e)

    def band(self, dose: npt.ArrayLike, level: float = 0.95) -> tuple[Array, Array]:
        """Pointwise confidence band of the fitted mean (delta method on t(n − 4))."""
        x = np.asarray(dose, dtype=float)
        if self.vcov is None or not math.isfinite(self.e) or self.e <= 0:
            mean = self.predict(x)
            return mean, mean
        return band_of((self.b, self.c, self.d, self.e), self.vcov, self.df, x, level)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of DESIGN.md §5.1 (``fit --json``), plus a few extras."""

        def num(value: float | None) -> float | None:
            if value is None or not math.isfinite(value):
                return None
            return float(value)

        return {
            "model": "LL.4",
            "converged": self.converged,
            "n": self.n,
            "b": num(self.b),
            "c": num(self.c),
            "d": num(self.d),
            "e": num(self.e),
            "se": {k: num(v) for k, v in self.se.items()},
            "ic50": num(self.ic50),
            "ic50_ci": [num(v) for v in self.ic50_ci] if self.ic50_ci else None,
            "ic50_qualifier": self.ic50_qualifier,
            "ic50_ci_method": self.ic50_ci_method,
            "ic50_ci_delta": [num(v) for v in self.ic50_ci_delta] if self.ic50_ci_delta else None,
            "absolute_ic50": num(self.absolute_ic50),
            "absolute_ic50_qualifier": self.absolute_ic50_qualifier,
            "rse": num(self.rse),
            "df": self.df,
            "loglik": num(self.loglik),
            "no_effect_p": num(self.no_effect_p),
            "no_effect_f": num(self.no_effect_f),
            "no_effect_chi2": num(self.no_effect_chi2),
            "top_dose_effect": num(self.top_dose_effect),
            "max_effect": num(self.max_effect),
            "response": self.response,
            "dose_range": [num(self.dose_min), num(self.dose_max)],
            "bounded": self.bounded,
            "slope_at_bound": self.slope_at_bound,
            "flat_level": num(self.flat_level),
            "vcov": (
                [[num(v) for v in row] for row in self.vcov.tolist()]
                if self.vcov is not None and np.all(np.isfinite(self.vcov))
                else None
            ),
            "message": self.message,
        }


def _absolute_ic50(b: float, c: float, d: float, e: float, level: float) -> float | None:
    """Dose at which the curve crosses ``level``; None when it never does."""
    if d == c or b == 0 or not (math.isfinite(e) and e > 0):
        return None
    g = (level - c) / (d - c)
    if not 0.0 < g < 1.0:
        return None
    exponent = math.log(e) + math.log(1.0 / g - 1.0) / b
    return math.exp(exponent) if exponent < 700 else math.inf


def _exp(value: float) -> float:
    """exp that saturates at inf instead of raising (a CI bound of an unpinned IC50)."""
    return math.exp(value) if value < 709.0 else math.inf


def classify_unfitted(
    fit: LL4Fit, x: npt.NDArray[np.float64], y: Array, control: float | None
) -> LL4Fit:
    """A curve that could not be fitted claims nothing: no IC50, no response call figures."""
    fit.se = dict.fromkeys("bcde", math.nan)
    fit.response = "none"
    fit.converged = False
    fit.ic50, fit.ic50_ci, fit.ic50_qualifier = None, None, "="
    if control is None and (x <= 0).any():
        control = float(y[x <= 0].mean())
    fit.control = math.nan if control is None else control
    if len(y) and float(np.max(np.abs(y))) <= Y_LIMIT:
        fit.flat_level = float(np.mean(y))
    return fit


def classify(fit: LL4Fit, rules: ResponseRules, level: float, x: Array) -> None:
    """Response call, qualifiers and the never-extrapolated IC50 (SCIENCE.md §3)."""
    doses = np.unique(x[x > 0])
    control = fit.control
    fitted = fit.predict(doses)
    if control and math.isfinite(control) and control != 0:
        fit.top_dose_effect = float(1.0 - fitted[-1] / control)
        fit.max_effect = float(np.max(1.0 - fitted / control))
    effect = abs(fit.top_dose_effect) if math.isfinite(fit.top_dose_effect) else 0.0
    significant = math.isfinite(fit.no_effect_p) and fit.no_effect_p < rules.p_threshold
    if not fit.converged or not significant or effect < rules.min_effect:
        fit.response = "none"
    elif fit.max_effect < rules.partial_below:
        fit.response = "partial"
    else:
        fit.response = "yes"

    lo, hi = fit.dose_min, fit.dose_max
    if fit.response == "none" or not math.isfinite(fit.e):
        fit.ic50, fit.ic50_qualifier, fit.ic50_ci = hi, ">", None
    elif fit.e > hi:
        fit.ic50, fit.ic50_qualifier, fit.ic50_ci = hi, ">", None
    elif fit.e < lo:
        fit.ic50, fit.ic50_qualifier, fit.ic50_ci = lo, "<", None
    else:
        fit.ic50, fit.ic50_qualifier = fit.e, "="
        se_e = fit.se.get("e", math.nan)
        if fit.bounded:
            # Only bracketed: the tested doses on either side of the half-way response.
            mid = (fit.c + fit.d) / 2
            side = (fitted > mid) if fit.b > 0 else (fitted < mid)
            before, after = doses[side], doses[~side]
            if len(before) and len(after):
                fit.ic50_ci = (float(before.max()), float(after.min()))
                fit.ic50_ci_method = "bracket"
        elif math.isfinite(se_e) and fit.df > 0:
            # drc interval = "fls": the delta interval of log e, back-transformed, so the
            # bounds are positive and as asymmetric as the data. drc's "delta" on e kept.
            t = t_quantile(fit.df, level)
            se_log_e = se_e / fit.e
            fit.ic50_ci = (fit.e * math.exp(-t * se_log_e), fit.e * _exp(t * se_log_e))
            fit.ic50_ci_method = "fls"
            fit.ic50_ci_delta = (fit.e - t * se_e, fit.e + t * se_e)

    if math.isfinite(control):
        absolute = _absolute_ic50(fit.b, fit.c, fit.d, fit.e, 0.5 * control)
        if absolute is None:
            fit.absolute_ic50, fit.absolute_ic50_qualifier = None, None
        elif absolute > hi:
            fit.absolute_ic50, fit.absolute_ic50_qualifier = hi, ">"
        elif absolute < lo:
            fit.absolute_ic50, fit.absolute_ic50_qualifier = lo, "<"
        else:
            fit.absolute_ic50, fit.absolute_ic50_qualifier = absolute, "="
