"""Position effects fitted within groups of wells that should agree, and α split over a family.

The model for the judged wells of a plate (``analysis.wellgroups``) is

    ratioᵢ = α_g(i) + Σₐ βₐ · xₐᵢ + σᵢ εᵢ

with one free level α_g per group of wells that should agree (so nothing between groups,
which is biology, enters the estimates), position covariates xₐ (row and column position
0 … 1 end to end, outer-ring membership) and each well's expected noise σᵢ (the plate's own
noise model at the well's level). The fit is a Huber M-fit: residuals beyond ±``clip`` σ
are pulled in and the fit repeated, so an outlier well has bounded influence while the
position effects are kept whole. Each βₐ gets Huber's t (variance Σψ²/(n − p)/(mean ψ′)²,
with his small-sample factor) on n − groups − covariates degrees of freedom.

Why a t and not a permutation of wells within groups: along the axis that the dose series
runs on, only two or three groups (the untreated wells, the plateau doses) carry the
contrast. Permuting full-model residuals there (ter Braak) was 2–4× too liberal on clean
simulated plates; permuting the wells themselves is exact but gave up 8–10 points of
power. The Huber t kept its level on both noise models and every layout family
(docs/qc_calibration.md has the figures), and the bench re-measures it on every run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import special

Array = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

HUBER_CLIP = 1.5  # in units of each well's σ (Huber's 1.345 is 95 % efficient; close)
HUBER_STEPS = 8


@dataclass(frozen=True)
class ContrastTests:
    """One entry per covariate (in the order given)."""

    estimate: Array  # βₐ: change in ratio per unit of the covariate (end to end for positions)
    se: Array
    p: Array  # two-sided p-value (NaN where the covariate is not estimable)
    info: Array  # within-group information, 1 / Var(βₐ) in units of σ (0: not estimable)
    share: Array  # share of the covariate's (σ-weighted) variation within groups (0 … 1)
    df: int = 0


def _center(values: Array, starts: IntArray, counts: IntArray) -> Array:
    """Subtract each group's mean (groups are contiguous runs; works column-wise)."""
    means = np.add.reduceat(values, starts, axis=0) / counts.reshape(
        (-1,) + (1,) * (values.ndim - 1)
    )
    return np.asarray(values - np.repeat(means, counts, axis=0))


def _group_median(values: Array, starts: IntArray, counts: IntArray) -> Array:
    medians = [float(np.median(values[s : s + c])) for s, c in zip(starts, counts, strict=True)]
    return np.repeat(np.asarray(medians, dtype=float), counts)


def within_group_test(
    ratio: Array,
    group: IntArray,
    sigma: Array,
    covariates: Array,
    *,
    clip: float = HUBER_CLIP,
    min_share: float = 1e-6,
) -> ContrastTests:
    """Fit and test every covariate (columns of ``covariates``, n × q); ``group`` sorted."""
    n, q = covariates.shape
    nan = np.full(q, np.nan)
    if n == 0:
        return ContrastTests(nan, nan, nan, np.zeros(q), np.zeros(q))
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    counts = np.diff(np.r_[starts, n])
    # standardised responses and covariates (σ is constant within a group, or nearly)
    y = _center((ratio - _group_median(ratio, starts, counts)) / sigma, starts, counts)
    xw = covariates / sigma[:, None]
    xc = _center(xw, starts, counts)
    within = (xc**2).sum(axis=0)
    total = ((xw - xw.mean(axis=0)) ** 2).sum(axis=0)
    share = np.where(total > 0, within / np.where(total > 0, total, 1.0), 0.0)
    usable = np.flatnonzero(share > min_share)
    df = n - len(starts) - len(usable)
    estimate, se, p, info = nan.copy(), nan.copy(), nan.copy(), np.zeros(q)
    if len(usable) == 0 or df < 2:
        return ContrastTests(estimate, se, p, info, share, max(df, 0))
    x = xc[:, usable]
    try:
        inverse = np.asarray(np.linalg.inv(x.T @ x), dtype=float)
    except np.linalg.LinAlgError:
        return ContrastTests(estimate, se, p, info, share, df)
    beta = inverse @ (x.T @ y)
    resid = y - x @ beta
    for _ in range(HUBER_STEPS):  # Huber's winsorised-residual iteration
        step = inverse @ (x.T @ _center(np.clip(resid, -clip, clip), starts, counts))
        beta = beta + step
        resid = y - x @ beta
        if float(np.max(np.abs(step))) < 1e-8:
            break
    inside = max(float(np.mean(np.abs(resid) < clip)), 0.5)  # mean ψ′
    psi = _center(np.clip(resid, -clip, clip), starts, counts)
    k = len(usable)
    small_sample = 1.0 + k / n * (1.0 - inside) / inside  # Huber (1981) K
    s2 = small_sample**2 * max(float(psi @ psi), 1e-300) / df / inside**2
    var = s2 * np.diag(inverse)
    t = beta / np.sqrt(var)
    estimate[usable] = beta  # y is in units of σ and x in units of 1/σ: β is a ratio
    se[usable] = np.sqrt(var)
    p[usable] = 2.0 * special.stdtr(df, -np.abs(t))
    info[usable] = 1.0 / np.diag(inverse)
    return ContrastTests(estimate, se, p, info, share, df)


def normal_p(z: float) -> float:
    """Two-sided normal tail (used to plan α splits, never to decide)."""
    return float(2.0 * special.ndtr(-abs(z)))


def split_alpha(alpha: float, expected_z: list[float], floor: float = 0.25) -> list[float]:
    """Split ``alpha`` over tests so that the weakest still has the most power (maximin).

    ``expected_z`` is each test's expected z at the effect the family is meant to catch,
    from the layout and the plate's noise level alone (never from the effects seen), so the
    family's error stays at ``alpha`` (weighted Bonferroni: Σ αₐ = alpha). Every test keeps
    at least ``floor``/k of ``alpha``.
    """
    k = len(expected_z)
    if k == 0:
        return []
    if k == 1:
        return [alpha]

    def alphas(power_z: float) -> list[float]:
        return [normal_p(z - power_z) if z > power_z else 1.0 for z in expected_z]

    lo, hi = -10.0, max(expected_z)
    for _ in range(60):  # the common power Φ(power_z) at which the α's add up to alpha
        mid = (lo + hi) / 2
        if sum(alphas(mid)) > alpha:
            hi = mid
        else:
            lo = mid
    raw = alphas(lo)
    total = sum(raw)
    # floor/k of alpha for every test, the rest split as the maximin split says
    return [alpha * floor / k + alpha * (1 - floor) * a / total for a in raw]
