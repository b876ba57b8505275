"""The LL.4 fitter as it was before issue 14 (analysis/doseresponse.py at commit 2b4e585),
kept verbatim below this docstring for the benchmark and the regression data only.

``python -m bench.fit --legacy N`` times it beside the current fitter and the curve_fit loop
on the same curves; ``python -m bench.fit --write-regression PATH`` regenerates
``tests/data/fit_regression.json`` (the "before" calls the regression test compares with).
Not used by platewatch itself. It imports scipy.optimize (MINPACK and trust-region-
reflective), as the old fitter did.

Original docstring:

Four-parameter log-logistic (drc ``LL.4``) dose-response fits.

    f(x) = c + (d - c) / (1 + exp(b (ln x - ln e)))

fitted as drc does (SCIENCE.md §3): ordinary least squares on the individual observations,
parametrised in ``log e``; started from many points (a variable-projection grid over
``(b, log e)`` in which ``c, d`` are solved exactly, plus drc's own self-starter) and polished
by Levenberg–Marquardt (MINPACK through :func:`scipy.optimize.leastsq`); standard errors
from the observed Hessian of the residual sum of squares, ``vcov = 2 s² H⁻¹``; a
delta-method 95 % CI for the IC50 on ``t(n − 4)``; an F-test against a flat line for the
missing-response call. Pure functions: no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy import optimize, special

Array = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]
Response = Literal["yes", "partial", "none"]
Qualifier = Literal["=", ">", "<"]

# Grid of slopes and of log-e offsets for the starting-point search. Negative slopes let
# rising curves be fitted too (plain tables); viability curves fall (b > 0).
_B_GRID = np.array([-4.0, -1.5, -0.6, 0.4, 0.7, 1.0, 1.5, 2.2, 3.2, 5.0, 8.0])
_LE_STEPS = 17


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


def ll4(x: Array, b: float, c: float, d: float, e: float) -> Array:
    """The LL.4 curve; ``x = 0`` gives the upper plateau ``d`` when ``b > 0``."""
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        z = b * (np.log(x) - math.log(e)) if e > 0 else np.full_like(x, np.nan)
        g = 1.0 / (1.0 + np.exp(z))
    g = np.where(x <= 0, 1.0 if b > 0 else 0.0, g)
    return np.asarray(c + (d - c) * g, dtype=float)


@lru_cache(maxsize=512)
def t_quantile(df: int, level: float = 0.95) -> float:
    return float(special.stdtrit(df, 0.5 + level / 2))


def band_of(
    params: tuple[float, float, float, float],
    vcov: Array,
    df: int,
    dose: Array,
    level: float = 0.95,
) -> tuple[Array, Array]:
    """Pointwise band of an LL.4 mean from its (b, c, d, e) covariance (delta method)."""
    b, c, d, e = params
    x = np.asarray(dose, dtype=float)
    mean = ll4(x, b, c, d, e)
    if df <= 0 or vcov.shape != (4, 4) or not np.all(np.isfinite(vcov)):
        return mean, mean
    lx, zero = log_dose(x)
    jac = jacobian(lx, zero, np.array([b, c, d, math.log(e)]))
    jac[:, 3] /= e  # d/de = d/dlog(e) / e
    var = np.einsum("ij,jk,ik->i", jac, vcov, jac)
    half = t_quantile(df, level) * np.sqrt(np.clip(var, 0, None))
    return mean - half, mean + half


ZERO_LOG = -1.0e6  # ln(0) stand-in: exp(b·(ZERO_LOG − ln e)) is exactly 0 or inf for |b| > 1e-3


def log_dose(dose: Array) -> tuple[Array, Mask]:
    """ln(dose), with dose 0 (the untreated control) mapped to ZERO_LOG, and the zero mask."""
    zero: Mask = dose <= 0
    with np.errstate(divide="ignore"):
        lx = np.where(zero, ZERO_LOG, np.log(np.where(zero, 1.0, dose)))
    return np.asarray(lx, dtype=float), zero


def _g_terms(lx: Array, zero: Mask, b: float, le: float) -> tuple[Array, Array, Array, Array]:
    """g, dg/dz, d²g/dz² and u = ln x − ln e. At ZERO_LOG, g is exactly 0 or 1 and its
    derivatives exactly 0, so the dose-0 limits need no masks."""
    u = lx - le
    g = special.expit(-b * u)
    g1 = -g * (1.0 - g)
    g2 = -g1 * (1.0 - 2.0 * g)
    return g, g1, g2, u


def _jacobian_of(g: Array, g1: Array, u: Array, p: Array) -> Array:
    b, c, d, _ = p
    return np.column_stack([(d - c) * g1 * u, 1.0 - g, g, -(d - c) * g1 * b])


def jacobian(lx: Array, zero: Mask, p: Array) -> Array:
    """d f / d(b, c, d, log e) at every dose."""
    g, g1, _, u = _g_terms(lx, zero, p[0], p[3])
    return _jacobian_of(g, g1, u, p)


def residuals(lx: Array, zero: Mask, y: Array, p: Array) -> Array:
    b, c, d, le = p
    g = _g_terms(lx, zero, b, le)[0]
    return np.asarray(c + (d - c) * g - y, dtype=float)


def hessian_rss(lx: Array, zero: Mask, y: Array, p: Array) -> Array:
    """The exact (observed) Hessian of RSS in (b, c, d, log e)."""
    b, c, d, le = p
    g, g1, g2, u = _g_terms(lx, zero, b, le)
    r = c + (d - c) * g - y
    jac = _jacobian_of(g, g1, u, p)
    dc = d - c
    second = np.zeros((len(y), 4, 4))
    second[:, 0, 0] = dc * g2 * u * u
    second[:, 0, 1] = second[:, 1, 0] = -g1 * u
    second[:, 0, 2] = second[:, 2, 0] = g1 * u
    second[:, 0, 3] = second[:, 3, 0] = -dc * (g2 * u * b + g1)
    second[:, 1, 3] = second[:, 3, 1] = g1 * b
    second[:, 2, 3] = second[:, 3, 2] = -g1 * b
    second[:, 3, 3] = dc * g2 * b * b
    return np.asarray(2.0 * (jac.T @ jac + np.einsum("i,ijk->jk", r, second)), dtype=float)


def _grid_starts(lx: Array, zero: Mask, y: Array, n_best: int) -> list[Array]:
    """Variable projection over a (b, log e) grid: c and d are linear given b and e."""
    pos = lx[~zero]
    lo, hi = float(pos.min()), float(pos.max())
    span = max(hi - lo, 1.0)
    le_grid = np.linspace(lo - 0.25 * span, hi + 0.25 * span, _LE_STEPS)
    bb, ll = np.meshgrid(_B_GRID, le_grid, indexing="ij")
    bb, ll = bb.ravel(), ll.ravel()
    with np.errstate(over="ignore"):
        z = np.clip(bb[:, None] * (np.where(zero, 0.0, lx)[None, :] - ll[:, None]), -700, 700)
        g = 1.0 / (1.0 + np.exp(z))
    g = np.where(zero[None, :], (bb > 0)[:, None].astype(float), g)
    h = 1.0 - g
    s11, s12, s22 = (h * h).sum(1), (h * g).sum(1), (g * g).sum(1)
    t1, t2 = h @ y, g @ y
    det = s11 * s22 - s12 * s12
    ok = np.abs(det) > 1e-12 * np.maximum(s11 * s22, 1e-300)
    det = np.where(ok, det, 1.0)
    c = (s22 * t1 - s12 * t2) / det
    d = (s11 * t2 - s12 * t1) / det
    rss = np.where(ok, float(y @ y) - c * t1 - d * t2, np.inf)
    order = np.argsort(rss)[:n_best]
    return [np.array([bb[i], c[i], d[i], ll[i]]) for i in order if np.isfinite(rss[i])]


def _self_start(lx: Array, zero: Mask, y: Array) -> Array | None:
    """drc's LL.4 self-starter: plateaus just outside the data, then a logit regression."""
    rng = float(y.max() - y.min())
    if rng <= 0:
        return None
    c0 = float(y.min()) - 0.001 * rng
    d0 = float(y.max()) + 0.001 * rng
    keep = ~zero
    with np.errstate(divide="ignore", invalid="ignore"):
        logit = np.log((d0 - y[keep]) / (y[keep] - c0))
    xs = lx[keep]
    fin = np.isfinite(logit)
    if fin.sum() < 2 or np.ptp(xs[fin]) == 0:
        return None
    slope, intercept = np.polyfit(xs[fin], logit[fin], 1)
    if slope == 0:
        return None
    return np.array([slope, c0, d0, -intercept / slope])


def _canonical(p: Array) -> Array:
    """drc's form of the same curve: c the lower plateau, d the upper, b's sign the direction.

    LL.4 is symmetric: (b, c, d, e) and (−b, d, c, e) are one curve, at dose 0 too.
    """
    b, c, d, le = p
    return np.array([-b, d, c, le]) if c > d else p


def _polish(lx: Array, zero: Mask, y: Array, p0: Array) -> tuple[Array, float, bool]:
    def fun(p: Array) -> Array:
        return residuals(lx, zero, y, p)

    def jac(p: Array) -> Array:
        return jacobian(lx, zero, p)

    with np.errstate(all="ignore"):
        p, _, _, _, ier = optimize.leastsq(
            fun, p0, Dfun=jac, full_output=True, xtol=1e-10, ftol=1e-12, maxfev=400
        )
    rss = float(np.sum(fun(p) ** 2))
    return np.asarray(p, dtype=float), rss, ier in (1, 2, 3, 4) and bool(np.isfinite(rss))


_B_MAX = 20.0
_Y_LIMIT = 1e100  # |response| beyond this overflows the sums of squares


def _bounds(y: Array, lx_pos: Array) -> tuple[Array, Array]:
    rng = max(float(np.ptp(y)), 1e-9)
    lo_y, hi_y = float(y.min()) - 0.5 * rng, float(y.max()) + 0.5 * rng
    lo_x, hi_x = float(lx_pos.min()) - math.log(100.0), float(lx_pos.max()) + math.log(100.0)
    return (
        np.array([-_B_MAX, lo_y, lo_y, lo_x]),
        np.array([_B_MAX, hi_y, hi_y, hi_x]),
    )


def _degenerate(p: Array, y: Array, lx_pos: Array) -> bool:
    lower, upper = _bounds(y, lx_pos)
    return not bool(np.all(np.isfinite(p)) and np.all(p >= lower) and np.all(p <= upper))


def _bounded(lx: Array, zero: Mask, y: Array, p0: Array) -> tuple[Array, float, bool]:
    lower, upper = _bounds(y, lx[~zero])
    starts = [np.clip(p0, lower + 1e-9, upper - 1e-9)] + [
        np.clip(s, lower + 1e-9, upper - 1e-9) for s in _grid_starts(lx, zero, y, 2)
    ]
    best: tuple[Array, float, bool] | None = None
    for start in starts:
        with np.errstate(all="ignore"):
            res = optimize.least_squares(
                lambda q: residuals(lx, zero, y, q),
                start,
                jac=lambda q: jacobian(lx, zero, q),
                bounds=(lower, upper),
                method="trf",
                xtol=1e-10,
                ftol=1e-12,
            )
        rss = float(np.sum(res.fun**2))
        if best is None or rss < best[1]:
            best = (np.asarray(res.x, dtype=float), rss, bool(res.success))
    assert best is not None  # starts is never empty
    return best


def _absolute_ic50(b: float, c: float, d: float, e: float, level: float) -> float | None:
    """Dose at which the curve crosses ``level``; None when it never does."""
    if d == c or b == 0 or not (math.isfinite(e) and e > 0):
        return None
    g = (level - c) / (d - c)
    if not 0.0 < g < 1.0:
        return None
    exponent = math.log(e) + math.log(1.0 / g - 1.0) / b
    return math.exp(exponent) if exponent < 700 else math.inf


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
    rules = rules or ResponseRules()
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
    if n < 5 or len(np.unique(pos)) < 3:
        fit.message = f"too few points to fit ({n} wells, {len(np.unique(pos))} positive doses)"
        return _classify_unfitted(fit, x, y, control)
    if float(np.max(np.abs(y))) > _Y_LIMIT:
        fit.message = f"responses beyond ±{_Y_LIMIT:.0e}: not measurements that can be fitted"
        return _classify_unfitted(fit, x, y, control)
    if float(np.ptp(y)) == 0.0:
        fit.message = "every response is the same value: there is nothing to fit"
        return _classify_unfitted(fit, x, y, control)

    lx, zero = log_dose(x)
    starts = _grid_starts(lx, zero, y, n_starts)
    drc = _self_start(lx, zero, y)
    if drc is not None:
        starts.append(drc)
    best: tuple[Array, float, bool] | None = None
    for p0 in starts:
        cand = _polish(lx, zero, y, p0)
        if best is None or (cand[2] and (not best[2] or cand[1] < best[1] - 1e-12)):
            best = cand
    if best is None:
        fit.message = "no starting point"
        return _classify_unfitted(fit, x, y, control)
    p, rss, ok = best
    p = _canonical(p)
    if _degenerate(p, y, lx[~zero]):
        # The data do not pin all four parameters (typically a step: only the top dose
        # acts). Refit inside plausible bounds rather than report a runaway optimum.
        p, rss, ok = _bounded(lx, zero, y, p)
        p = _canonical(p)
        fit.bounded = True
        fit.message = (
            "bounded fit: the data do not determine all four parameters "
            "(too few doses on the slope); the IC50 is only bracketed"
        )
    b, c, d, le = (float(v) for v in p)
    fit.b, fit.c, fit.d, fit.e = b, c, d, math.exp(le) if le < 700 else math.inf
    fit.rss, fit.df = rss, n - 4
    fit.rse = math.sqrt(rss / fit.df) if fit.df > 0 else math.nan
    fit.loglik = -0.5 * n * (math.log(2 * math.pi) + math.log(max(rss, 1e-300) / n) + 1.0)

    fit.flat_level = float(y.mean())  # the flat model (what a "none" curve is drawn as)
    rss0 = float(np.sum((y - y.mean()) ** 2))
    if fit.df > 0 and rss > 0:
        fit.no_effect_f = max((rss0 - rss) / 3.0, 0.0) / (rss / fit.df)
        fit.no_effect_p = float(special.fdtrc(3, fit.df, fit.no_effect_f))
        fit.no_effect_chi2 = n * math.log(rss0 / rss)
    elif rss == 0 and rss0 > 0:
        fit.no_effect_f, fit.no_effect_p = math.inf, 0.0

    fit.converged = ok and math.isfinite(fit.e)
    if fit.converged and fit.df > 0:
        hess = hessian_rss(lx, zero, y, p)
        try:
            vcov_log = 2.0 * (rss / fit.df) * np.linalg.inv(hess)
        except np.linalg.LinAlgError:
            vcov_log = np.full((4, 4), np.nan)
        scale = np.array([1.0, 1.0, 1.0, fit.e])
        vcov: Array = np.asarray(vcov_log * np.outer(scale, scale), dtype=float)
        diag = np.diag(vcov)
        fit.vcov = vcov
        fit.se = {
            k: float(math.sqrt(v)) if v >= 0 else math.nan
            for k, v in zip("bcde", diag, strict=True)
        }
    else:
        fit.se = dict.fromkeys("bcde", math.nan)

    if control is None:
        control = float(y[zero].mean()) if zero.any() else d
    fit.control = control
    classify(fit, rules, level, x)
    return fit


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
            fit.ic50_ci = (fit.e * math.exp(-t * se_log_e), fit.e * math.exp(t * se_log_e))
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
