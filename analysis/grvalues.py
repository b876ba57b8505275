"""Growth-rate inhibition (GR) values and their dose-response metrics (SCIENCE.md §8).

Hafner, Niepel, Chung & Sorger, Nat Methods 2016; the formulas of GRmetrics'
``R/GRcalculate.R`` and ``R/GRlogisticFit.R``:

* with a time-zero read x₀: GR(c) = 2^(log₂(x_c/x₀) / log₂(x_ctrl/x₀)) − 1;
* without it, with a known doubling time T_d over assay time T:
  GR(c) = 2^(1 + log₂(x_c/x_ctrl) / (T/T_d)) − 1.

GR is 1 for untreated growth, 0 for full cytostasis, −1 when every cell died; a well whose
blank-corrected signal is ≤ 0 has lost every cell and reads −1 (the limit of both formulas).
GR curves are fitted with LL.3u, GR(c) = GR∞ + (1 − GR∞) / (1 + (c / GEC50)^h), inside
GR∞ ∈ [−1, 1], h ∈ [0.1, 5], GEC50 ∈ [10⁻², 10²] × the tested doses, and compared with a
flat line by an F-test (2 and n − 3 df); a flat curve has no GEC50 or slope. GR50 =
GEC50 · ((1 − GR∞)/(0.5 − GR∞) − 1)^(1/h), reported like an IC50: never extrapolated, ">max"
or "<min" outside the tested doses and ">max" when the curve never falls to 0.5. GRmax is
the lowest mean GR of the two highest doses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy import optimize, special

from analysis.model import rounded

Array = npt.NDArray[np.float64]
Qualifier = Literal["=", ">", "<"]

H_BOUNDS = (0.1, 5.0)
GEC50_SPAN = 1e2  # GEC50 within [lowest dose / 100, highest dose × 100]
_H_GRID = np.array([0.1, 0.25, 0.5, 0.8, 1.2, 1.8, 2.7, 4.0, 5.0])
_LG_STEPS = 33


def gr_from_time_zero(x: npt.ArrayLike, x0: float, x_ctrl: float) -> Array:
    """GR values of signals ``x`` against the time-zero signal and the untreated control."""
    xs = np.asarray(x, dtype=float)
    growth = math.log2(x_ctrl / x0)
    with np.errstate(divide="ignore", invalid="ignore"):
        gr = np.exp2(np.log2(xs / x0) / growth) - 1.0
    return np.asarray(np.where(np.isfinite(xs) & (xs <= 0), -1.0, gr), dtype=float)


def gr_from_doubling_time(
    x: npt.ArrayLike, x_ctrl: float, hours: float, doubling_time_h: float
) -> Array:
    """GR values without a time-zero read, from the control's known doubling time."""
    xs = np.asarray(x, dtype=float)
    divisions = hours / doubling_time_h
    with np.errstate(divide="ignore", invalid="ignore"):
        gr = np.exp2(1.0 + np.log2(xs / x_ctrl) / divisions) - 1.0
    return np.asarray(np.where(np.isfinite(xs) & (xs <= 0), -1.0, gr), dtype=float)


def ll3u(dose: Array, gr_inf: float, gec50: float, h: float) -> Array:
    """GR∞ + (1 − GR∞) / (1 + (c / GEC50)^h); dose 0 gives 1."""
    with np.errstate(divide="ignore", over="ignore"):
        ratio = np.where(dose > 0, np.power(dose / gec50, h), 0.0)
    return np.asarray(gr_inf + (1.0 - gr_inf) / (1.0 + ratio), dtype=float)


@dataclass
class GRFit:
    """One GR curve: the LL.3u fit (when it beats a flat line), GR50 and GRmax."""

    n: int
    fitted: bool  # the data allowed a fit (enough wells and doses)
    response: Literal["yes", "none"] = "none"  # "yes": the sigmoid beats a flat line
    gr_inf: float = math.nan
    gec50: float = math.nan
    h: float = math.nan
    p: float = math.nan  # F-test of the sigmoid against a flat line
    flat_level: float = math.nan  # mean GR (what a flat curve is)
    gr50: float | None = None
    gr50_qualifier: Qualifier | None = None
    gr_max: float = math.nan
    dose_min: float = math.nan
    dose_max: float = math.nan
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        flat = self.response == "none"
        return {
            "model": "LL.3u",
            "n": self.n,
            "fitted": self.fitted,
            "response": self.response,
            "gr_inf": rounded(self.flat_level if flat else self.gr_inf),
            "gec50": None if flat else rounded(self.gec50, 8),
            "h": None if flat else rounded(self.h),
            "p": rounded(self.p, 8),
            "gr50": rounded(self.gr50, 8),
            "gr50_qualifier": self.gr50_qualifier,
            "gr_max": rounded(self.gr_max),
            "dose_range": [rounded(self.dose_min, 8), rounded(self.dose_max, 8)],
            "message": self.message,
        }


def _grid_start(lx: Array, y: Array, lg_bounds: tuple[float, float]) -> tuple[float, float, float]:
    """Best (GR∞, ln GEC50, h) on a grid: for fixed (GEC50, h) GR∞ is a linear fit."""
    lgs = np.linspace(lg_bounds[0], lg_bounds[1], _LG_STEPS)
    z = np.clip(_H_GRID[:, None, None] * (lx[None, None, :] - lgs[None, :, None]), -700, 700)
    s = special.expit(-z)  # 1 / (1 + (c/G)^h); shape (h, lg, n)
    u = 1.0 - s
    denom = np.sum(u * u, axis=2)
    gr_inf = np.clip(np.sum(u * (y - s), axis=2) / np.where(denom > 0, denom, np.nan), -1, 1)
    resid = y - (gr_inf[..., None] * u + s)
    rss = np.where(np.isfinite(gr_inf), np.sum(resid * resid, axis=2), np.inf)
    i, j = np.unravel_index(int(np.argmin(rss)), rss.shape)
    return float(gr_inf[i, j]), float(lgs[j]), float(_H_GRID[i])


def fit_gr(dose: npt.ArrayLike, gr: npt.ArrayLike, *, p_threshold: float = 0.05) -> GRFit:
    """Fit LL.3u to the GR values of treated wells (``dose`` > 0) as GRmetrics does."""
    x = np.asarray(dose, dtype=float).ravel()
    y = np.asarray(gr, dtype=float).ravel()
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0)
    x, y = x[keep], y[keep]
    fit = GRFit(n=len(y), fitted=False)
    if len(y) == 0:
        fit.message = "no treated wells with a GR value"
        return fit
    doses = np.unique(x)
    fit.dose_min, fit.dose_max = float(doses[0]), float(doses[-1])
    top = doses[-2:]
    fit.gr_max = float(min(float(np.mean(y[x == d])) for d in top))
    fit.flat_level = float(np.mean(y))
    _flat_gr50(fit)
    if len(y) < 5 or len(doses) < 3:
        fit.message = f"too few points to fit ({len(y)} wells, {len(doses)} doses)"
        return fit
    lx = np.log(x)
    lg_bounds = (math.log(fit.dose_min / GEC50_SPAN), math.log(fit.dose_max * GEC50_SPAN))
    start = _grid_start(lx, y, lg_bounds)

    def resid(p: Array) -> Array:
        z = np.clip(p[2] * (lx - p[1]), -700, 700)
        s = special.expit(-z)
        return np.asarray(p[0] + (1.0 - p[0]) * s - y, dtype=float)

    lower = np.array([-1.0, lg_bounds[0], H_BOUNDS[0]])
    upper = np.array([1.0, lg_bounds[1], H_BOUNDS[1]])
    p0 = np.clip(np.array(start), lower + 1e-9, upper - 1e-9)
    res = optimize.least_squares(resid, p0, bounds=(lower, upper), method="trf")
    fit.fitted = True
    rss = float(np.sum(res.fun**2))
    rss0 = float(np.sum((y - y.mean()) ** 2))
    df = len(y) - 3
    if df > 0 and rss > 0:
        f = max((rss0 - rss) / 2.0, 0.0) / (rss / df)
        fit.p = float(special.fdtrc(2, df, f))
    elif rss0 > 0:
        fit.p = 0.0
    else:
        fit.p = 1.0
    if not (fit.p < p_threshold):
        fit.message = "GR does not change with dose (F-test against a flat line)"
        return fit
    fit.response = "yes"
    fit.gr_inf, fit.gec50, fit.h = float(res.x[0]), math.exp(float(res.x[1])), float(res.x[2])
    if fit.gr_inf >= 0.5:
        fit.gr50, fit.gr50_qualifier = fit.dose_max, ">"
        fit.message = "GR stays above 0.5: GR50 not reached"
        return fit
    gr50 = fit.gec50 * ((1.0 - fit.gr_inf) / (0.5 - fit.gr_inf) - 1.0) ** (1.0 / fit.h)
    if gr50 > fit.dose_max:
        fit.gr50, fit.gr50_qualifier = fit.dose_max, ">"
    elif gr50 < fit.dose_min:
        fit.gr50, fit.gr50_qualifier = fit.dose_min, "<"
    else:
        fit.gr50, fit.gr50_qualifier = gr50, "="
    return fit


def _flat_gr50(fit: GRFit) -> None:
    """A flat GR curve: GR50 beyond the doses on the side its level says (GRmetrics: ±Inf)."""
    if not math.isfinite(fit.flat_level):
        return
    if fit.flat_level > 0.5:
        fit.gr50, fit.gr50_qualifier = fit.dose_max, ">"
    else:
        fit.gr50, fit.gr50_qualifier = fit.dose_min, "<"
