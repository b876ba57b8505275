"""The LL.4 fit of many curves at once, step by step (SCIENCE.md §3, drc's ``drm(LL.4())``).

1. Clean each curve (finite, dose ≥ 0); a curve that cannot be fitted says why.
2. Starts: the best grid point(s) of a variable-projection grid over ``(b, log e)``, and
   drc's self-starter.
3. Polish every start by Levenberg–Marquardt (:func:`analysis.ll4_solver.least_squares`);
   a later start wins when it converged and lowers the RSS by more than 1e-12.
4. When the winner runs off (a parameter leaves plausible bounds: the data do not pin all
   four, typically a step that only the top dose shows), refit inside the bounds from every
   end point of step 3, the two best grid points and the two best bounded grid points,
   keeping the lowest RSS: the IC50 is then only bracketed.
5. Statistics: F-test against the flat line, drc's observed-Hessian covariance, then the
   response call (:func:`analysis.ll4_result.classify`).

Curves are stacked (padded) and each step runs on the whole stack; each curve remains its
own problem, so its result is the same whatever else is in the batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import special

from analysis import ll4_solver as solver
from analysis.ll4 import Array, Mask, log_dose
from analysis.ll4_result import B_MAX, Y_LIMIT, LL4Fit, ResponseRules, classify, classify_unfitted

Index = npt.NDArray[np.intp]
CHUNK = 2048  # curves stacked per batch
BOUNDED_MESSAGE = (
    "bounded fit: the data do not determine all four parameters "
    "(too few doses on the slope); the IC50 is only bracketed"
)


@dataclass
class Curve:
    """One curve on its way through the batch: cleaned data and the fit being filled in."""

    x: Array
    y: Array
    lx: Array
    zero: Mask
    fit: LL4Fit
    control: float | None


def prepare(dose: npt.ArrayLike, response: npt.ArrayLike, control: float | None) -> Curve:
    """Clean one curve; one that cannot be fitted is classified here (``fit.message`` set)."""
    x = np.asarray(dose, dtype=float).ravel()
    y = np.asarray(response, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError("dose and response differ in length")
    keep = np.isfinite(x) & np.isfinite(y) & (x >= 0)
    x, y = x[keep], y[keep]
    n = len(y)
    pos = x[x > 0]
    fit = LL4Fit(converged=False, n=n)
    if len(pos):
        fit.dose_min, fit.dose_max = float(pos.min()), float(pos.max())
    distinct = len(np.unique(pos))
    if n < 5 or distinct < 3:
        fit.message = f"too few points to fit ({n} wells, {distinct} positive doses)"
    elif float(np.max(np.abs(y))) > Y_LIMIT:
        fit.message = f"responses beyond ±{Y_LIMIT:.0e}: not measurements that can be fitted"
    elif float(np.ptp(y)) == 0.0:
        fit.message = "every response is the same value: there is nothing to fit"
    lx, zero = log_dose(x)
    if fit.message:
        classify_unfitted(fit, x, y, control)
    return Curve(x, y, lx, zero, fit, control)


def fit_prepared(
    curves: Sequence[Curve], rules: ResponseRules, level: float, n_starts: int = 1
) -> None:
    """Fit every prepared curve that can be fitted, in batches of similar length."""
    pending = sorted((c for c in curves if not c.fit.message), key=lambda c: len(c.y))
    for start in range(0, len(pending), CHUNK):
        _fit_batch(pending[start : start + CHUNK], rules, level, n_starts)


def canonical(p: Array) -> Array:
    """drc's form of the same curves (rows): c the lower plateau, d the upper, b's sign the
    direction. LL.4 is symmetric: (b, c, d, e) and (−b, d, c, e) are one curve, at dose 0 too.
    """
    swap = p[:, 1] > p[:, 2]
    out = p.copy()
    out[swap] = p[swap][:, [0, 2, 1, 3]] * np.array([-1.0, 1.0, 1.0, 1.0])
    return out


def bounds(s: solver.Stack) -> tuple[Array, Array]:
    """The box of the bounded refit: slopes ±20, plateaus within half the response range
    beyond the data, log e within two decades beyond the tested doses."""
    ymin, ymax = s.y_range()
    rng = np.maximum(ymax - ymin, 1e-9)
    lo_y, hi_y = ymin - 0.5 * rng, ymax + 0.5 * rng
    lo_x, hi_x = s.lo - math.log(100.0), s.hi + math.log(100.0)
    lower = np.stack([np.full_like(lo_y, -B_MAX), lo_y, lo_y, lo_x], axis=1)
    upper = np.stack([np.full_like(hi_y, B_MAX), hi_y, hi_y, hi_x], axis=1)
    return lower, upper


def _best_of(owner: Index, rss: Array, ok: Mask, k: int, *, prefer_converged: bool) -> Index:
    """Per curve, the index of its winning problem (problems listed in start order), -1
    for none. Unbounded polish: a later start wins if it converged and beats the best so
    far by more than 1e-12 (or the best so far did not converge). Bounded: lowest RSS."""
    best = np.full(k, -1, dtype=np.intp)
    for q, i in enumerate(owner.tolist()):
        j = int(best[i])
        if j < 0:
            best[i] = q
        elif prefer_converged:
            if ok[q] and (not ok[j] or rss[q] < rss[j] - 1e-12):
                best[i] = q
        elif rss[q] < rss[j]:
            best[i] = q
    return best


@dataclass
class _Polished:
    """Each curve's winning unbounded fit, and the end point of every start."""

    p: Array
    rss: Array
    ok: Mask
    fitted: Mask
    owner: Index  # the curve of each start
    ends: Array  # (starts, 4)


def _polish(
    stack: solver.Stack, n_starts: int, grid: Array, grid_ok: Mask, lower: Array, upper: Array
) -> _Polished:
    k = len(stack)
    drc, drc_ok = solver.self_starts(stack)
    owner_list: list[int] = []
    start_list: list[Array] = []
    for i in range(k):
        for j in range(n_starts):
            if grid_ok[i, j]:
                owner_list.append(i)
                start_list.append(grid[i, j])
        if drc_ok[i]:
            owner_list.append(i)
            start_list.append(drc[i])
    owner = np.asarray(owner_list, dtype=np.intp)
    out = _Polished(
        np.full((k, 4), np.nan), np.full(k, np.nan), np.zeros(k, bool), np.zeros(k, bool),
        owner, np.zeros((0, 4)),
    )  # fmt: skip
    if not len(owner):
        return out
    # A start whose (b, log e) leave the box is running off: it ends there (the refit
    # inside the box decides), instead of crawling on for hundreds of steps.
    ends, rss, ok = solver.least_squares(
        stack.take(owner), np.array(start_list), escape=(lower[owner], upper[owner]), owner=owner
    )
    rss = np.where(np.isfinite(rss), rss, np.inf)
    best = _best_of(owner, rss, ok, k, prefer_converged=True)
    out.fitted = best >= 0
    won = best[out.fitted]
    out.p[out.fitted], out.rss[out.fitted], out.ok[out.fitted] = ends[won], rss[won], ok[won]
    out.p[out.fitted] = canonical(out.p[out.fitted])
    out.ends = ends
    return out


def _refit_bounded(
    stack: solver.Stack,
    runaway: Index,
    polished: _Polished,
    grid: Array,
    grid_ok: Mask,
    lower: Array,
    upper: Array,
) -> tuple[Array, Array, Mask]:
    """Bounded refits of the ``runaway`` curves: (p, rss, converged) per runaway curve."""
    extra = solver.bounded_grid_starts(stack.take(runaway), lower[runaway], upper[runaway], 2)
    owner_list: list[int] = []
    start_list: list[Array] = []
    for r, i in enumerate(runaway.tolist()):
        ends = canonical(polished.ends[polished.owner == i])
        cands = [*ends, *(grid[i, j] for j in range(2) if grid_ok[i, j]), *extra[r]]
        for cand in cands:
            if np.all(np.isfinite(cand)):
                owner_list.append(r)
                start_list.append(np.clip(cand, lower[i] + 1e-9, upper[i] - 1e-9))
    owner = np.asarray(owner_list, dtype=np.intp)
    rows = runaway[owner]
    ends_b, rss, ok = solver.least_squares(
        stack.take(rows), np.array(start_list), lower[rows], upper[rows], owner=owner
    )
    rss = np.where(np.isfinite(rss), rss, np.inf)
    best = _best_of(owner, rss, ok, len(runaway), prefer_converged=False)
    return canonical(ends_b[best]), rss[best], ok[best]


def _fit_batch(batch: list[Curve], rules: ResponseRules, level: float, n_starts: int) -> None:
    stack = solver.Stack.of([(c.lx, c.y) for c in batch])
    grid, grid_ok = solver.grid_starts(stack, max(n_starts, 2))
    lower, upper = bounds(stack)
    polished = _polish(stack, n_starts, grid, grid_ok, lower, upper)
    for i in np.flatnonzero(~polished.fitted):
        batch[i].fit.message = "no starting point"
        classify_unfitted(batch[i].fit, batch[i].x, batch[i].y, batch[i].control)
    p, rss, ok = polished.p, polished.rss, polished.ok
    with np.errstate(invalid="ignore"):
        inside = np.all(np.isfinite(p) & (p >= lower) & (p <= upper), axis=1)
    runaway = np.flatnonzero(polished.fitted & ~inside)
    if len(runaway):
        p[runaway], rss[runaway], ok[runaway] = _refit_bounded(
            stack, runaway, polished, grid, grid_ok, lower, upper
        )
        for i in runaway:
            batch[i].fit.bounded = True
            batch[i].fit.message = BOUNDED_MESSAGE
    rows = np.flatnonzero(polished.fitted)
    if len(rows):
        _statistics([batch[i] for i in rows], stack.take(rows), p[rows], rss[rows], ok[rows])
        for i in rows:
            classify(batch[i].fit, rules, level, batch[i].x)


def _statistics(curves: list[Curve], stack: solver.Stack, p: Array, rss: Array, ok: Mask) -> None:
    """RSE, log-likelihood, F-test against the flat line, drc's observed-Hessian vcov."""
    n = np.array([len(c.y) for c in curves])
    df = n - 4
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        e = np.where(p[:, 3] < 700, np.exp(np.minimum(p[:, 3], 700)), np.inf)
        w = stack.w
        ybar = (stack.y * w).sum(1) / n
        rss0 = (((stack.y - ybar[:, None]) * w) ** 2).sum(1)
        dof = np.maximum(df, 1)
        f_stat = np.maximum((rss0 - rss) / 3.0, 0.0) / (rss / dof)
        p_val = special.fdtrc(3, dof, f_stat)
        chi2 = n * np.log(rss0 / rss)
    converged = ok & np.isfinite(e)
    want = np.flatnonzero(converged & (df > 0))
    vcov = np.full((len(curves), 4, 4), np.nan)
    if len(want):
        inv = _inverse(solver.hessian(stack.take(want), p[want]))
        scale = np.ones((len(want), 4))
        scale[:, 3] = e[want]
        sigma2 = 2.0 * rss[want] / df[want]
        vcov[want] = sigma2[:, None, None] * inv * scale[:, :, None] * scale[:, None, :]
    for q, item in enumerate(curves):
        fit = item.fit
        fit.b, fit.c, fit.d = (float(v) for v in p[q, :3])
        fit.e = float(e[q])
        fit.rss, fit.df = float(rss[q]), int(df[q])
        fit.rse = math.sqrt(fit.rss / fit.df) if fit.df > 0 else math.nan
        fit.loglik = (
            -0.5 * fit.n * (math.log(2 * math.pi) + math.log(max(fit.rss, 1e-300) / fit.n) + 1.0)
        )
        fit.flat_level = float(item.y.mean())  # the flat model (what a "none" curve is drawn as)
        if fit.df > 0 and fit.rss > 0:
            fit.no_effect_f = float(f_stat[q])
            fit.no_effect_p = float(p_val[q])
            fit.no_effect_chi2 = float(chi2[q])
        elif fit.rss == 0 and rss0[q] > 0:
            fit.no_effect_f, fit.no_effect_p = math.inf, 0.0
        fit.converged = bool(converged[q])
        if fit.converged and fit.df > 0:
            fit.vcov = vcov[q]
            fit.se = {
                name: float(math.sqrt(v)) if v >= 0 else math.nan
                for name, v in zip("bcde", np.diag(vcov[q]), strict=True)
            }
        else:
            fit.se = dict.fromkeys("bcde", math.nan)
        control = item.control
        if control is None:
            control = float(item.y[item.zero].mean()) if item.zero.any() else fit.d
        fit.control = control


def _inverse(hess: Array) -> Array:
    """Inverse of each Hessian; NaN for a singular one."""
    try:
        return np.asarray(np.linalg.inv(hess), dtype=float)
    except np.linalg.LinAlgError:
        out = np.full_like(hess, np.nan)
        for i, h in enumerate(hess):
            try:
                out[i] = np.linalg.inv(h)
            except np.linalg.LinAlgError:
                continue
        return out
