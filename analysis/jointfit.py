"""Joint LL.4 fits: several curves sharing parameters (drc ``drm(..., curveid, pmodels)``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import optimize

from analysis.doseresponse import (
    Array,
    LL4Fit,
    ResponseRules,
    classify,
    fit_ll4,
    hessian_rss,
    jacobian,
    log_dose,
    residuals,
)

PARAMS = ("b", "c", "d", "e")


def fit_ll4_joint(
    dose: npt.ArrayLike,
    response: npt.ArrayLike,
    groups: npt.ArrayLike,
    *,
    shared: tuple[str, ...] = ("c", "d"),
    rules: ResponseRules | None = None,
    level: float = 0.95,
) -> dict[Any, LL4Fit]:
    """LL.4 curves for several groups fitted together, sharing some parameters.

    drc's ``drm(..., curveid, pmodels=...)``: e.g. two compounds on one assay sharing the
    plateaus ``c`` and ``d`` while each keeps its own slope and IC50. Each group is first
    fitted alone; the joint least-squares problem is started from those fits, and the
    standard errors come from the observed Hessian of the joint RSS.
    """
    rules = rules or ResponseRules()
    x = np.asarray(dose, dtype=float).ravel()
    y = np.asarray(response, dtype=float).ravel()
    grp = np.asarray(groups).ravel()
    unknown = set(shared) - set(PARAMS)
    if unknown:
        raise ValueError(f"cannot share {sorted(unknown)}: parameters are b, c, d, e")
    keep = np.isfinite(x) & np.isfinite(y) & (x >= 0)
    x, y, grp = x[keep], y[keep], grp[keep]
    labels = list(dict.fromkeys(grp.tolist()))
    alone = {g: fit_ll4(x[grp == g], y[grp == g], rules=rules, level=level) for g in labels}

    # Parameter vector: shared ones first, then per-group ones; index map per group.
    index: dict[Any, list[int]] = {g: [0, 0, 0, 0] for g in labels}
    theta: list[float] = []
    for k, name in enumerate(PARAMS):
        values = [_log_param(alone[g], name) for g in labels]
        if name in shared:
            for g in labels:
                index[g][k] = len(theta)
            theta.append(float(np.nanmedian(values)))
        else:
            for g, v in zip(labels, values, strict=True):
                index[g][k] = len(theta)
                theta.append(v)
    members = [(np.flatnonzero(grp == g), np.array(index[g])) for g in labels]
    lx, zero = log_dose(x)

    def fun(t: Array) -> Array:
        out: Array = np.empty_like(y)
        for rows, idx in members:
            out[rows] = residuals(lx[rows], zero[rows], y[rows], t[idx])
        return out

    def jac(t: Array) -> Array:
        out = np.zeros((len(y), len(t)))
        for rows, idx in members:
            out[np.ix_(rows, idx)] = jacobian(lx[rows], zero[rows], t[idx])
        return out

    with np.errstate(all="ignore"):
        t, _, _, _, ier = optimize.leastsq(
            fun, np.array(theta), Dfun=jac, full_output=True, xtol=1e-12, ftol=1e-14, maxfev=2000
        )
    t = np.asarray(t, dtype=float)
    rss = float(np.sum(fun(t) ** 2))
    dof = len(y) - len(t)
    hess = np.zeros((len(t), len(t)))
    for rows, idx in members:
        hess[np.ix_(idx, idx)] += hessian_rss(lx[rows], zero[rows], y[rows], t[idx])
    try:
        vcov_log = 2.0 * (rss / dof) * np.linalg.inv(hess)
    except np.linalg.LinAlgError:
        vcov_log = np.full_like(hess, np.nan)

    fits: dict[Any, LL4Fit] = {}
    for g, (rows, idx) in zip(labels, members, strict=True):
        b, c, d, le = (float(v) for v in t[idx])
        e = math.exp(le)
        f = LL4Fit(converged=ier in (1, 2, 3, 4), n=len(rows), b=b, c=c, d=d, e=e)
        f.rss, f.df = rss, dof
        f.rse = math.sqrt(rss / dof) if dof > 0 else math.nan
        pos = x[rows][x[rows] > 0]
        f.dose_min, f.dose_max = float(pos.min()), float(pos.max())
        scale = np.array([1.0, 1.0, 1.0, e])
        sub = vcov_log[np.ix_(idx, idx)] * np.outer(scale, scale)
        f.vcov = sub
        f.se = {
            k: float(math.sqrt(v)) if v >= 0 else math.nan
            for k, v in zip(PARAMS, np.diag(sub), strict=True)
        }
        single = alone[g]
        f.no_effect_f, f.no_effect_p = single.no_effect_f, single.no_effect_p
        f.no_effect_chi2 = single.no_effect_chi2
        zr = x[rows] <= 0
        f.control = float(y[rows][zr].mean()) if zr.any() else d
        f.message = "joint fit sharing " + ", ".join(shared) if shared else ""
        classify(f, rules, level, x[rows])
        fits[g] = f
    return fits


def _log_param(fit: LL4Fit, name: str) -> float:
    value = getattr(fit, name)
    if name == "e":
        return math.log(value) if value > 0 and math.isfinite(value) else 0.0
    return float(value) if math.isfinite(value) else 0.0
