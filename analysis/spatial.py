"""Position effects on a plate: edge effects (ring test) and gradients (SCIENCE.md §4).

Both are judged on cell wells only, relative to what each well should read: the fitted
curve of its compound × cell line at its dose (the fitted upper plateau for untreated
wells). Wells predicted below ``residual_floor`` % are skipped: their ratios are noise.

* ring test: median(outer ring)/median(interior) of those ratios + Mann–Whitney U;
* gradients: left/right and top/bottom halves of the ratios (+ Mann–Whitney), Tukey median
  polish row/column effects (reported), and a joint model in which every curve is refitted
  together with a multiplicative planar gradient ``1 + gx·x + gy·y`` (x, y the well's
  centred column/row position, −½…½). Refitting jointly matters: fitted separately, a
  curve whose doses run along the columns swallows a column gradient into its shape.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from scipy import optimize, special

from analysis.advice import message
from analysis.curves import Curve
from analysis.doseresponse import ll4, log_dose
from analysis.model import Check, Flag, rounded
from analysis.plate import NormalisedPlate
from analysis.stats import mann_whitney_p, median_polish
from datamodel import parse_well, well_name

Array = npt.NDArray[np.float64]


class SpatialThresholds(Protocol):
    @property
    def edge_ratio(self) -> float: ...
    @property
    def edge_p(self) -> float: ...
    @property
    def gradient_ratio(self) -> float: ...
    @property
    def gradient_p(self) -> float: ...
    @property
    def gradient_trend(self) -> float: ...
    @property
    def residual_floor(self) -> float: ...


def _expected(curve_fit_params: tuple[float, float, float, float], dose: float) -> float:
    b, c, d, e = curve_fit_params
    return float(ll4(np.array([dose]), b, c, d, e)[0])


def _cell_wells(plate: NormalisedPlate, curves: list[Curve]) -> list[tuple[str, int, float]]:
    """(well, curve index, dose) for every ok cell well that belongs to a fitted curve."""
    out: list[tuple[str, int, float]] = []
    seen: set[str] = set()
    for k, curve in enumerate(curves):
        if not curve.fit.converged:
            continue
        for w in curve.wells:
            if w in seen or not math.isfinite(plate.viability[parse_well(w)]):
                continue
            seen.add(w)
            out.append((w, k, plate.layout.dose_of(w)))
    return out


def residual_ratios(plate: NormalisedPlate, curves: list[Curve], floor: float) -> Array:
    """Observed / predicted viability per cell well (NaN where not judged)."""
    ratio = np.full(plate.shape, np.nan)
    for w, k, dose in _cell_wells(plate, curves):
        f = curves[k].fit
        expected = _expected((f.b, f.c, f.d, f.e), dose)
        if expected >= floor:
            r, c = parse_well(w)
            ratio[r, c] = plate.viability[r, c] / expected
    return ratio


def spatial_check(
    plate: NormalisedPlate, curves: list[Curve], qc: SpatialThresholds, assay: str
) -> Check:
    ratio = residual_ratios(plate, curves, qc.residual_floor)
    check = Check()
    check.flags += _edge(ratio, qc, check.metrics, assay)
    check.flags += _gradient(plate, curves, ratio, qc, check.metrics, assay)
    return check


def _edge(ratio: Array, qc: SpatialThresholds, metrics: dict[str, Any], assay: str) -> list[Flag]:
    rows, cols = ratio.shape
    rr, cc = np.indices(ratio.shape)
    ring = (rr == 0) | (rr == rows - 1) | (cc == 0) | (cc == cols - 1)
    judged = np.isfinite(ratio)
    outer, inner = ratio[ring & judged], ratio[~ring & judged]
    edge: dict[str, Any] = {"outer_n": len(outer), "interior_n": len(inner)}
    metrics["edge"] = edge
    if len(outer) < 3 or len(inner) < 3:
        edge["tested"] = False
        edge["note"] = (
            "the outer ring holds no cell wells (empty or PBS): edge effects are prevented by "
            "the layout"
            if len(outer) < 3
            else "too few interior cell wells for a ring test"
        )
        return []
    ring_ratio = float(np.median(outer) / np.median(inner))
    p = mann_whitney_p(outer, inner)
    edge.update(tested=True, ring_ratio=rounded(ring_ratio), p=rounded(p, 6))
    if not (p < qc.edge_p and (ring_ratio < qc.edge_ratio or ring_ratio > 1 / qc.edge_ratio)):
        return []
    wells = [well_name(r, c) for r, c in zip(*np.nonzero(ring & judged), strict=True)]
    direction = "low" if ring_ratio < 1 else "high"
    what = (
        f"edge effect: outer-ring wells read {abs(1 - ring_ratio) * 100:.0f} % {direction} "
        f"against the interior (ring ratio {ring_ratio:.2f}, Mann–Whitney p = {p:.1e})"
    )
    return [
        Flag(
            "edge_effect",
            "warning",
            message(what, assay, "edge_effect"),
            wells,
            {
                "ring_ratio": rounded(ring_ratio),
                "p": p,
                "outer_n": len(outer),
                "interior_n": len(inner),
            },
        )
    ]


def gradient_model(plate: NormalisedPlate, curves: list[Curve]) -> dict[str, float] | None:
    """Refit every curve jointly with a planar gradient; the gradient's size and t-test.

    Returns the end-to-end change along columns and rows (fractions: −0.15 = the far side
    reads 15 % lower) and their p-values, or None when there is too little to fit.
    """
    cells = _cell_wells(plate, curves)
    used = sorted({k for _, k, _ in cells})
    if len(cells) < 4 * len(used) + 6 or not used:
        return None
    rows, cols = plate.shape
    slot = {k: i for i, k in enumerate(used)}
    pos = np.array([parse_well(w) for w, _, _ in cells], dtype=float)
    gx = pos[:, 1] / (cols - 1) - 0.5
    gy = pos[:, 0] / (rows - 1) - 0.5
    dose = np.array([d for _, _, d in cells])
    which = np.array([slot[k] for _, k, _ in cells])
    y = np.array([plate.viability[parse_well(w)] for w, _, _ in cells])
    start = []
    for k in used:
        f = curves[k].fit
        start += [f.b, f.c, f.d, math.log(f.e) if f.e > 0 else 0.0]
    theta0 = np.array([*start, 0.0, 0.0])
    lx, _ = log_dose(dose)

    def model(theta: Array) -> Array:
        p = theta[:-2].reshape(-1, 4)[which]
        b, c, d, le = p[:, 0], p[:, 1], p[:, 2], p[:, 3]
        g = special.expit(-b * (lx - le))
        return np.asarray((c + (d - c) * g) * (1.0 + theta[-2] * gx + theta[-1] * gy), dtype=float)

    # MTT noise is mostly multiplicative: weight each well by its relative error, with a
    # floor so that near-dead wells (additive reader noise dominates) do not take over.
    first = model(theta0)
    weight = 1.0 / np.maximum(np.abs(first), 20.0)

    def resid(t: Array) -> Array:
        return np.asarray((model(t) - y) * weight, dtype=float)

    with np.errstate(all="ignore"):
        theta, cov, _, _, ier = optimize.leastsq(resid, theta0, full_output=True, maxfev=4000)
    if cov is None or ier not in (1, 2, 3, 4):
        return None
    dof = len(y) - len(theta)
    s2 = float(np.sum(resid(theta) ** 2)) / dof
    se = np.sqrt(np.clip(np.diag(cov)[-2:] * s2, 0, None))
    out: dict[str, float] = {}
    for name, value, err in (("column", theta[-2], se[0]), ("row", theta[-1], se[1])):
        t = value / err if err > 0 else 0.0
        out[f"{name}_change"] = float(value)  # far side (right/bottom) relative to near side
        out[f"{name}_p"] = float(2 * special.stdtr(dof, -abs(t)))
    return out


def _gradient(
    plate: NormalisedPlate,
    curves: list[Curve],
    ratio: Array,
    qc: SpatialThresholds,
    metrics: dict[str, Any],
    assay: str,
) -> list[Flag]:
    rows, cols = ratio.shape
    rr, cc = np.indices(ratio.shape)
    judged = np.isfinite(ratio)
    found: list[str] = []
    numbers: dict[str, Any] = {}
    for first_half, names in (
        (cc < cols // 2, ("left", "right")),
        (rr < rows // 2, ("top", "bottom")),
    ):
        a, b = ratio[first_half & judged], ratio[~first_half & judged]
        if len(a) < 3 or len(b) < 3:
            continue
        half = float(np.median(a) / np.median(b))
        p = mann_whitney_p(a, b)
        numbers[f"{names[0]}_{names[1]}_ratio"] = rounded(half)
        numbers[f"{names[0]}_{names[1]}_p"] = rounded(p, 6)
        if p < qc.gradient_p and (half < qc.gradient_ratio or half > 1 / qc.gradient_ratio):
            high = names[0] if half > 1 else names[1]
            found.append(f"{high} half higher ({names[0]}/{names[1]} {half:.2f}, p = {p:.1e})")
    if judged.sum() >= 6:
        polish = median_polish(np.where(judged, ratio, np.nan))
        col_fx = polish.col[judged.any(axis=0)]
        row_fx = polish.row[judged.any(axis=1)]
        numbers["medpolish_column_range"] = rounded(float(np.ptp(col_fx))) if len(col_fx) else None
        numbers["medpolish_row_range"] = rounded(float(np.ptp(row_fx))) if len(row_fx) else None
    model = gradient_model(plate, curves)
    if model is not None:
        for axis, (near, far) in (("column", ("left", "right")), ("row", ("top", "bottom"))):
            change, p = model[f"{axis}_change"], model[f"{axis}_p"]
            numbers[f"{axis}_change"] = rounded(change)
            numbers[f"{axis}_p"] = rounded(p, 6)
            if abs(change) >= qc.gradient_trend and p < qc.gradient_p:
                side = far if change < 0 else near
                found.append(
                    f"{side} side {abs(change) * 100:.0f} % lower across the {axis}s (p = {p:.1e})"
                )
    metrics["gradient"] = numbers
    if not found:
        return []
    wells = [well_name(r, c) for r, c in zip(*np.nonzero(judged), strict=True)]
    return [
        Flag(
            "plate_gradient",
            "warning",
            message("gradient across the plate: " + "; ".join(found), assay, "plate_gradient"),
            wells,
            numbers,
        )
    ]
