"""Dose-response curves in the shapes of a real viability screen (issue 14), seeded.

Public drug screens (GDSC, CTRP-like ratio-to-control tables) are not the clean sigmoids a
simulator usually draws: about a third of the curves are flat (with plate drift and the odd
outlier well), many kill only partly or only at the top dose, slopes run from very shallow
to a near step, a few compounds stimulate growth, replicates vary, wells go missing and a
ratio below zero is clipped to 0 by the normalisation. Each curve here is drawn from its own
generator ``default_rng((seed, index))``, so one curve can be regenerated from its seed and
index alone (the regression test stores only those).

Responses are ratios to the untreated control (1.0 = untreated). Doses are in µM; a curve
has 8–16 positive doses in a dilution series (2-, 3-, √10- or 4-fold) with 1–4 replicates
each, and 40 % of the curves also carry untreated wells at dose 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]

# Shape → share of the curves (about a third flat, as in the screens of issue 14).
SHAPES: dict[str, float] = {
    "flat": 0.34,
    "sigmoid": 0.20,
    "partial": 0.14,
    "step": 0.10,
    "steep": 0.08,
    "shallow": 0.08,
    "rising": 0.06,
}
_DILUTIONS = (2.0, 3.0, math.sqrt(10.0), 4.0)


@dataclass(frozen=True)
class ScreenCurve:
    """One generated curve: its wells and the truth it was drawn from."""

    index: int
    shape: str
    dose: Array
    response: Array
    truth: tuple[float, float, float, float]  # (b, c, d, e) of the LL.4 drawn; NaN when flat


def shapes_for(n: int, seed: int = 0) -> list[str]:
    """Exactly ``round(share · n)`` curves of each shape (the remainder flat), shuffled."""
    counts = {name: round(share * n) for name, share in SHAPES.items()}
    counts["flat"] += n - sum(counts.values())
    order = [name for name, k in counts.items() for _ in range(max(k, 0))][:n]
    rng = np.random.default_rng((seed, 2**31 - 1))
    return [order[i] for i in rng.permutation(len(order))]


def _ll4(x: Array, b: float, c: float, d: float, e: float) -> Array:
    with np.errstate(divide="ignore", over="ignore"):
        z = b * (np.log(x) - math.log(e))
        g = 1.0 / (1.0 + np.exp(z))
    g = np.where(x <= 0, 1.0 if b > 0 else 0.0, g)
    return np.asarray(c + (d - c) * g, dtype=float)


def make_curve(seed: int, index: int, shape: str) -> ScreenCurve:
    """Curve ``index`` of the screen ``seed``, of the given shape."""
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r} (shapes: {', '.join(SHAPES)})")
    rng = np.random.default_rng((seed, index))
    n_doses = int(rng.integers(8, 17))
    factor = float(rng.choice(_DILUTIONS))
    top = 10 ** rng.uniform(0.0, 2.0)
    levels = top / factor ** np.arange(n_doses)[::-1]
    reps = int(rng.integers(1, 5))
    dose = np.repeat(levels, reps)
    if rng.random() < 0.4:
        dose = np.r_[np.zeros(int(rng.integers(2, 7))), dose]
    lo, hi = math.log(levels[0]), math.log(levels[-1])

    def e_inside(margin: float = 0.1) -> float:
        span = hi - lo
        return math.exp(rng.uniform(lo + margin * span, hi - margin * span))

    truth = (math.nan, math.nan, math.nan, math.nan)
    if shape == "flat":
        rank = np.where(dose > 0, np.log(np.where(dose > 0, dose, 1.0)) - lo, 0.0) / (hi - lo)
        mean = 1.0 + rng.uniform(-0.15, 0.15) * (rank - 0.5)
    elif shape == "step":
        mean = np.where(dose >= levels[-1], rng.uniform(0.0, 0.5), 1.0)
    else:
        if shape == "sigmoid":
            b, c, d = rng.uniform(0.8, 3.0), rng.uniform(0.0, 0.2), rng.uniform(0.9, 1.1)
        elif shape == "partial":
            b, c, d = rng.uniform(0.8, 3.0), rng.uniform(0.5, 0.8), 1.0
        elif shape == "steep":
            b, c, d = rng.uniform(5.0, 20.0), rng.uniform(0.0, 0.2), 1.0
        elif shape == "shallow":
            b, c, d = rng.uniform(0.25, 0.6), rng.uniform(0.0, 0.3), 1.0
        else:  # rising: stimulation up to 1.3–2× control (drc form: b < 0, c < d)
            b, c, d = -rng.uniform(0.8, 3.0), 1.0, rng.uniform(1.3, 2.0)
        e = e_inside(0.0 if shape == "shallow" else 0.1)
        truth = (float(b), float(c), float(d), e)
        mean = _ll4(dose, *truth)
    sd = rng.uniform(0.03, 0.12)
    y = mean + rng.normal(0.0, sd, dose.size)
    if shape == "flat" and rng.random() < 0.5:
        hit = rng.choice(dose.size, size=int(rng.integers(1, 3)), replace=False)
        y[hit] += rng.choice([-1.0, 1.0], hit.size) * rng.uniform(0.2, 0.6, hit.size)
    y = np.maximum(y, 0.0)  # the normalisation clips ratios below zero
    keep = rng.random(dose.size) >= rng.uniform(0.0, 0.12)
    return ScreenCurve(index, shape, dose[keep], y[keep], truth)


def make_screen(n: int, seed: int = 0) -> list[ScreenCurve]:
    """``n`` curves in the stated shape proportions."""
    return [make_curve(seed, i, shape) for i, shape in enumerate(shapes_for(n, seed))]
