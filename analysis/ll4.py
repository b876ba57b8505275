"""The LL.4 model itself: the curve, its derivatives in ``(b, c, d, log e)``, confidence bands.

    f(x) = c + (d - c) / (1 + exp(b (ln x - ln e)))

Doses enter as ``ln x`` with dose 0 (the untreated control) mapped to :data:`ZERO_LOG`, so
one set of formulas covers the control too. Used by the single and the batched fitters
(:mod:`analysis.doseresponse`, :mod:`analysis.ll4_solver`), the joint fits and the report.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from scipy import special

Array = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]

ZERO_LOG = -1.0e6  # ln(0) stand-in: exp(b·(ZERO_LOG − ln e)) is exactly 0 or inf for |b| > 1e-3


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
