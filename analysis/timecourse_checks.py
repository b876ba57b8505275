"""The timecourse flags (stable codes): growth_stalled, blank_rising, edge_drift, read_missed.

Each is judged on a series over time, never on one read:

* ``growth_stalled``: the untreated wells' log-linear growth rate over the last
  ``stall_window_h`` hours is below ``stall_fraction`` × the rate of the exponential phase
  and significantly below that rate (its upper 95 % bound under the phase rate's lower
  one): growth stopped, or the signal falls. Or the series never had an exponential phase
  and grows slower than one doubling per ``growth_max_doubling_h`` over twice the stall
  window. When it stopped is estimated by a two-slope (hinge) fit of ln(signal).
* ``blank_rising``: the blank level's Theil–Sen trend rises by ≥ ``blank_rise`` (in the
  read's unit) over the series, and significantly (one-sided slope t-test p < ``blank_p``).
* ``edge_drift``: the edge ring ratio's Theil–Sen trend falls (one-sided p <
  ``edge_drift_p``) by ≥ ``edge_drift_change`` and its fitted value at the latest read is
  below ``edge_drift_ratio``: evaporation building up, unlike a constant edge effect (which
  each read's own ``edge_effect`` already reports).
* ``read_missed``: the planned reads the scheduler could not take, with what they cost (a
  gap in the exponential phase, no time-zero read for GR values, no endpoint).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from analysis.advice import message
from analysis.growth import (
    LN2,
    GrowthFit,
    LineFit,
    Trend,
    breakpoint_h,
    line_fit,
    recent_rate,
    trend,
)
from analysis.model import Flag, rounded

Array = npt.NDArray[np.float64]


class TimecourseThresholds(Protocol):
    """Every threshold a timecourse analysis reads (the lead's ``[timecourse]`` settings)."""

    @property
    def time_zero_max_h(self) -> float: ...
    @property
    def growth_window_h(self) -> float: ...
    @property
    def growth_window_points(self) -> int: ...
    @property
    def growth_window_quota(self) -> float: ...
    @property
    def growth_max_doubling_h(self) -> float: ...
    @property
    def stall_window_h(self) -> float: ...
    @property
    def stall_min_points(self) -> int: ...
    @property
    def stall_fraction(self) -> float: ...
    @property
    def trend_min_points(self) -> int: ...
    @property
    def blank_rise(self) -> float: ...
    @property
    def blank_p(self) -> float: ...
    @property
    def edge_floor(self) -> float: ...
    @property
    def edge_drift_ratio(self) -> float: ...
    @property
    def edge_drift_change(self) -> float: ...
    @property
    def edge_drift_p(self) -> float: ...
    @property
    def gr_min_doublings(self) -> float: ...


@dataclass(frozen=True)
class TimecourseDefaults:
    """The defaults (judgement calls, tuned on the seeded simulations of the tests)."""

    time_zero_max_h: float = 0.5  # a read this close to the start is the time-zero read
    growth_window_h: float = 20.0  # hours of reads per candidate window of the exponential phase
    growth_window_points: int = 5  # ... and at least this many reads
    growth_window_quota: float = 0.95  # widen it over windows at least this steep
    growth_max_doubling_h: float = 120.0  # slower than this: not growing at all
    stall_window_h: float = 12.0  # the recent window judged for a stall
    stall_min_points: int = 4  # reads needed in that window
    stall_fraction: float = 0.25  # recent rate below this × the exponential phase's rate
    trend_min_points: int = 5  # reads needed before a blank or edge trend is judged
    blank_rise: float = 0.02  # fitted rise of the blank level, in the read's unit (OD)
    blank_p: float = 0.001  # one-sided t-test of the slope
    edge_floor: float = 30.0  # % viability below which wells are left out of the ring ratio
    edge_drift_ratio: float = 0.90  # fitted ring ratio at the latest read below this
    edge_drift_change: float = 0.05  # ... after falling by at least this much
    edge_drift_p: float = 0.001  # one-sided t-test of the slope
    gr_min_doublings: float = 0.5  # GR values only once the control grew this much


THRESHOLD_KEYS: tuple[str, ...] = tuple(TimecourseDefaults.__dataclass_fields__)


@dataclass(frozen=True)
class MissedRead:
    """A planned read the scheduler could not take (hours since the timecourse started)."""

    index: int
    due_h: float
    reason: str = ""


def percent_per_h(rate: float) -> float:
    """A log growth rate (per hour) as the % change per hour."""
    return 100.0 * math.expm1(rate)


def _hours(values: Sequence[float]) -> str:
    shown = ", ".join(f"{v:.3g}" for v in values[:8])
    return shown + (f" and {len(values) - 8} more" if len(values) > 8 else "")


def growth_check(
    t: Array,
    signal: Array,
    phase: GrowthFit,
    th: TimecourseThresholds,
    assay: str,
    wells: list[str],
) -> tuple[list[Flag], dict[str, Any]]:
    """growth_stalled, and the recent-rate numbers for the summary."""
    recent = recent_rate(t, signal, window_h=th.stall_window_h, min_points=th.stall_min_points)
    numbers: dict[str, Any] = {"recent": _line(recent)}
    usable = np.isfinite(t) & np.isfinite(signal) & (signal > 0)
    tt, ss = t[usable], signal[usable]
    if recent is None or len(tt) == 0:
        return [], numbers
    metrics: dict[str, Any] = {
        "recent_rate_per_h": rounded(recent.slope, 6),
        "recent_rate_high": rounded(recent.high, 6),
        "recent_window_h": [rounded(recent.t_from, 3), rounded(recent.t_to, 3)],
    }
    rate = phase.rate_per_h
    if phase.significant and rate is not None and phase.window_h is not None:
        if recent.t_from <= phase.window_h[0] or not math.isfinite(recent.high):
            return [], numbers
        floor = phase.rate_ci[0] if phase.rate_ci else rate
        if not (recent.slope < th.stall_fraction * rate and recent.high < floor):
            return [], numbers
        bend = breakpoint_h(tt, ss)
        since = bend if bend is not None and bend >= phase.window_h[0] else recent.t_from
        numbers["stalled_since_h"] = rounded(since, 3)
        metrics |= {
            "stalled_since_h": rounded(since, 3),
            "rate_per_h": rounded(rate, 6),
            "doubling_time_h": rounded(phase.doubling_time_h, 3),
            "window_h": [rounded(v, 3) for v in phase.window_h],
        }
        span = recent.t_to - recent.t_from
        if recent.high < 0:
            lost = -math.expm1(recent.slope * span) * 100
            head = f"untreated wells are falling: {lost:.0f} % lost over hours {recent.t_from:.3g}–{recent.t_to:.3g}"
        else:
            head = (
                f"untreated wells stopped growing: {percent_per_h(recent.slope):+.2f} %/h over "
                f"hours {recent.t_from:.3g}–{recent.t_to:.3g}"
            )
        what = (
            f"{head}, against {percent_per_h(rate):.2f} %/h (doubling time "
            f"{phase.doubling_time_h:.3g} h) in the exponential phase, hours "
            f"{phase.window_h[0]:.3g}–{phase.window_h[1]:.3g}; growth stopped at about hour {since:.3g}"
        )
        return [
            Flag(
                "growth_stalled", "warning", message(what, assay, "growth_stalled"), wells, metrics
            )
        ], numbers
    # No exponential phase: judge the whole series once it is long enough.
    if len(tt) < 2 * th.stall_min_points or float(np.ptp(tt)) < 2 * th.stall_window_h:
        return [], numbers
    whole = line_fit(tt, np.log(ss))
    if not (math.isfinite(whole.high) and whole.high < LN2 / th.growth_max_doubling_h):
        return [], numbers
    metrics |= {"rate_per_h": rounded(whole.slope, 6), "rate_high": rounded(whole.high, 6)}
    what = (
        f"untreated wells have not grown over hours {whole.t_from:.3g}–{whole.t_to:.3g} "
        f"({percent_per_h(whole.slope):+.2f} %/h; slower than one doubling in "
        f"{th.growth_max_doubling_h:.3g} h)"
    )
    return [
        Flag("growth_stalled", "warning", message(what, assay, "growth_none"), wells, metrics)
    ], numbers


def _line(fit: LineFit | None) -> dict[str, Any] | None:
    if fit is None:
        return None
    return {
        "rate_per_h": rounded(fit.slope, 6),
        "rate_ci": [rounded(fit.low, 6), rounded(fit.high, 6)],
        "window_h": [rounded(fit.t_from, 3), rounded(fit.t_to, 3)],
        "points": fit.n,
    }


def trend_dict(tr: Trend | None, digits: int = 6) -> dict[str, Any] | None:
    if tr is None:
        return None
    return {
        "slope_per_h": rounded(tr.slope, digits + 2),
        "change": rounded(tr.change, digits),
        "fitted_first": rounded(tr.at(tr.t_from), digits),
        "fitted_last": rounded(tr.at(tr.t_to), digits),
        "p_up": rounded(tr.p_up, 8),
        "p_down": rounded(tr.p_down, 8),
        "points": tr.n,
        "window_h": [rounded(tr.t_from, 3), rounded(tr.t_to, 3)],
    }


def blank_check(
    t: Array,
    blank: Array,
    reference: Array,
    th: TimecourseThresholds,
    assay: str,
    *,
    unit: str,
    read: str,
    reference_read: str | None,
    wells: list[str],
) -> tuple[list[Flag], dict[str, Any]]:
    tr = trend(t, blank)
    ref_tr = trend(t, reference) if reference_read else None
    numbers = {"trend": trend_dict(tr), "reference_trend": trend_dict(ref_tr)}
    if tr is None or tr.n < th.trend_min_points:
        return [], numbers
    if not (tr.p_up < th.blank_p and tr.change >= th.blank_rise):
        return [], numbers
    what = (
        f"blank wells rising: {tr.at(tr.t_from):.3g} → {tr.at(tr.t_to):.3g} {unit} on the "
        f"{read} read over hours {tr.t_from:.3g}–{tr.t_to:.3g} (+{tr.change:.3g} {unit}, "
        f"p = {tr.p_up:.1e})"
    )
    key = "blank_rising"
    if ref_tr is not None and ref_tr.n >= th.trend_min_points:
        if ref_tr.change >= 0.5 * tr.change and ref_tr.p_up < th.blank_p:
            what += (
                f"; the {reference_read} reference read rose as well (+{ref_tr.change:.3g} "
                f"{unit}): the medium is turning turbid"
            )
            key = "blank_rising_turbid"
        else:
            what += f"; the {reference_read} reference read did not rise with it"
    metrics = {
        "rise": rounded(tr.change, 6),
        "slope_per_h": rounded(tr.slope, 8),
        "p": rounded(tr.p_up, 10),
        "first": rounded(tr.at(tr.t_from), 6),
        "last": rounded(tr.at(tr.t_to), 6),
        "reference_rise": rounded(ref_tr.change, 6) if ref_tr else None,
        "unit": unit,
    }
    return [Flag("blank_rising", "warning", message(what, assay, key), wells, metrics)], numbers


def edge_check(
    t: Array,
    ratio: Array,
    th: TimecourseThresholds,
    assay: str,
    *,
    wells: list[str],
    end_h: float | None,
) -> tuple[list[Flag], dict[str, Any]]:
    tr = trend(t, ratio)
    numbers: dict[str, Any] = {"trend": trend_dict(tr), "threshold": th.edge_drift_ratio}
    if tr is None:
        return [], numbers
    last = tr.at(tr.t_to)
    if tr.slope < 0 and last > th.edge_drift_ratio:
        numbers["hours_to_threshold"] = rounded((th.edge_drift_ratio - last) / tr.slope, 3)
    if end_h is not None and end_h > tr.t_to:
        numbers["projected_at_end"] = rounded(tr.at(end_h), 4)
    if tr.n < th.trend_min_points:
        return [], numbers
    if not (
        tr.p_down < th.edge_drift_p
        and last < th.edge_drift_ratio
        and tr.change <= -th.edge_drift_change
    ):
        return [], numbers
    what = (
        f"edge drift: the outer-ring wells fell from {tr.at(tr.t_from):.2f} to {last:.2f} of "
        f"the interior over hours {tr.t_from:.3g}–{tr.t_to:.3g} ({tr.slope * 24:+.3f} per day, "
        f"p = {tr.p_down:.1e}); evaporation is building up"
    )
    metrics = {
        "ring_ratio_first": rounded(tr.at(tr.t_from), 4),
        "ring_ratio_last": rounded(last, 4),
        "change": rounded(tr.change, 4),
        "slope_per_day": rounded(tr.slope * 24, 6),
        "p": rounded(tr.p_down, 10),
        "threshold": th.edge_drift_ratio,
    }
    return [
        Flag("edge_drift", "warning", message(what, assay, "edge_drift"), wells, metrics)
    ], numbers


def missed_check(
    missed: Sequence[MissedRead],
    read_hours: Array,
    phase: GrowthFit,
    *,
    time_zero: bool,
    gr_source: str | None,
    th: TimecourseThresholds,
    assay: str,
) -> list[Flag]:
    """One read_missed flag for all missed reads, saying what they cost."""
    if not missed:
        return []
    due = sorted(float(m.due_h) for m in missed)
    costs: list[str] = []
    if any(h <= th.time_zero_max_h for h in due) and not time_zero:
        if gr_source == "doubling_time":
            costs.append(
                "the time-zero read is missing, so GR values rest on the known doubling time"
            )
        else:
            costs.append("the time-zero read is missing, so no GR values can be computed")
    in_phase = 0
    if phase.window_h is not None:
        lo, hi = phase.window_h
        in_phase = sum(1 for h in due if lo <= h <= hi)
        if in_phase:
            ci = phase.doubling_time_ci
            band = (
                f" (its 95 % CI {ci[0]:.3g}–{ci[1]:.3g} h)"
                if ci is not None and ci[1] is not None
                else ""
            )
            costs.append(
                f"{in_phase} fell in the exponential phase (hours {lo:.3g}–{hi:.3g}): the doubling "
                f"time rests on {phase.points} reads{band}"
            )
    elif len(read_hours) and any(h < float(read_hours.max()) for h in due):
        costs.append("they fell before an exponential phase could be found")
    times = np.sort(np.concatenate([read_hours, np.array(due)]))
    gap = 0.0
    if len(read_hours) >= 1:
        edges = np.sort(np.concatenate([[0.0], read_hours]))
        gaps = np.diff(edges)
        gap = float(gaps.max()) if len(gaps) else 0.0
        planned = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
        if planned > 0 and gap > 1.5 * planned:
            costs.append(
                f"the longest gap between reads is now {gap:.3g} h (planned every {planned:.3g} h)"
            )
    last_done = float(read_hours.max()) if len(read_hours) else None
    after = [h for h in due if last_done is None or h > last_done]
    if after:
        since = f"hour {last_done:.3g}" if last_done is not None else "no read at all"
        costs.append(f"the newest reads are missing: the latest IC50 and growth are from {since}")
    what = (
        f"{len(due)} planned read{'s' if len(due) > 1 else ''} missed (due at hour {_hours(due)})"
    )
    if costs:
        what += ": " + "; ".join(costs)
    reasons = sorted({m.reason for m in missed if m.reason})
    metrics: dict[str, Any] = {
        "missed": len(due),
        "indices": sorted(m.index for m in missed),
        "due_h": [rounded(h, 3) for h in due],
        "in_exponential_phase": in_phase,
        "longest_gap_h": rounded(gap, 3),
        "reasons": reasons,
    }
    return [Flag("read_missed", "warning", message(what, assay, "read_missed"), [], metrics)]
