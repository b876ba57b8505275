"""Positive/negative thresholds of a fluorescence channel (SCIENCE.md §7), both methods.

* control: a high percentile of the compensated control tube that carries the *other*
  stain (the PI threshold on the Annexin-only tube, the Annexin threshold on the PI-only
  tube: the FMO idea), or of the unstained tube when that is all there is;
* valley: the density minimum between the negative and the positive peaks of the sample
  itself, found on a smoothed histogram of the transformed values.

The valley is exact where dim non-specific Annexin binding shifts the live cells of a
stained sample above what any control shows; the control threshold works when a sample
has no positive peak to find a valley against (an untreated sample).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from analysis.gating import smooth_density
from analysis.transforms import Arcsinh, Logicle

Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Valley:
    threshold: float  # data units
    negative_peak: float
    positive_peak: float
    depth: float  # density at the valley / density of the smaller peak (0 = empty gap)
    positive_fraction: float  # events above the valley


def control_threshold(values: Array, percentile: float) -> float | None:
    """The ``percentile`` of a control's compensated values (None with fewer than 100)."""
    finite = values[np.isfinite(values)]
    if finite.size < 100:
        return None
    return float(np.percentile(finite, percentile))


def valley_threshold(
    values: Array,
    transform: Arcsinh | Logicle,
    *,
    min_fraction: float = 0.01,
    max_depth: float = 0.6,
) -> Valley | None:
    """The density valley between the two dominant peaks, or None when there is no second
    peak holding at least ``min_fraction`` of the events behind a valley shallower than
    ``max_depth`` × the smaller peak."""
    x = transform.forward(values[np.isfinite(values)])
    n = x.size
    if n < 200:
        return None
    lo, hi = (float(v) for v in np.percentile(x, [0.1, 99.9]))
    span = hi - lo
    if span <= 1e-9:
        return None
    lo, hi = lo - 0.05 * span, hi + 0.05 * span
    bins = 256
    bandwidth = 0.012 * span * (n / 20_000) ** -0.2  # ≈ 0.08 arcsinh units at 20,000 events
    centres, density = smooth_density(x, bins, lo, hi, max(1.5, bandwidth / (hi - lo) * bins))
    interior = density[1:-1]
    peaks = np.nonzero((interior >= density[:-2]) & (interior > density[2:]))[0] + 1
    if peaks.size < 2:
        return None
    main = int(peaks[np.argmax(density[peaks])])
    cumulative = np.cumsum(density) / density.sum()
    best: tuple[float, int, int] | None = None
    for p in peaks.tolist():
        if p == main:
            continue
        a, b = min(main, p), max(main, p)
        v = a + int(np.argmin(density[a : b + 1]))
        smaller = float(min(density[main], density[p]))
        depth = float(density[v]) / smaller if smaller > 0 else 1.0
        side = float(cumulative[v] if p < main else 1.0 - cumulative[v])
        if depth > max_depth or side < min_fraction:
            continue
        score = smaller - float(density[v])
        if best is None or score > best[0]:
            best = (score, p, v)
    if best is None:
        return None
    _, p, v = best
    low_peak, high_peak = min(main, p), max(main, p)
    threshold = float(transform.inverse(np.array([centres[v]]))[0])
    smaller = float(min(density[main], density[p]))
    return Valley(
        threshold=threshold,
        negative_peak=float(transform.inverse(np.array([centres[low_peak]]))[0]),
        positive_peak=float(transform.inverse(np.array([centres[high_peak]]))[0]),
        depth=float(density[v] / smaller),
        positive_fraction=float(np.mean(x > centres[v])),
    )
