"""Gates of an Annexin V/PI sample (SCIENCE.md §7): saturation, time, debris, singlets.

Each gate returns a boolean mask over the events it was given plus the numbers behind it,
so the result can say how many events each gate kept and why. All pure numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from analysis.stats import MAD_SCALE

Array = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]


@dataclass
class Gate:
    """A gate's mask over its input events and what it did."""

    mask: Mask
    applied: bool = True
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def kept(self) -> int:
        return int(self.mask.sum())


def smooth_density(
    values: Array, bins: int, lo: float, hi: float, sigma_bins: float
) -> tuple[Array, Array]:
    """Histogram density of ``values`` on [lo, hi] smoothed by a Gaussian (bin centres, density)."""
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    half = max(1, math.ceil(4 * sigma_bins))
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma_bins) ** 2)
    kernel /= kernel.sum()
    padded = np.concatenate([np.zeros(half), counts.astype(np.float64), np.zeros(half)])
    density = np.convolve(padded, kernel, mode="valid")
    return 0.5 * (edges[:-1] + edges[1:]), density


def saturation_gate(raw: list[Array], tops: list[float], names: list[str]) -> Gate:
    """Events below the top of every given channel's range ($PnR − 1) and finite."""
    n = raw[0].shape[0] if raw else 0
    keep = np.ones(n, dtype=bool)
    per_channel: dict[str, int] = {}
    invalid = np.zeros(n, dtype=bool)
    for values, top, name in zip(raw, tops, names, strict=True):
        v = np.asarray(values)
        if v.dtype.kind == "f":
            invalid |= ~np.isfinite(v)
        if top > 0:
            hit = v >= top
            per_channel[name] = int(hit.sum())
            keep &= ~hit
    keep &= ~invalid
    return Gate(keep, info={"channels": per_channel, "invalid": int(invalid.sum())})


def time_gate(
    time: Array | None,
    scatter: list[Array],
    *,
    rate_drop: float,
    shift_decades: float,
    min_events: int = 1000,
) -> Gate:
    """Events outside stretches of unstable flow (clogs, bubbles).

    The run is cut into equal time bins (about 500 events each, 10–100 bins). A bin is
    unstable when its event count is below ``rate_drop`` × the median count (or above its
    inverse), or when the median log10 scatter of its events moves more than
    ``shift_decades`` from the run's median. Events in unstable bins are excluded.
    """
    if time is None:
        return Gate(np.ones(scatter[0].shape[0], dtype=bool), False, {"reason": "no time channel"})
    n = time.shape[0]
    t = np.asarray(time, dtype=np.float64)
    finite = np.isfinite(t)
    if n < min_events or not finite.any() or float(np.ptp(t[finite])) <= 0:
        return Gate(np.ones(n, dtype=bool), False, {"reason": "too few events or no time span"})
    t0, t1 = float(t[finite].min()), float(t[finite].max())
    n_bins = int(np.clip(n // 500, 10, 100))
    index = np.clip(((t - t0) / (t1 - t0) * n_bins).astype(np.int64), 0, n_bins - 1)
    index[~finite] = 0
    counts = np.bincount(index, minlength=n_bins).astype(np.float64)
    median_count = float(np.median(counts))
    unstable = (counts < rate_drop * median_count) | (counts > median_count / rate_drop)
    shifts = np.zeros(n_bins)
    order = np.argsort(index, kind="stable")
    bounds = np.searchsorted(index[order], np.arange(n_bins + 1))
    for values in scatter:
        logs = np.log10(np.clip(np.asarray(values, dtype=np.float64), 1.0, None))
        overall = float(np.median(logs))
        sorted_logs = logs[order]
        for b in range(n_bins):
            chunk = sorted_logs[bounds[b] : bounds[b + 1]]
            if chunk.size >= 20:
                shifts[b] = max(shifts[b], abs(float(np.median(chunk)) - overall))
    unstable |= shifts > shift_decades
    width = (t1 - t0) / n_bins
    intervals: list[list[float]] = []
    for b in np.nonzero(unstable)[0].tolist():
        lo, hi = t0 + b * width, t0 + (b + 1) * width
        if intervals and abs(intervals[-1][1] - lo) < 1e-9 * max(1.0, abs(lo)):
            intervals[-1][1] = hi
        else:
            intervals.append([lo, hi])
    keep = ~unstable[index]
    info: dict[str, Any] = {
        "bins": n_bins,
        "unstable_bins": int(unstable.sum()),
        "unstable_intervals": intervals,
        "median_events_per_bin": median_count,
        "max_scatter_shift_decades": round(float(shifts.max()), 4),
    }
    if keep.sum() < 0.5 * n:
        info["reason"] = "most of the run looks unstable: not gated on time"
        return Gate(np.ones(n, dtype=bool), False, {**info, "would_exclude": int((~keep).sum())})
    return Gate(keep, True, info)


def debris_gate(fsc: Array, ssc: Array, *, fallback_fraction: float, max_fraction: float) -> Gate:
    """Cells, not debris: FSC-A above the valley between the debris and the cells (loose).

    On the smoothed log10 FSC-A density, the cells' peak is the highest peak (a sample that
    is mostly debris is not gated well, and shows as few events). Debris is a peak below ``max_fraction`` × the cells' peak; the threshold is the lowest
    density between it and the cells. With no debris peak the threshold is
    ``fallback_fraction`` × the cells' peak. It is never above ``max_fraction`` × the cells'
    peak, so shrunken apoptotic and necrotic cells stay in.
    """
    positive = (fsc > 0) & (ssc > 0)
    if positive.sum() < 50:
        return Gate(positive, True, {"reason": "fewer than 50 events with positive scatter"})
    logs = np.log10(fsc[positive])
    lo, hi = (float(v) for v in np.percentile(logs, [0.2, 99.8]))
    if hi - lo < 1e-6:
        return Gate(positive, True, {"channel_threshold": 0.0, "method": "none"})
    centres, density = smooth_density(logs, 200, lo, hi, 2.5)
    interior = density[1:-1]
    peaks = np.nonzero((interior >= density[:-2]) & (interior > density[2:]))[0] + 1
    significant = [int(p) for p in peaks if density[p] >= 0.05 * density.max()]
    if not significant:
        significant = [int(np.argmax(density))]
    gap = math.log10(1.0 / max_fraction)
    main = max(significant, key=lambda p: float(density[p]))
    peak = 10 ** float(centres[main])
    debris = [p for p in significant if centres[main] - centres[p] >= gap]
    if debris:
        left = min(debris)
        valley = left + int(np.argmin(density[left : main + 1]))
        threshold, method = 10 ** float(centres[valley]), "valley"
    else:
        threshold, method = fallback_fraction * peak, "fraction of the cells' peak"
    cap = max_fraction * peak
    if threshold > cap:
        threshold, method = cap, f"{method}, capped at {max_fraction:g} × the cells' peak"
    keep = positive & (fsc >= threshold)
    return Gate(
        keep,
        True,
        {"channel_threshold": round(threshold, 2), "main_peak": round(peak, 2), "method": method},
    )


def singlet_gate(area: Array, other: Array | None, kind: str, *, mads: float) -> Gate:
    """Singlets: FSC-A/FSC-H (or FSC-W) within median ± ``mads`` scaled MAD."""
    n = area.shape[0]
    if other is None:
        return Gate(np.ones(n, dtype=bool), False, {"reason": "no FSC-H or FSC-W channel"})
    if kind == "height":
        with np.errstate(divide="ignore", invalid="ignore"):
            stat = np.where(other > 0, area / other, np.nan)
        what = "FSC-A/FSC-H"
    else:
        stat = np.asarray(other, dtype=np.float64)
        what = "FSC-W"
    finite = np.isfinite(stat)
    if finite.sum() < 50:
        return Gate(finite, True, {"reason": "fewer than 50 events with a usable ratio"})
    centre = float(np.median(stat[finite]))
    spread = MAD_SCALE * float(np.median(np.abs(stat[finite] - centre)))
    low, high = centre - mads * spread, centre + mads * spread
    keep = finite & (stat >= low) & (stat <= high)
    return Gate(
        keep,
        True,
        {
            "statistic": what,
            "median": round(centre, 5),
            "low": round(low, 5),
            "high": round(high, 5),
        },
    )
