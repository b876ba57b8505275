"""Small robust statistics used by the plate checks."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

Array = npt.NDArray[np.float64]
MAD_SCALE = 1.4826  # MAD of a normal sample → its SD


def mad(values: Array) -> float:
    if len(values) == 0:
        return math.nan
    return float(MAD_SCALE * np.median(np.abs(values - np.median(values))))


def cv(values: Array) -> float:
    if len(values) < 2:
        return math.nan
    mean = float(np.mean(values))
    return float(np.std(values, ddof=1) / abs(mean)) if mean else math.inf


def mann_whitney_p(a: Array, b: Array) -> float:
    """Two-sided Mann–Whitney U p-value; NaN when either side has fewer than 3 values."""
    if len(a) < 3 or len(b) < 3:
        return math.nan
    return float(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)


def z_prime(positive: Array, negative: Array) -> tuple[float, float]:
    """(classic, robust) Z′ (Zhang et al. 1999; robust: median and MAD); NaN without a window."""
    if len(positive) < 2 or len(negative) < 2:
        return math.nan, math.nan
    window = abs(float(np.mean(positive) - np.mean(negative)))
    classic = (
        1 - 3 * (np.std(positive, ddof=1) + np.std(negative, ddof=1)) / window
        if window
        else math.nan
    )
    rwindow = abs(float(np.median(positive) - np.median(negative)))
    robust = 1 - 3 * (mad(positive) + mad(negative)) / rwindow if rwindow else math.nan
    return float(classic), float(robust)


@dataclass
class MedianPolish:
    overall: float
    row: Array
    col: Array
    residuals: Array


def median_polish(grid: Array, *, eps: float = 0.01, maxiter: int = 10) -> MedianPolish:
    """Tukey's median polish, as R's ``medpolish`` (rows first, NaN-aware)."""
    z = np.array(grid, dtype=float)
    nr, nc = z.shape
    overall = 0.0
    row = np.zeros(nr)
    col = np.zeros(nc)
    old = 0.0
    for _ in range(maxiter):
        with np.errstate(all="ignore"):
            rdelta = _nanmedian_rows(z)
        z -= rdelta[:, None]
        row += rdelta
        delta = float(np.nanmedian(col)) if np.isfinite(col).any() else 0.0
        col -= delta
        overall += delta
        cdelta = _nanmedian_rows(z.T)
        z -= cdelta[None, :]
        col += cdelta
        delta = float(np.nanmedian(row)) if np.isfinite(row).any() else 0.0
        row -= delta
        overall += delta
        new = float(np.nansum(np.abs(z)))
        if abs(new - old) < eps * new or new == 0:
            break
        old = new
    return MedianPolish(overall=overall, row=row, col=col, residuals=z)


def _nanmedian_rows(z: Array) -> Array:
    out = np.zeros(z.shape[0])
    for i, line in enumerate(z):
        finite = line[np.isfinite(line)]
        out[i] = float(np.median(finite)) if len(finite) else 0.0
    return out
