"""Small robust statistics used by the plate checks."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import special

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


def ranks(values: Array) -> Array:
    """1-based ranks, ties given their average rank (scipy's ``rankdata``, method "average")."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    first = np.r_[True, sorted_values[1:] != sorted_values[:-1]]
    group = np.cumsum(first) - 1
    starts = np.flatnonzero(first)
    ends = np.r_[starts[1:], len(values)]
    average = (starts + ends + 1) / 2.0  # ranks starts+1 … ends, averaged
    out = np.empty(len(values))
    out[order] = average[group]
    return out


def _exact_u_sf(u: float, n1: int, n2: int) -> float:
    """P(U ≥ u) under H0 without ties, by counting (small samples only)."""
    # counts[k][m]: number of arrangements of k a's and m b's with U = index
    size = n1 * n2 + 1
    table: dict[tuple[int, int], npt.NDArray[np.float64]] = {}

    def counts(k: int, m: int) -> npt.NDArray[np.float64]:
        if (k, m) in table:
            return table[k, m]
        out = np.zeros(size)
        if k == 0 or m == 0:
            out[0] = 1.0
        else:
            # the largest value is an a (it beats all m b's) or a b
            with_a = counts(k - 1, m)
            out[m:] += with_a[: size - m]
            out += counts(k, m - 1)
        table[k, m] = out
        return out

    dist = counts(n1, n2)
    total = dist.sum()
    return float(dist[math.ceil(u - 1e-9) :].sum() / total)


def mann_whitney_p(a: Array, b: Array) -> float:
    """Two-sided Mann–Whitney U p-value, as scipy's ``mannwhitneyu`` (method "auto").

    Exact when the smaller sample has ≤ 8 values and there are no ties, else the normal approximation with
    tie correction and continuity correction. NaN when either side has fewer than 3 values.
    """
    n1, n2 = len(a), len(b)
    if n1 < 3 or n2 < 3:
        return math.nan
    both = np.concatenate([np.asarray(a, dtype=float), np.asarray(b, dtype=float)])
    r = ranks(both)
    u1 = float(r[:n1].sum() - n1 * (n1 + 1) / 2)
    u2 = n1 * n2 - u1
    ties = len(np.unique(both)) < len(both)
    if min(n1, n2) <= 8 and not ties:
        return min(1.0, 2.0 * _exact_u_sf(max(u1, u2), n1, n2))
    n = n1 + n2
    _, tie_counts = np.unique(both, return_counts=True)
    tie_term = float((tie_counts**3 - tie_counts).sum()) / (n * (n - 1))
    sd = math.sqrt(n1 * n2 / 12.0 * ((n + 1) - tie_term))
    if sd == 0:
        return 1.0
    z = (max(u1, u2) - n1 * n2 / 2.0 - 0.5) / sd
    return min(1.0, float(2.0 * special.ndtr(-z)))


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
    """Median of the finite values of each row; 0 for a row without any."""
    finite = np.isfinite(z)
    filled = np.where(finite, z, np.inf)  # sorted after every finite value
    ordered = np.sort(filled, axis=1)
    counts = finite.sum(axis=1)
    rows = np.arange(z.shape[0])
    lo = np.maximum((counts - 1) // 2, 0)
    hi = np.maximum(counts // 2, 0)
    with np.errstate(invalid="ignore"):
        out = (ordered[rows, lo] + ordered[rows, hi]) / 2.0
    return np.where(counts > 0, out, 0.0)
