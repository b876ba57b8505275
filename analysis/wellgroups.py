"""Groups of cell wells that should read alike, and the plate's own noise (SCIENCE.md §4).

Position effects and replicate outliers are judged only by comparing wells that should
agree: the wells of one cell line at one dose of one compound. After the curve fit, the
doses whose fitted response lies on the line's upper plateau (within ``plateau_tolerance``
of the fitted top) join the line's untreated wells: the fit says they read alike. Wells of
different lines, or of doses the curve separates, are never compared: their difference is
biology, not position.

The noise of a well is modelled as multiplicative (seeding, pipetting: a relative SD σₘ)
plus additive (the reader: the SD of the blank wells), so its relative SD at a response
level L (% of untreated) is √(σₘ² + (σₐ/L)²). σₘ is estimated robustly from the
differences between wells of the same group (a median, so outlier wells do not inflate
it); σₐ from the blanks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from analysis.curves import Curve
from analysis.doseresponse import ll4
from analysis.plate import NormalisedPlate
from analysis.stats import mad
from datamodel import parse_well

Array = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

_MEDIAN_CHI2_1 = 0.454936423119572  # median of χ²₁: a squared N(0, 1) is below it half the time
_SIGMA_BOUNDS = (1e-4, 10.0)


@dataclass(frozen=True)
class WellGroups:
    """Judged cell wells, sorted by group, with what they read against what they should."""

    wells: tuple[str, ...]
    group: IntArray  # group index of each well (0 … G−1), non-decreasing
    labels: tuple[str, ...]  # one per group: "REH untreated + plateau", "REH asparaginase 2.5"
    lines: tuple[str | None, ...]  # the cell line of each group
    level: Array  # the fitted response of each well (% of untreated)
    ratio: Array  # observed / fitted response (the fitted plateau for the plateau group)
    row: IntArray
    col: IntArray
    shape: tuple[int, int]
    sigma: Array  # each well's expected relative SD (the plate's noise at its level)
    multiplicative_sd: float  # σₘ: NaN when no group has two wells

    @property
    def n_groups(self) -> int:
        return len(self.labels)

    def __len__(self) -> int:
        return len(self.wells)


def additive_sd(plate: NormalisedPlate) -> dict[str | None, float]:
    """σₐ per cell line in % of its untreated level: the robust SD of the blank wells.

    0 where the plate has fewer than three blanks (σₘ then absorbs the reader's noise).
    """
    blanks = plate.blank_values
    sd = mad(blanks) if len(blanks) >= 3 else 0.0
    out: dict[str | None, float] = {}
    for line, base in plate.untreated_mean.items():
        ok = math.isfinite(base) and base > 0 and math.isfinite(sd)
        out[line] = 100.0 * sd / base if ok else 0.0
    return out


def multiplicative_sd(values: Array, group: IntArray, additive_rel: Array) -> float:
    """σₘ from the differences between wells of the same group (relative values).

    For every pair i, j of one group, (vᵢ − vⱼ)/√2 has variance σₘ² + aᵢⱼ (aᵢⱼ the additive
    part at that level). σₘ is the value for which the median of the squared standardised
    differences is the median of χ²₁: a median, so a few outlier wells barely move it.
    NaN without a pair.
    """
    diffs: list[Array] = []
    extra: list[Array] = []
    for g in np.unique(group):
        idx = np.flatnonzero(group == g)
        if len(idx) < 2:
            continue
        i, j = np.triu_indices(len(idx), 1)
        diffs.append((values[idx[i]] - values[idx[j]]) / math.sqrt(2.0))
        extra.append((additive_rel[idx[i]] ** 2 + additive_rel[idx[j]] ** 2) / 2.0)
    if not diffs:
        return math.nan
    d2 = np.concatenate(diffs) ** 2
    a = np.concatenate(extra)
    lo, hi = _SIGMA_BOUNDS
    if float(np.median(d2 / (lo**2 + a))) <= _MEDIAN_CHI2_1:
        return lo
    for _ in range(26):  # bisection on log σ (to 1e-6 relative): the median falls as σ grows
        mid = math.sqrt(lo * hi)
        if float(np.median(d2 / (mid**2 + a))) > _MEDIAN_CHI2_1:
            lo = mid
        else:
            hi = mid
    return math.sqrt(lo * hi)


def relative_sd(level: Array, multiplicative: float, additive: Array) -> Array:
    """Expected relative SD at each response level (% of untreated)."""
    return np.sqrt(multiplicative**2 + (additive / np.maximum(level, 1e-9)) ** 2)


def _curve_of_well(curves: list[Curve]) -> dict[str, int]:
    """The first converged curve each cell well belongs to (untreated wells are shared)."""
    owner: dict[str, int] = {}
    for k, curve in enumerate(curves):
        if curve.fit.converged:
            for w in curve.wells:
                owner.setdefault(w, k)
    return owner


def well_groups(
    plate: NormalisedPlate, curves: list[Curve], *, floor: float, plateau_tolerance: float
) -> WellGroups:
    """The cell wells position effects are judged on, grouped by what they should read.

    A well is judged when its curve converged, its reading is valid and its fitted
    response is at least ``floor`` % (below it, ratios are reader noise). Groups with a
    single well carry no comparison and are left out.
    """
    layout = plate.layout
    owner = _curve_of_well(curves)
    additive = additive_sd(plate)
    keyed: dict[tuple[object, ...], list[tuple[str, float, float, float]]] = {}
    names: dict[tuple[object, ...], str] = {}
    for w, k in owner.items():
        value = float(plate.viability[parse_well(w)])
        if not math.isfinite(value):
            continue
        spec = layout.wells[w]
        fit = curves[k].fit
        dose = layout.dose_of(w)
        fitted = float(ll4(np.array([dose]), fit.b, fit.c, fit.d, fit.e)[0])
        if not (math.isfinite(fitted) and fitted >= floor):
            continue
        line = spec.cell_line
        on_plateau = dose == 0 or abs(fitted - fit.d) <= plateau_tolerance * abs(fit.d)
        key: tuple[object, ...]
        if on_plateau:
            key = (line, "plateau")
            names[key] = f"{line or 'cells'} untreated + plateau"
        else:
            key = (line, spec.compound, dose)
            names[key] = f"{line or 'cells'} {spec.compound or ''} {dose:g}".replace("  ", " ")
        # plateau wells are read against the fitted plateau itself, not the curve at their
        # dose: the curve bends to follow the noise of each dose's few wells, which would
        # make those wells look quieter than the untreated ones they are compared with
        reference = fit.d if on_plateau else fitted
        if not (math.isfinite(reference) and reference > 0):
            continue
        keyed.setdefault(key, []).append((w, value, fitted, reference))
    kept = [(key, members) for key, members in keyed.items() if len(members) >= 2]
    wells: list[str] = []
    group: list[int] = []
    observed: list[float] = []
    fitted_all: list[float] = []
    references: list[float] = []
    lines: list[str | None] = []
    for g, (key, members) in enumerate(kept):
        for w, value, fitted, reference in sorted(members, key=lambda m: parse_well(m[0])):
            wells.append(w)
            group.append(g)
            observed.append(value)
            fitted_all.append(fitted)
            references.append(reference)
        lines.append(key[0] if isinstance(key[0], str) else None)
    level = np.asarray(fitted_all, dtype=float)
    denominator = np.asarray(references, dtype=float)
    ratio = np.asarray(observed, dtype=float) / np.where(denominator > 0, denominator, np.nan)
    groups = np.asarray(group, dtype=np.intp)
    add_rel = np.array([additive.get(lines[g], 0.0) for g in group], dtype=float) / np.maximum(
        level, 1e-9
    )
    sigma_m = multiplicative_sd(ratio, groups, add_rel) if len(wells) else math.nan
    pos = np.array([parse_well(w) for w in wells], dtype=np.intp).reshape(-1, 2)
    sigma = (
        np.sqrt(sigma_m**2 + add_rel**2) if math.isfinite(sigma_m) else np.full(len(wells), np.nan)
    )
    return WellGroups(
        wells=tuple(wells),
        group=groups,
        labels=tuple(names[key] for key, _ in kept),
        lines=tuple(lines),
        level=level,
        ratio=ratio,
        row=pos[:, 0],
        col=pos[:, 1],
        shape=plate.shape,
        sigma=sigma,
        multiplicative_sd=sigma_m,
    )
