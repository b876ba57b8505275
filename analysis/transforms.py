"""Display and density transforms of flow data (SCIENCE.md §6–7): logicle and arcsinh.

Logicle is Parks, Roederer & Moore's biexponential (Cytometry A 2006; the parameterisation
of Moore & Parks, Cytometry A 2012): linear near zero, logarithmic above, symmetric for the
negative values compensation produces. Defaults T = 262144, W = 0.5, M = 4.5, A = 0 map
0 to W/(M + A) ≈ 0.111 and T to 1. The inverse (scale → data) is closed form; the forward
transform is found by interpolation on a dense grid refined by Newton steps (vectorised).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt
from scipy.optimize import brentq

Array = npt.NDArray[np.float64]
TransformName = Literal["logicle", "arcsinh"]


class Transform(Protocol):
    name: str

    def forward(self, values: Array) -> Array: ...
    def inverse(self, scale: Array) -> Array: ...


@dataclass(frozen=True)
class Arcsinh:
    """arcsinh(x / cofactor): cofactor 150 for flow cytometry (5 for mass cytometry)."""

    cofactor: float = 150.0
    name: str = "arcsinh"

    def forward(self, values: Array) -> Array:
        return np.arcsinh(np.asarray(values, dtype=np.float64) / self.cofactor)

    def inverse(self, scale: Array) -> Array:
        return np.sinh(np.asarray(scale, dtype=np.float64)) * self.cofactor


@dataclass(frozen=True)
class Logicle:
    T: float = 262144.0
    W: float = 0.5
    M: float = 4.5
    A: float = 0.0
    name: str = "logicle"
    _coef: tuple[float, ...] = field(init=False, repr=False, compare=False)
    _grid: tuple[Array, Array] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (self.T > 0 and self.M > 0 and 0 <= self.W <= self.M / 2 and -self.W <= self.A):
            raise ValueError(f"logicle parameters out of range: T={self.T} W={self.W} M={self.M}")
        w = self.W / (self.M + self.A)
        x2 = self.A / (self.M + self.A)
        x1 = x2 + w
        x0 = x2 + 2 * w
        b = (self.M + self.A) * math.log(10.0)
        d = self._solve_d(b, w)
        c_a = math.exp(x0 * (b + d))
        mf_a = math.exp(b * x1) - c_a / math.exp(d * x1)
        a = self.T / ((math.exp(b) - mf_a) - c_a / math.exp(d))
        c = c_a * a
        f = -mf_a * a
        object.__setattr__(self, "_coef", (a, b, c, d, f, x1))
        xs = np.linspace(2 * x1 - 1.6, 1.6, 16385)
        object.__setattr__(self, "_grid", (xs, self.inverse(xs)))

    @staticmethod
    def _solve_d(b: float, w: float) -> float:
        if w == 0:
            return b
        # 2 (ln d − ln b) + w (b + d) = 0 has one root in (0, b)
        return float(brentq(lambda d: 2 * (math.log(d) - math.log(b)) + w * (b + d), 1e-12, b))

    def inverse(self, scale: Array) -> Array:
        """Scale (0..1 for 0..T) → data value."""
        a, b, c, d, f, x1 = self._coef
        x = np.asarray(scale, dtype=np.float64)
        negative = x < x1
        r = np.where(negative, 2 * x1 - x, x)
        with np.errstate(over="ignore"):
            value = a * np.exp(b * r) - c * np.exp(-d * r) + f
        return np.where(negative, -value, value)

    def _slope(self, x: Array) -> Array:
        a, b, c, d, _, x1 = self._coef
        r = np.where(x < x1, 2 * x1 - x, x)
        with np.errstate(over="ignore"):
            return a * b * np.exp(b * r) + c * d * np.exp(-d * r)

    def forward(self, values: Array) -> Array:
        """Data value → scale."""
        v = np.asarray(values, dtype=np.float64)
        xs, ys = self._grid
        x = np.interp(v, ys, xs)
        finite = np.isfinite(v)
        for _ in range(2):
            step = (self.inverse(x) - v) / self._slope(x)
            x = np.where(finite, x - np.nan_to_num(step, nan=0.0, posinf=0.0, neginf=0.0), x)
        return np.where(finite, x, np.nan)


def make_transform(
    name: TransformName,
    *,
    cofactor: float = 150.0,
    T: float = 262144.0,
    W: float = 0.5,
    M: float = 4.5,
    A: float = 0.0,
) -> Arcsinh | Logicle:
    if name == "arcsinh":
        return Arcsinh(cofactor)
    return Logicle(T, W, M, A)


def decade_ticks(
    transform: Arcsinh | Logicle, low: float, high: float
) -> tuple[list[float], list[str]]:
    """Axis ticks at 0 and ±10^k within [low, high] data units, in transformed units, with
    their labels; a tick closer than 6 % of the axis to one already placed is left out."""
    span = float(transform.forward(np.array([high]))[0] - transform.forward(np.array([low]))[0])
    candidates = [0.0]
    for k in range(1, 9):
        candidates += [v for v in (10.0**k, -(10.0**k)) if low <= v <= high]
    kept: list[tuple[float, float]] = []
    for value in candidates:
        position = float(transform.forward(np.array([value]))[0])
        if all(abs(position - p) >= 0.06 * span for _, p in kept):
            kept.append((value, position))
    kept.sort(key=lambda vp: vp[1])
    labels = [
        "0" if v == 0 else f"{'−' if v < 0 else ''}10{_sup(round(math.log10(abs(v))))}"
        for v, _ in kept
    ]
    return [p for _, p in kept], labels


def _sup(k: int) -> str:
    return str(k).translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹"))
