"""Trends across plates: a control line's IC50 drifting towards the edge of its range.

A reagent lot losing activity raises the sensitive control line's IC50 a little on every
plate; each plate still passes ``control_out_of_range`` until the day one does not. The
trend shows it first. On the last ``window`` plates of one control line × compound, log
IC50 is regressed on the plate's order; ``control_drift`` is raised when the slope is
significant (one-sided t-test towards a bound, p < ``p``) and the fitted line reaches the
bound of the expected range within ``horizon`` more plates (or has reached it). A stable
series, however noisy, has no significant slope; a significant but tiny drift does not
reach the bound in time. Pure: the caller hands in the points.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import special


@dataclass(frozen=True)
class ControlPoint:
    """One plate's IC50 of a control line (``qualifier`` '>' / '<' for a censored IC50)."""

    at: float  # when the plate was analysed (seconds since the epoch)
    ic50: float | None
    qualifier: str | None
    low: float  # the expected range of this line
    high: float | None  # None: open-ended (a resistant line)
    result_id: int = 0


@dataclass(frozen=True)
class DriftRule:
    window: int = 12  # plates the trend is fitted on
    min_points: int = 8  # fewer usable plates: no verdict
    p: float = 0.001  # one-sided, towards the bound
    horizon: float = 10.0  # plates ahead the fitted line may reach the bound


@dataclass(frozen=True)
class Drift:
    direction: Literal["up", "down"]
    change_per_plate: float  # fractional change of the IC50 per plate (0.05 = +5 %)
    p: float
    fitted_now: float  # the trend's IC50 at the latest plate
    bound: float  # the bound it is heading for
    plates_to_bound: float  # 0 when it is already there
    points: int


def drift(points: Sequence[ControlPoint], rule: DriftRule | None = None) -> Drift | None:
    """The drift of the latest ``rule.window`` points, or None when there is none to report."""
    rule = rule or DriftRule()
    usable = [p for p in points if p.ic50 is not None and p.ic50 > 0 and math.isfinite(p.ic50)]
    usable = usable[-rule.window :]
    if len(usable) < rule.min_points:
        return None
    low = usable[-1].low
    high = usable[-1].high
    y = np.log(np.array([p.ic50 for p in usable], dtype=float))
    x = np.arange(len(y), dtype=float)
    xc = x - x.mean()
    sxx = float(xc @ xc)
    slope = float(xc @ (y - y.mean()) / sxx)
    intercept = float(y.mean() - slope * x.mean())
    resid = y - (intercept + slope * x)
    dof = len(y) - 2
    s2 = float(resid @ resid) / dof
    se = math.sqrt(s2 / sxx) if s2 > 0 else 0.0
    if slope == 0:
        return None
    direction: Literal["up", "down"] = "up" if slope > 0 else "down"
    if direction == "up":
        if high is None:
            return None  # an open-ended range has no upper bound to reach
        bound = high
    else:
        if low <= 0:
            return None
        bound = low
    t = abs(slope) / se if se > 0 else math.inf
    p = float(special.stdtr(dof, -t)) if math.isfinite(t) else 0.0
    if p >= rule.p:
        return None
    now = intercept + slope * x[-1]
    plates = (math.log(bound) - now) / slope
    if plates > rule.horizon:
        return None
    return Drift(
        direction=direction,
        change_per_plate=math.expm1(slope),
        p=p,
        fitted_now=math.exp(now),
        bound=bound,
        plates_to_bound=max(plates, 0.0),
        points=len(usable),
    )
