"""Flow cytometry records: what an FCS file holds, as the reader hands it on (DESIGN.md §4).

Values are the raw stored values (integers masked to ``$PnR``), never scaled: scaling by
``$PnE``/``$PnG``/``$TIMESTEP`` and compensation are the analysis' business.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class FcsParameter:
    """One ``$Pn`` parameter (a detector channel, a scatter signal or time)."""

    index: int  # n of $Pn (1-based)
    name: str  # $PnN, e.g. "FL1-A"
    label: str | None  # $PnS, the stain, e.g. "Annexin V-FITC"
    bits: int | None  # $PnB as stored (None for free-format ASCII '*')
    range: float  # $PnR
    log_decades: float = 0.0  # $PnE f1 (0: linear)
    log_offset: float = 0.0  # $PnE f2
    gain: float = 1.0  # $PnG


@dataclass(frozen=True)
class Spillover:
    """A spillover matrix and where it came from: rows fluorochromes, columns detectors."""

    channels: tuple[str, ...]
    matrix: npt.NDArray[np.float64]
    source: str  # the keyword: "$SPILLOVER", "SPILL", "$COMP", "$DFCiTOj", or "controls"


@dataclass(eq=False)
class FcsDataset:
    """One dataset of an FCS file (files may chain several through ``$NEXTDATA``)."""

    version: str  # "FCS3.1"
    parameters: list[FcsParameter]
    events: npt.NDArray[Any]  # events × parameters, raw stored values
    keywords: dict[str, str] = field(default_factory=dict)
    spillover: Spillover | None = None

    @property
    def n_events(self) -> int:
        return int(self.events.shape[0])

    def channel(self, name: str) -> int:
        """Column of the parameter named ``name`` ($PnN); KeyError when there is none."""
        for k, p in enumerate(self.parameters):
            if p.name == name:
                return k
        raise KeyError(name)


@dataclass
class CytometryFile:
    """What a cytometer's export holds."""

    format: str  # "fcs"
    datasets: list[FcsDataset]
    metadata: dict[str, Any] = field(default_factory=dict)

    kind: Literal["cytometry"] = "cytometry"

    @property
    def primary(self) -> FcsDataset:
        """The dataset to analyse: the last one (Beckman .LMD: the full-resolution copy)."""
        return self.datasets[-1]
