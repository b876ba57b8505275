"""Flow cytometry records: what an FCS file holds, as the reader hands it on (DESIGN.md §4).

Values are the raw stored values (integers masked to ``$PnR``), never scaled: scaling by
``$PnE``/``$PnG``/``$TIMESTEP`` and compensation are the analysis' business. The helpers
here only say how a stored value maps to a linear one (:meth:`FcsParameter.linear`), so
the analysis and the ``parse --json`` record agree on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

# Keywords that name the well or tube a sample came from, in the order they are trusted.
WELL_KEYWORDS: tuple[str, ...] = ("$WELLID", "WELL ID", "WELLID", "BDPM$WELL", "WELL")


@dataclass(frozen=True)
class FcsParameter:
    """One ``$Pn`` parameter (a detector channel, a scatter signal or time)."""

    index: int  # n of $Pn (1-based)
    name: str  # $PnN, e.g. "FL1-A"
    label: str | None  # $PnS, the stain, e.g. "Annexin V-FITC"
    bits: int | None  # $PnB as stored (None for free-format ASCII '*')
    range: float  # $PnR
    log_decades: float = 0.0  # $PnE f1 (0: linear)
    log_offset: float = 0.0  # $PnE f2 (already 1 where a file wrote 0 with f1 > 0)
    gain: float = 1.0  # $PnG
    timestep: float | None = None  # $TIMESTEP, on the time parameter only

    @property
    def is_log(self) -> bool:
        return self.log_decades > 0

    @property
    def saturation(self) -> float:
        """The stored value at and above which an event is at the top of the range."""
        return self.range - 1

    def linear(self, raw: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
        """Stored values → linear values: ``$PnE`` decoded, ``$PnG`` and ``$TIMESTEP`` applied.

        Log amplification (FCS 3.1 §3.2.20): value = f2 · 10^(f1 · x / $PnR). Linear
        parameters are divided by their gain; the time parameter is multiplied by the
        time step (seconds per tick).
        """
        with np.errstate(invalid="ignore", over="ignore"):  # junk floats stay NaN/inf
            x = np.asarray(raw).astype(np.float64)
            if self.is_log:
                return self.log_offset * np.power(10.0, self.log_decades * x / self.range)
            if self.timestep is not None:
                return x * self.timestep
            if self.gain != 1.0:
                return x / self.gain
            return x


@dataclass(frozen=True)
class Spillover:
    """A spillover matrix and where it came from: rows fluorochromes, columns detectors.

    ``matrix[i, j]`` is the fraction of fluorochrome ``channels[i]``'s signal that its own
    detector sees that detector ``channels[j]`` also sees (diagonal 1).
    """

    channels: tuple[str, ...]
    matrix: npt.NDArray[np.float64]
    source: str  # the keyword: "$SPILLOVER", "SPILL", "$COMP", "$DFCiTOj", or "controls"

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "channels": list(self.channels),
            "matrix": [[float(v) for v in row] for row in self.matrix],
        }

    def restricted(self, channels: tuple[str, ...]) -> Spillover | None:
        """The sub-matrix of these channels, or None when one of them is not in the matrix."""
        if not all(c in self.channels for c in channels):
            return None
        idx = [self.channels.index(c) for c in channels]
        return Spillover(channels, self.matrix[np.ix_(idx, idx)].copy(), self.source)

    @property
    def is_identity(self) -> bool:
        return bool(np.allclose(self.matrix, np.eye(len(self.channels)), atol=1e-9))


DataType = Literal["I", "F", "D", "A"]


@dataclass(frozen=True)
class DataLayout:
    """How the DATA segment of a dataset was found and decoded (for records and reports)."""

    datatype: DataType
    byteorder: Literal["little", "big"]
    begin: int  # absolute byte offset of the first event in the file
    length: int  # bytes read
    source: str  # which offsets were used: "HEADER", "TEXT" ($BEGINDATA/$ENDDATA), ...
    storage_bits: tuple[int, ...] = ()  # bits each parameter actually occupies
    masked: tuple[int, ...] = ()  # parameter indices (1-based) whose high bits were masked


@dataclass(eq=False)
class FcsDataset:
    """One dataset of an FCS file (files may chain several through ``$NEXTDATA``)."""

    version: str  # "FCS3.1"
    parameters: list[FcsParameter]
    events: npt.NDArray[Any]  # events × parameters, raw stored values (often a view of the
    # file's bytes: treat as read-only)
    keywords: dict[str, str] = field(default_factory=dict)  # keys upper-cased
    spillover: Spillover | None = None
    layout: DataLayout | None = None
    offset: int = 0  # byte offset of this dataset's HEADER in the file
    warnings: list[str] = field(default_factory=list)  # quirks met and how they were read

    @property
    def n_events(self) -> int:
        return int(self.events.shape[0])

    def channel(self, name: str) -> int:
        """Column of the parameter named ``name`` ($PnN); KeyError when there is none."""
        for k, p in enumerate(self.parameters):
            if p.name == name:
                return k
        raise KeyError(name)

    def parameter(self, name: str) -> FcsParameter:
        return self.parameters[self.channel(name)]

    def linear(self, name: str) -> npt.NDArray[np.float64]:
        """One parameter's linear values (see :meth:`FcsParameter.linear`)."""
        k = self.channel(name)
        return self.parameters[k].linear(self.events[:, k])

    @property
    def well_id(self) -> str | None:
        for key in WELL_KEYWORDS:
            value = self.keywords.get(key, "").strip()
            if value:
                return value
        return None

    def keyword(self, key: str) -> str | None:
        """A keyword's value (case-insensitive key), None when absent or blank."""
        value = self.keywords.get(key.upper(), "").strip()
        return value or None


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
