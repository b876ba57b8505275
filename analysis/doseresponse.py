"""Four-parameter log-logistic (drc ``LL.4``) dose-response fits.

    f(x) = c + (d - c) / (1 + exp(b (ln x - ln e)))

fitted as drc does (SCIENCE.md §3): ordinary least squares on the individual observations,
parametrised in ``log e``; started from many points (a variable-projection grid over
``(b, log e)`` in which ``c, d`` are solved exactly, plus drc's own self-starter) and polished
by Levenberg–Marquardt; standard errors from the observed Hessian of the residual sum of
squares, ``vcov = 2 s² H⁻¹``; drc's fls and delta 95 % CIs for the IC50 on ``t(n − 4)``; an
F-test against a flat line for the missing-response call. When the optimum runs off (the data
do not pin all four parameters), the curve is refitted inside plausible bounds.

:func:`fit_ll4_many` fits many curves at once (the numerics are stacked and vectorised in
:mod:`analysis.ll4_solver`; each curve is still its own problem), :func:`fit_ll4` is one curve.
Pure functions: no I/O, no ``scipy.optimize`` on the import path.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy import special

from analysis import ll4_solver as solver
from analysis.ll4 import (
    ZERO_LOG,
    Array,
    Mask,
    band_of,
    hessian_rss,
    jacobian,
    ll4,
    log_dose,
    residuals,
    t_quantile,
)

__all__ = [
    "ZERO_LOG",
    "Array",
    "LL4Fit",
    "Mask",
    "ResponseRules",
    "band_of",
    "classify",
    "fit_ll4",
    "fit_ll4_many",
    "hessian_rss",
    "jacobian",
    "ll4",
    "log_dose",
    "residuals",
    "t_quantile",
]

Response = Literal["yes", "partial", "none"]
Qualifier = Literal["=", ">", "<"]

@dataclass(frozen=True)
class ResponseRules:
    """When a curve counts as a dose response (SCIENCE.md §3, judgement defaults)."""

    p_threshold: float = 0.05  # F-test against a flat line
    min_effect: float = 0.25  # below this effect at the top dose: no response
    partial_below: float = 0.50  # significant, but the kill stays below this: partial


@dataclass
class LL4Fit:
    """The result of one LL.4 fit, with everything a report or a QC rule needs."""

    converged: bool
    n: int
    b: float = math.nan
    c: float = math.nan
    d: float = math.nan
    e: float = math.nan
    se: dict[str, float] = field(default_factory=dict)
    vcov: Array | None = None  # (b, c, d, e)
    rss: float = math.nan
    df: int = 0
    rse: float = math.nan
    loglik: float = math.nan
    no_effect_f: float = math.nan
    no_effect_p: float = math.nan
    no_effect_chi2: float = math.nan
    ic50: float | None = None
    ic50_ci: tuple[float, float] | None = None
    ic50_qualifier: Qualifier = "="
    absolute_ic50: float | None = None
    absolute_ic50_qualifier: Qualifier | None = None
    control: float = math.nan
    top_dose_effect: float = math.nan  # fraction of control lost at the highest dose
    max_effect: float = math.nan  # largest fraction of control lost over the tested doses
    response: Response = "none"
    dose_min: float = math.nan  # lowest positive dose
    dose_max: float = math.nan
    message: str = ""
    bounded: bool = False  # refitted inside bounds: the data did not pin all parameters
    ic50_ci_method: Literal["fls", "bracket"] | None = None
    ic50_ci_delta: tuple[float, float] | None = None  # drc's interval = "delta" (may be < 0)
    flat_level: float = math.nan  # the flat model's level (mean response): used when "none"

    @property
    def slope_at_bound(self) -> bool:
        """The slope sits on the bounded fit's limit: it is a bound, not a finding."""
        return self.bounded and math.isfinite(self.b) and abs(self.b) >= 0.999 * _B_MAX

    def predict(self, dose: npt.ArrayLike) -> Array:
        return ll4(np.asarray(dose, dtype=float), self.b, self.c, self.d, self.e)

    def band(self, dose: npt.ArrayLike, level: float = 0.95) -> tuple[Array, Array]:
        """Pointwise confidence band of the fitted mean (delta method on t(n − 4))."""
        x = np.asarray(dose, dtype=float)
        if self.vcov is None or not math.isfinite(self.e) or self.e <= 0:
            mean = self.predict(x)
            return mean, mean
        return band_of((self.b, self.c, self.d, self.e), self.vcov, self.df, x, level)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of DESIGN.md §5.1 (``fit --json``), plus a few extras."""

        def num(value: float | None) -> float | None:
            if value is None or not math.isfinite(value):
                return None
            return float(value)

        return {
            "model": "LL.4",
            "converged": self.converged,
            "n": self.n,
            "b": num(self.b),
            "c": num(self.c),
            "d": num(self.d),
            "e": num(self.e),
            "se": {k: num(v) for k, v in self.se.items()},
            "ic50": num(self.ic50),
            "ic50_ci": [num(v) for v in self.ic50_ci] if self.ic50_ci else None,
            "ic50_qualifier": self.ic50_qualifier,
            "ic50_ci_method": self.ic50_ci_method,
            "ic50_ci_delta": [num(v) for v in self.ic50_ci_delta] if self.ic50_ci_delta else None,
            "absolute_ic50": num(self.absolute_ic50),
            "absolute_ic50_qualifier": self.absolute_ic50_qualifier,
            "rse": num(self.rse),
            "df": self.df,
            "loglik": num(self.loglik),
            "no_effect_p": num(self.no_effect_p),
            "no_effect_f": num(self.no_effect_f),
            "no_effect_chi2": num(self.no_effect_chi2),
            "top_dose_effect": num(self.top_dose_effect),
            "max_effect": num(self.max_effect),
            "response": self.response,
            "dose_range": [num(self.dose_min), num(self.dose_max)],
            "bounded": self.bounded,
            "slope_at_bound": self.slope_at_bound,
            "flat_level": num(self.flat_level),
            "vcov": (
                [[num(v) for v in row] for row in self.vcov.tolist()]
                if self.vcov is not None and np.all(np.isfinite(self.vcov))
                else None
            ),
            "message": self.message,
        }


_B_MAX = 20.0
_Y_LIMIT = 1e100  # |response| beyond this overflows the sums of squares
_CHUNK = 2048  # curves stacked per batch


@dataclass
class _Curve:
    """One curve on its way through the batch: cleaned data and the fit being filled in."""

    x: Array
    y: Array
    lx: Array
    zero: Mask
    fit: LL4Fit
    control: float | None


def fit_ll4(
    dose: npt.ArrayLike,
    response: npt.ArrayLike,
    *,
    control: float | None = None,
    rules: ResponseRules | None = None,
    level: float = 0.95,
    n_starts: int = 1,
) -> LL4Fit:
    """Fit LL.4 to individual observations (``dose`` ≥ 0; 0 is the untreated control).

    ``control`` is the response that counts as 100 % (100 for % of untreated data); when
    left out it is the mean response at dose 0, or the fitted upper plateau.
    """
    return fit_ll4_many(
        [(dose, response)], controls=[control], rules=rules, level=level, n_starts=n_starts
    )[0]


def fit_ll4_many(
    curves: Iterable[tuple[npt.ArrayLike, npt.ArrayLike]],
    *,
    controls: Sequence[float | None] | None = None,
    rules: ResponseRules | None = None,
    level: float = 0.95,
    n_starts: int = 1,
) -> list[LL4Fit]:
    """:func:`fit_ll4` of every ``(dose, response)`` curve, the numerics stacked.

    The result of a curve is the one :func:`fit_ll4` gives it alone (each curve is its own
    least-squares problem; the batch only shares numpy calls). ``controls`` gives each
    curve's 100 % (None: the mean at dose 0, or the fitted upper plateau).
    """
    rules = rules or ResponseRules()
    prepared = [
        _prepare(dose, response, None if controls is None else controls[i])
        for i, (dose, response) in enumerate(curves)
    ]
    pending = sorted((c for c in prepared if not c.fit.message), key=lambda c: len(c.y))
    for start in range(0, len(pending), _CHUNK):
        _fit_batch(pending[start : start + _CHUNK], rules, level, n_starts)
    return [c.fit for c in prepared]


def _prepare(dose: npt.ArrayLike, response: npt.ArrayLike, control: float | None) -> _Curve:
    """Clean one curve; a curve that cannot be fitted is classified here and then skipped."""
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
    elif float(np.max(np.abs(y))) > _Y_LIMIT:
        fit.message = f"responses beyond ±{_Y_LIMIT:.0e}: not measurements that can be fitted"
    elif float(np.ptp(y)) == 0.0:
        fit.message = "every response is the same value: there is nothing to fit"
    lx, zero = log_dose(x)
    curve = _Curve(x, y, lx, zero, fit, control)
    if fit.message:
        _classify_unfitted(fit, x, y, control)
    return curve


def _canonical(p: Array) -> Array:
    """drc's form of the same curve: c the lower plateau, d the upper, b's sign the direction.

    LL.4 is symmetric: (b, c, d, e) and (−b, d, c, e) are one curve, at dose 0 too.
    """
    swap = p[:, 1] > p[:, 2]
    out = p.copy()
    out[swap] = p[swap][:, [0, 2, 1, 3]] * np.array([-1.0, 1.0, 1.0, 1.0])
    return out


def _bounds(s: solver.Stack) -> tuple[Array, Array]:
    """The box of the bounded refit: slopes ±20, plateaus within half the response range
    beyond the data, log e within two decades beyond the tested doses."""
    ymin, ymax = s.y_range()
    rng = np.maximum(ymax - ymin, 1e-9)
    lo_y, hi_y = ymin - 0.5 * rng, ymax + 0.5 * rng
    lo_x, hi_x = s.lo - math.log(100.0), s.hi + math.log(100.0)
    lower = np.stack([np.full_like(lo_y, -_B_MAX), lo_y, lo_y, lo_x], axis=1)
    upper = np.stack([np.full_like(hi_y, _B_MAX), hi_y, hi_y, hi_x], axis=1)
    return lower, upper


def _best_of(
    owner: npt.NDArray[np.intp], rss: Array, ok: Mask, k: int, *, prefer_converged: bool
) -> npt.NDArray[np.intp]:
    """Per curve, the index of its winning problem (problems listed in start order).

    Unbounded polish: a later start wins if it converged and beats the best so far by more
    than 1e-12 (or the best so far did not converge). Bounded refit: the lowest RSS wins.
    """
    best = np.full(k, -1)
    for q in range(len(owner)):
        i = owner[q]
        j = best[i]
        if j < 0:
            best[i] = q
        elif prefer_converged:
            if ok[q] and (not ok[j] or rss[q] < rss[j] - 1e-12):
                best[i] = q
        elif rss[q] < rss[j]:
            best[i] = q
    return best


def _fit_batch(batch: list[_Curve], rules: ResponseRules, level: float, n_starts: int) -> None:
    stack = solver.Stack.of([(c.lx, c.y) for c in batch])
    k = len(batch)
    grid, grid_ok = solver.grid_starts(stack, max(n_starts, 2))
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
    owner = q_owner = np.asarray(owner_list, dtype=np.intp)
    qp = np.zeros((0, 4))
    fitted = np.zeros(k, dtype=bool)
    p = np.full((k, 4), np.nan)
    rss = np.full(k, np.nan)
    ok = np.zeros(k, dtype=bool)
    lower, upper = _bounds(stack)
    if len(owner):
        qp, qrss, qok = solver.least_squares(
            stack.take(owner), np.array(start_list), escape=(lower[owner], upper[owner])
        )
        qrss = np.where(np.isfinite(qrss), qrss, np.inf)
        best = _best_of(owner, qrss, qok, k, prefer_converged=True)
        fitted = best >= 0
        p[fitted], rss[fitted], ok[fitted] = qp[best[fitted]], qrss[best[fitted]], qok[best[fitted]]
    for i in np.flatnonzero(~fitted):
        batch[i].fit.message = "no starting point"
        _classify_unfitted(batch[i].fit, batch[i].x, batch[i].y, batch[i].control)
    p[fitted] = _canonical(p[fitted])
    with np.errstate(invalid="ignore"):
        inside = np.all(np.isfinite(p) & (p >= lower) & (p <= upper), axis=1)
    runaway = np.flatnonzero(fitted & ~inside)
    if len(runaway):
        # The data do not pin all four parameters (typically a step: only the top dose
        # acts). Refit inside plausible bounds rather than report a runaway optimum: from
        # every unbounded end point and the best grid points (free and bounded), keeping
        # the lowest RSS.
        extra = solver.bounded_grid_starts(stack.take(runaway), lower[runaway], upper[runaway], 2)
        ends = {int(i): [qp[q] for q in np.flatnonzero(q_owner == i)] for i in runaway}
        owner_list, start_list = [], []
        for r, i in enumerate(runaway):
            cands = [_canonical(e[None, :])[0] for e in ends[int(i)]]
            cands += [grid[i, j] for j in range(2) if grid_ok[i, j]]
            cands += list(extra[r])
            for cand in cands:
                if np.all(np.isfinite(cand)):
                    owner_list.append(i)
                    start_list.append(np.clip(cand, lower[i] + 1e-9, upper[i] - 1e-9))
        owner = np.asarray(owner_list, dtype=np.intp)
        qp, qrss, qok = solver.least_squares(
            stack.take(owner), np.array(start_list), lower[owner], upper[owner]
        )
        qrss = np.where(np.isfinite(qrss), qrss, np.inf)
        best = _best_of(owner, qrss, qok, k, prefer_converged=False)
        p[runaway] = _canonical(qp[best[runaway]])
        rss[runaway], ok[runaway] = qrss[best[runaway]], qok[best[runaway]]
        for i in runaway:
            batch[i].fit.bounded = True
            batch[i].fit.message = (
                "bounded fit: the data do not determine all four parameters "
                "(too few doses on the slope); the IC50 is only bracketed"
            )
    rows = np.flatnonzero(fitted)
    if len(rows):
        _statistics(batch, stack, rows, p, rss, ok, rules, level)


def _statistics(
    batch: list[_Curve],
    stack: solver.Stack,
    rows: npt.NDArray[np.intp],
    p: Array,
    rss: Array,
    ok: Mask,
    rules: ResponseRules,
    level: float,
) -> None:
    """F-test, observed-Hessian vcov, then each curve's LL4Fit and its response call."""
    n = np.array([len(batch[i].y) for i in rows])
    df = n - 4
    pr, rs = p[rows], rss[rows]
    le = pr[:, 3]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        e = np.where(le < 700, np.exp(np.minimum(le, 700)), np.inf)
        w = stack.w[rows]
        ybar = (stack.y[rows] * w).sum(1) / n
        rss0 = (((stack.y[rows] - ybar[:, None]) * w) ** 2).sum(1)
        dof = np.maximum(df, 1)
        f_stat = np.maximum((rss0 - rs) / 3.0, 0.0) / (rs / dof)
        p_val = special.fdtrc(3, dof, f_stat)
        chi2 = n * np.log(rss0 / rs)
    converged = ok[rows] & np.isfinite(e)
    want = np.flatnonzero(converged & (df > 0))
    vcov = np.full((len(rows), 4, 4), np.nan)
    if len(want):
        hess = solver.hessian(stack.take(rows[want]), pr[want])
        inv = _inverse(hess)
        scale = np.stack([np.ones(len(want)), np.ones(len(want)), np.ones(len(want)), e[want]], 1)
        vcov[want] = (
            (2.0 * rs[want] / df[want])[:, None, None]
            * inv
            * scale[:, :, None]
            * scale[:, None, :]
        )
    for q, i in enumerate(rows):
        item, fit = batch[i], batch[i].fit
        b, c, d, lei = (float(v) for v in pr[q])
        fit.b, fit.c, fit.d, fit.e = b, c, d, float(e[q])
        fit.rss, fit.df = float(rs[q]), int(df[q])
        fit.rse = math.sqrt(fit.rss / fit.df) if fit.df > 0 else math.nan
        fit.loglik = -0.5 * fit.n * (
            math.log(2 * math.pi) + math.log(max(fit.rss, 1e-300) / fit.n) + 1.0
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
            control = float(item.y[item.zero].mean()) if item.zero.any() else d
        fit.control = control
        classify(fit, rules, level, item.x)


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


def _absolute_ic50(b: float, c: float, d: float, e: float, level: float) -> float | None:
    """Dose at which the curve crosses ``level``; None when it never does."""
    if d == c or b == 0 or not (math.isfinite(e) and e > 0):
        return None
    g = (level - c) / (d - c)
    if not 0.0 < g < 1.0:
        return None
    exponent = math.log(e) + math.log(1.0 / g - 1.0) / b
    return math.exp(exponent) if exponent < 700 else math.inf




def _exp(value: float) -> float:
    """exp that saturates at inf instead of raising (a CI bound of an unpinned IC50)."""
    return math.exp(value) if value < 709.0 else math.inf


def _classify_unfitted(
    fit: LL4Fit, x: npt.NDArray[np.float64], y: Array, control: float | None
) -> LL4Fit:
    """A curve that could not be fitted claims nothing: no IC50, no response call figures."""
    fit.se = dict.fromkeys("bcde", math.nan)
    fit.response = "none"
    fit.converged = False
    fit.ic50, fit.ic50_ci, fit.ic50_qualifier = None, None, "="
    if control is None and (x <= 0).any():
        control = float(y[x <= 0].mean())
    fit.control = math.nan if control is None else control
    if len(y) and float(np.max(np.abs(y))) <= _Y_LIMIT:
        fit.flat_level = float(np.mean(y))
    return fit


def classify(fit: LL4Fit, rules: ResponseRules, level: float, x: Array) -> None:
    """Response call, qualifiers and the never-extrapolated IC50 (SCIENCE.md §3)."""
    doses = np.unique(x[x > 0])
    control = fit.control
    fitted = fit.predict(doses)
    if control and math.isfinite(control) and control != 0:
        fit.top_dose_effect = float(1.0 - fitted[-1] / control)
        fit.max_effect = float(np.max(1.0 - fitted / control))
    effect = abs(fit.top_dose_effect) if math.isfinite(fit.top_dose_effect) else 0.0
    significant = math.isfinite(fit.no_effect_p) and fit.no_effect_p < rules.p_threshold
    if not fit.converged or not significant or effect < rules.min_effect:
        fit.response = "none"
    elif fit.max_effect < rules.partial_below:
        fit.response = "partial"
    else:
        fit.response = "yes"

    lo, hi = fit.dose_min, fit.dose_max
    if fit.response == "none" or not math.isfinite(fit.e):
        fit.ic50, fit.ic50_qualifier, fit.ic50_ci = hi, ">", None
    elif fit.e > hi:
        fit.ic50, fit.ic50_qualifier, fit.ic50_ci = hi, ">", None
    elif fit.e < lo:
        fit.ic50, fit.ic50_qualifier, fit.ic50_ci = lo, "<", None
    else:
        fit.ic50, fit.ic50_qualifier = fit.e, "="
        se_e = fit.se.get("e", math.nan)
        if fit.bounded:
            # Only bracketed: the tested doses on either side of the half-way response.
            mid = (fit.c + fit.d) / 2
            side = (fitted > mid) if fit.b > 0 else (fitted < mid)
            before, after = doses[side], doses[~side]
            if len(before) and len(after):
                fit.ic50_ci = (float(before.max()), float(after.min()))
                fit.ic50_ci_method = "bracket"
        elif math.isfinite(se_e) and fit.df > 0:
            # drc interval = "fls": the delta interval of log e, back-transformed, so the
            # bounds are positive and as asymmetric as the data. drc's "delta" on e kept.
            t = t_quantile(fit.df, level)
            se_log_e = se_e / fit.e
            fit.ic50_ci = (fit.e * math.exp(-t * se_log_e), fit.e * _exp(t * se_log_e))
            fit.ic50_ci_method = "fls"
            fit.ic50_ci_delta = (fit.e - t * se_e, fit.e + t * se_e)

    if math.isfinite(control):
        absolute = _absolute_ic50(fit.b, fit.c, fit.d, fit.e, 0.5 * control)
        if absolute is None:
            fit.absolute_ic50, fit.absolute_ic50_qualifier = None, None
        elif absolute > hi:
            fit.absolute_ic50, fit.absolute_ic50_qualifier = hi, ">"
        elif absolute < lo:
            fit.absolute_ic50, fit.absolute_ic50_qualifier = lo, "<"
        else:
            fit.absolute_ic50, fit.absolute_ic50_qualifier = absolute, "="