"""Growth of a series over time: the exponential phase, the doubling time, recent rates and
robust trends (SCIENCE.md §8). Pure numerics on arrays of hours and values.

* Exponential phase (after the "easy linear" method of Hall et al. 2014, R ``growthrates``):
  fit ln(signal) against hours on every run of consecutive reads spanning ``window_h``
  hours (at least ``min_points`` reads), take the run with the steepest slope, widen it
  over the neighbouring runs whose slope is at least ``quota`` × that steepest one, and fit
  the widened window once more. Runs shorter than ~20 h are too noisy for a 2-hourly
  series: the steepest of many noisy runs overstates the rate (seen on the simulations of
  the tests: 5-read runs at 2 h read the doubling time 15 % short). Its slope is
  the growth rate r; the doubling time is ln 2 / r with the t-interval of the slope turned
  into an interval of the doubling time (open above when the rate's interval reaches 0).
  Logistic growth slows as the wells fill, so the steepest window is the early one and the
  quota keeps the slowing part out.
* Recent rate: the same log-linear fit over the last ``window_h`` hours.
* Trend: its size from the Theil–Sen line (median of pairwise slopes: one odd read cannot
  move it), its significance from the one-sided t-test of the least-squares slope (Kendall's
  τ, the rank test that goes with Theil–Sen, cannot reach p < 0.001 on fewer than 7 reads
  and needs them in perfect order to get there, so a sparse 12-hourly series would never
  show a trend).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view
from scipy import special, stats

from analysis.doseresponse import t_quantile

Array = npt.NDArray[np.float64]
LN2 = math.log(2.0)


@dataclass(frozen=True)
class LineFit:
    """Ordinary least squares y = intercept + slope · t, with the slope's t-interval."""

    slope: float
    intercept: float
    se: float  # NaN when the fit has no residual degrees of freedom
    n: int
    low: float  # interval of the slope at the requested level (NaN without df)
    high: float
    t_from: float
    t_to: float

    def at(self, t: float) -> float:
        return self.intercept + self.slope * t


def line_fit(t: Array, y: Array, level: float = 0.95) -> LineFit:
    """OLS on ≥ 2 points with distinct hours (callers check)."""
    n = len(t)
    tc = t - t.mean()
    sxx = float(tc @ tc)
    slope = float(tc @ (y - y.mean()) / sxx)
    intercept = float(y.mean() - slope * t.mean())
    df = n - 2
    if df > 0:
        resid = y - (intercept + slope * t)
        se = math.sqrt(float(resid @ resid) / df / sxx)
        half = t_quantile(df, level) * se
        low, high = slope - half, slope + half
    else:
        se = low = high = math.nan
    return LineFit(slope, intercept, se, n, low, high, float(t[0]), float(t[-1]))


@dataclass(frozen=True)
class GrowthFit:
    """The exponential phase of one growth series."""

    rate_per_h: float | None  # r of ln(signal) = a + r t over the window
    rate_ci: tuple[float, float] | None
    doubling_time_h: float | None
    doubling_time_ci: tuple[float, float | None] | None  # upper None: not bounded
    window_h: tuple[float, float] | None
    points: int
    significant: bool  # the rate's interval excludes 0 (the wells grew)
    note: str = ""
    log_intercept: float | None = None  # a of the fit: signal ≈ exp(a + r t) in the window


def _log_signal(t: Array, signal: Array) -> tuple[Array, Array]:
    """Hours and ln(signal) of the reads whose signal can be logged (> 0, finite)."""
    keep = np.isfinite(t) & np.isfinite(signal) & (signal > 0)
    return t[keep], np.log(signal[keep])


def _window_slopes(t: Array, y: Array, h: int) -> Array:
    tw, yw = sliding_window_view(t, h), sliding_window_view(y, h)
    tc = tw - tw.mean(axis=1, keepdims=True)
    sxx = np.sum(tc * tc, axis=1)
    slopes = np.sum(tc * (yw - yw.mean(axis=1, keepdims=True)), axis=1) / np.where(
        sxx > 0, sxx, np.nan
    )
    return np.asarray(slopes, dtype=float)


def exponential_phase(
    t: Array,
    signal: Array,
    *,
    window_h: float = 20.0,
    min_points: int = 5,
    quota: float = 0.95,
    level: float = 0.95,
) -> GrowthFit:
    """The exponential phase of ``signal`` (blank-corrected, > 0) over hours ``t`` (sorted)."""
    tt, y = _log_signal(np.asarray(t, dtype=float), np.asarray(signal, dtype=float))
    h = max(3, min_points)
    if len(tt) >= 2:
        step = float(np.median(np.diff(tt)))
        if step > 0:
            h = max(h, round(window_h / step) + 1)
    if len(tt) < 3 or float(np.ptp(tt)) <= 0:
        return GrowthFit(
            None, None, None, None, None, len(tt), False, "fewer than 3 reads with signal"
        )
    note = ""
    if len(tt) < h:
        lo, hi = 0, len(tt) - 1
        note = f"only {len(tt)} reads: fitted on all of them"
    else:
        slopes = _window_slopes(tt, y, h)
        if not np.any(np.isfinite(slopes) & (slopes > 0)):
            fit = line_fit(tt, y, level)
            return GrowthFit(
                None,
                (fit.low, fit.high) if math.isfinite(fit.se) else None,
                None,
                None,
                None,
                len(tt),
                False,
                "no run of reads in which the signal grows",
            )
        best = int(np.nanargmax(slopes))
        floor = quota * float(slopes[best])
        first = last = best
        while first > 0 and slopes[first - 1] >= floor:
            first -= 1
        while last < len(slopes) - 1 and slopes[last + 1] >= floor:
            last += 1
        lo, hi = first, last + h - 1
    fit = line_fit(tt[lo : hi + 1], y[lo : hi + 1], level)
    rate = fit.slope
    significant = math.isfinite(fit.low) and fit.low > 0
    if rate <= 0:
        return GrowthFit(
            rate,
            (fit.low, fit.high) if math.isfinite(fit.se) else None,
            None,
            None,
            (fit.t_from, fit.t_to),
            fit.n,
            False,
            note or "the signal does not grow",
            fit.intercept,
        )
    ci: tuple[float, float | None] | None = None
    if math.isfinite(fit.se):
        ci = (LN2 / fit.high, LN2 / fit.low if fit.low > 0 else None)
    return GrowthFit(
        rate_per_h=rate,
        rate_ci=(fit.low, fit.high) if math.isfinite(fit.se) else None,
        doubling_time_h=LN2 / rate,
        doubling_time_ci=ci,
        window_h=(fit.t_from, fit.t_to),
        points=fit.n,
        significant=significant,
        note=note,
        log_intercept=fit.intercept,
    )


def recent_rate(
    t: Array, signal: Array, *, window_h: float, min_points: int, level: float = 0.95
) -> LineFit | None:
    """The log-linear growth rate over the last ``window_h`` hours (None: too few reads)."""
    tt, y = _log_signal(np.asarray(t, dtype=float), np.asarray(signal, dtype=float))
    if len(tt) == 0:
        return None
    recent = tt >= tt[-1] - window_h
    if int(recent.sum()) < max(3, min_points) or float(np.ptp(tt[recent])) <= 0:
        return None
    return line_fit(tt[recent], y[recent], level)


def breakpoint_h(t: Array, signal: Array) -> float | None:
    """Where ln(signal) bends: the read time b of the best continuous two-slope fit
    ln s = a + r₁·min(t, b) + r₂·max(t − b, 0) (None with fewer than 6 reads)."""
    tt, y = _log_signal(np.asarray(t, dtype=float), np.asarray(signal, dtype=float))
    if len(tt) < 6:
        return None
    best: tuple[float, float] | None = None
    for b in tt[2:-2]:
        design = np.column_stack([np.ones_like(tt), np.minimum(tt, b), np.maximum(tt - b, 0.0)])
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        rss = float(np.sum((y - design @ coef) ** 2))
        if best is None or rss < best[0]:
            best = (rss, float(b))
    return None if best is None else best[1]


@dataclass(frozen=True)
class Trend:
    """A trend of y over hours: Theil–Sen line, one-sided p-values of the OLS slope."""

    slope: float  # per hour (Theil–Sen)
    intercept: float
    p_up: float  # one-sided: y rises with time
    p_down: float  # one-sided: y falls with time
    n: int
    t_from: float
    t_to: float

    def at(self, t: float) -> float:
        return self.intercept + self.slope * t

    @property
    def change(self) -> float:
        """The fitted change from the first to the last read."""
        return self.slope * (self.t_to - self.t_from)


def trend(t: Array, y: Array) -> Trend | None:
    """The trend of the finite points of y (None below 3 points or without a time span)."""
    t = np.asarray(t, dtype=float)
    y = np.asarray(y, dtype=float)
    keep = np.isfinite(t) & np.isfinite(y)
    t, y = t[keep], y[keep]
    if len(t) < 3 or float(np.ptp(t)) <= 0:
        return None
    slope, intercept, _, _ = stats.theilslopes(y, t)
    ols = line_fit(t, y)
    df = len(t) - 2
    if ols.se > 0:
        score = ols.slope / ols.se
        p_up, p_down = float(special.stdtr(df, -score)), float(special.stdtr(df, score))
    else:  # an exact line
        p_up = 0.0 if ols.slope > 0 else 1.0
        p_down = 0.0 if ols.slope < 0 else 1.0
    return Trend(float(slope), float(intercept), p_up, p_down, len(t), float(t[0]), float(t[-1]))
