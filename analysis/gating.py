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


def saturation_gate(
    raw: list[Array], tops: list[float], names: list[str], exclude: list[bool]
) -> Gate:
    """Events below the top of their range ($PnR − 1) in every channel marked ``exclude``
    (those whose compensation a clipped value would spoil), and finite in all of them.
    Channels not excluded (scatter) are counted only."""
    n = raw[0].shape[0] if raw else 0
    keep = np.ones(n, dtype=bool)
    per_channel: dict[str, int] = {}
    counted_only: dict[str, int] = {}
    invalid = np.zeros(n, dtype=bool)
    for values, top, name, out in zip(raw, tops, names, exclude, strict=True):
        v = np.asarray(values)
        if v.dtype.kind == "f":
            invalid |= ~np.isfinite(v)
        if top > 0:
            with np.errstate(invalid="ignore", over="ignore"):  # a $PnR beyond float32: inf
                hit = v >= top
            if out:
                per_channel[name] = int(hit.sum())
                keep &= ~hit
            else:
                counted_only[name] = int(hit.sum())
    excluded = int((~keep & ~invalid).sum())
    keep &= ~invalid
    info = {
        "channels": per_channel,
        "scatter": counted_only,
        "invalid": int(invalid.sum()),
        "excluded": excluded,
    }
    return Gate(keep, info=info)


MIN_SCATTER_FOR_SHIFT = 3000.0  # linear units: dimmer channels sit in the noise floor
_COFACTOR = 150.0


def time_gate(
    time: Array | None,
    scatter: list[Array],
    *,
    rate_drop: float,
    shift_decades: float,
    min_events: int = 1000,
) -> Gate:
    """Events outside stretches of unstable flow (clogs, bubbles).

    The run is cut into equal time bins (about 500 events each, 10–100, whole clock ticks
    when the time channel counts ticks). A bin is unstable when its event rate is below
    ``rate_drop`` × the median rate (or above its inverse), or when the median scatter of
    its events moves more than ``shift_decades`` (and more than 5 standard errors) from the
    run's median. Scatter is compared on arcsinh(x/150) (≈ log for cells, calm near zero);
    channels whose median is in the noise floor are not used. Events in unstable bins are
    excluded; a run that looks mostly unstable is not gated (and is flagged).
    """
    if time is None:
        return Gate(np.ones(scatter[0].shape[0], dtype=bool), False, {"reason": "no time channel"})
    n = time.shape[0]
    t = np.asarray(time, dtype=np.float64)
    finite = np.isfinite(t)
    if n < min_events or not finite.any() or float(np.ptp(t[finite])) <= 0:
        return Gate(np.ones(n, dtype=bool), False, {"reason": "too few events or no time span"})
    ticks = np.unique(t[finite])
    if ticks.size < 40:
        return Gate(
            np.ones(n, dtype=bool),
            False,
            {"reason": f"the time channel has only {ticks.size} distinct values"},
        )
    t0, t1 = float(ticks[0]), float(ticks[-1])
    tick = float(np.median(np.diff(ticks))) if ticks.size < 0.5 * n else 0.0
    n_bins = int(np.clip(n // 500, 10, 100))
    n_bins = min(n_bins, ticks.size // 4)
    width = (t1 - t0) / n_bins
    if tick > 0:
        width = max(tick, math.ceil(width / tick - 1e-9) * tick)
    n_bins = max(1, math.floor((t1 - t0) / width) + 1)
    index = np.clip(np.floor((t - t0) / width).astype(np.int64), 0, n_bins - 1)
    index[~finite] = 0
    counts = np.bincount(index, minlength=n_bins).astype(np.float64)
    exposure = np.full(n_bins, width)
    exposure[-1] = (t1 + tick) - (t0 + (n_bins - 1) * width)
    usable = exposure >= 0.5 * width  # a short last bin says nothing about the rate
    rates = np.where(usable, counts / np.maximum(exposure, 1e-300), np.nan)
    median_rate = float(np.nanmedian(rates)) if usable.any() else 0.0
    unstable = usable & ((rates < rate_drop * median_rate) | (rates > median_rate / rate_drop))
    shifts = np.zeros(n_bins)
    order = np.argsort(index, kind="stable")
    bounds = np.searchsorted(index[order], np.arange(n_bins + 1))
    per_decade = math.log(10.0)  # arcsinh units per decade, for bright signals
    for values in scatter:
        linear = np.asarray(values, dtype=np.float64)
        if float(np.median(linear)) < MIN_SCATTER_FOR_SHIFT:
            continue
        scaled = np.arcsinh(linear / _COFACTOR) / per_decade
        overall = float(np.median(scaled))
        spread = MAD_SCALE * float(np.median(np.abs(scaled - overall)))
        sorted_scaled = scaled[order]
        for b in range(n_bins):
            chunk = sorted_scaled[bounds[b] : bounds[b + 1]]
            if chunk.size < 50:
                continue
            shift = abs(float(np.median(chunk)) - overall)
            if shift > 5 * 1.2533 * spread / math.sqrt(chunk.size):
                shifts[b] = max(shifts[b], shift)
    unstable |= shifts > shift_decades
    intervals: list[list[float]] = []
    for b in np.nonzero(unstable)[0].tolist():
        lo, hi = t0 + b * width, min(t0 + (b + 1) * width, t1 + tick)
        if intervals and abs(intervals[-1][1] - lo) < 1e-9 * max(1.0, abs(lo)):
            intervals[-1][1] = hi
        else:
            intervals.append([lo, hi])
    keep = ~unstable[index]
    info: dict[str, Any] = {
        "bins": n_bins,
        "unstable_bins": int(unstable.sum()),
        "unstable_intervals": intervals,
        "median_events_per_bin": float(np.median(counts)),
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
