"""Spillover compensation (SCIENCE.md §6): apply X·S⁻¹, or estimate S from single stains.

``S[i, j]`` is the fraction of fluorochrome i's signal (in its own detector) that detector j
sees. Observed events are X = D·S (D the true dye amounts), so the compensated events are
X·S⁻¹, computed by solving Sᵀ·Dᵀ = Xᵀ (never an explicit inverse).

Estimation follows flowStats/flowCore: per-channel medians of each single-stain control
minus the unstained control's medians, clamped at 0, each row divided by its diagonal. The
controls' events are handed in already chosen (gated, and for controls that hold negative
cells too, the positive events of the stained channel: :func:`positive_events`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from datamodel.cytometry import Spillover
from errors import AnalysisError

Array = npt.NDArray[np.float64]
MAX_CONDITION = 1e8


def compensate(values: Array, spillover: Array) -> Array:
    """Events (n × k, linear) compensated by the k × k spillover matrix: X·S⁻¹."""
    s = np.asarray(spillover, dtype=np.float64)
    if values.shape[1] != s.shape[0]:
        raise ValueError(f"{values.shape[1]} channels for a {s.shape[0]}×{s.shape[0]} matrix")
    if values.shape[0] == 0:
        return np.empty_like(values, dtype=np.float64)
    solved = np.linalg.solve(s.T, np.asarray(values, dtype=np.float64).T)
    return np.ascontiguousarray(solved.T)


def check_spillover(spill: Spillover, what: str) -> None:
    """AnalysisError unless the matrix can be applied (square, finite, well conditioned)."""
    m = spill.matrix
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] != len(spill.channels):
        raise AnalysisError(f"{what}: the spillover matrix is not square over its channels")
    if not np.isfinite(m).all():
        raise AnalysisError(f"{what}: the spillover matrix has entries that are not numbers")
    if np.linalg.cond(m) > MAX_CONDITION:
        raise AnalysisError(f"{what}: the spillover matrix is singular (cannot be inverted)")


def positive_events(values: Array, column: int, cutoff: float) -> Array:
    """The rows of a single-stain control bright in its own channel (above ``cutoff``)."""
    return values[values[:, column] > cutoff]


def estimate_spillover(
    channels: Sequence[str],
    unstained: Array,
    stained: Mapping[str, Array],
    *,
    min_events: int = 50,
) -> Spillover:
    """The spillover matrix over ``channels`` from single-stain controls.

    ``unstained`` is n0 × k (k = len(channels)), ``stained[c]`` the n × k events of the
    control stained for channel c (its row of the matrix). Channels without a control keep
    an identity row. AnalysisError when a control is too small or not brighter than the
    unstained one in its own channel.
    """
    k = len(channels)
    if unstained.shape[0] < min_events:
        raise AnalysisError(
            f"the unstained control has {unstained.shape[0]} events (fewer than {min_events})"
        )
    baseline = np.median(unstained, axis=0)
    matrix = np.eye(k)
    for channel, events in stained.items():
        i = list(channels).index(channel)
        if events.shape[0] < min_events:
            raise AnalysisError(
                f"the {channel} single-stain control has {events.shape[0]} usable events "
                f"(fewer than {min_events})"
            )
        signal = np.clip(np.median(events, axis=0) - baseline, 0.0, None)
        if signal[i] <= 0:
            raise AnalysisError(
                f"the {channel} single-stain control is no brighter than the unstained "
                f"control in {channel}: was it stained?"
            )
        matrix[i] = signal / signal[i]
    return Spillover(tuple(channels), matrix, "controls")
