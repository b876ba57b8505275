"""The records of the Annexin V/PI analysis: inputs, thresholds, results (DESIGN.md §4–5).

Thresholds arrive as an object satisfying :class:`CytometryThresholds` (the config's
settings will; :class:`CytometryDefaults` holds the defaults), so ``analysis/`` never
imports ``config/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from analysis.model import Flag, Verdict, jsonable
from datamodel.cytometry import FcsDataset

Array = npt.NDArray[np.float64]
Role = Literal["sample", "untreated", "unstained", "annexin_only", "pi_only"]
CONTROL_ROLES: tuple[Role, ...] = ("unstained", "annexin_only", "pi_only")
POPULATIONS = ("live", "early_apoptotic", "late_apoptotic", "necrotic")
ThresholdMethod = Literal["valley", "control"]
CompensationChoice = Literal["auto", "file", "controls", "none"]
TransformName = Literal["logicle", "arcsinh"]


class CytometryThresholds(Protocol):
    """Every setting the cytometry analysis reads (config's cytometry section satisfies it)."""

    @property
    def min_events(self) -> int: ...  # cells after the gates below this: few_events
    @property
    def saturated_max(self) -> float: ...  # fraction of events at the range top: flag above
    @property
    def time_rate_drop(self) -> float: ...  # a time bin below this × median rate is unstable
    @property
    def time_shift_decades(self) -> float: ...  # median log10 scatter shift of an unstable bin
    @property
    def instability_max(self) -> float: ...  # fraction excluded by the time gate: flag above
    @property
    def debris_fraction(self) -> float: ...  # FSC-A threshold × main peak with no valley
    @property
    def debris_max_fraction(self) -> float: ...  # the debris threshold never exceeds this
    @property
    def singlet_mads(self) -> float: ...  # FSC-A/FSC-H within median ± this × MAD
    @property
    def control_percentile(self) -> float: ...  # control threshold percentile
    @property
    def valley_min_fraction(self) -> float: ...  # a positive peak must hold this fraction
    @property
    def valley_max_depth(self) -> float: ...  # valley density / smaller peak density
    @property
    def threshold_method(self) -> ThresholdMethod: ...  # preferred; the other is fallback
    @property
    def threshold_margin(self) -> float: ...  # percentage points: thresholds_disagree
    @property
    def viability_control_min(self) -> float: ...  # % live of the untreated sample
    @property
    def necrotic_max(self) -> float: ...  # % AnnV−/PI+ above which high_necrotic warns
    @property
    def compensation(self) -> CompensationChoice: ...
    @property
    def transform(self) -> TransformName: ...  # valley search and plots
    @property
    def arcsinh_cofactor(self) -> float: ...


@dataclass(frozen=True)
class CytometryDefaults:
    """The default settings (judgement calls, SCIENCE.md §7)."""

    min_events: int = 2000
    saturated_max: float = 0.01
    time_rate_drop: float = 0.25
    time_shift_decades: float = 0.1
    instability_max: float = 0.02
    debris_fraction: float = 0.25
    debris_max_fraction: float = 0.5
    singlet_mads: float = 4.0
    control_percentile: float = 99.5
    valley_min_fraction: float = 0.01
    valley_max_depth: float = 0.8
    threshold_method: ThresholdMethod = "valley"
    threshold_margin: float = 5.0
    viability_control_min: float = 70.0
    necrotic_max: float = 15.0
    compensation: CompensationChoice = "auto"
    transform: TransformName = "arcsinh"
    arcsinh_cofactor: float = 150.0


@dataclass(frozen=True)
class ChannelMap:
    """Which parameters ($PnN) carry what. Scatter channels may be found by name."""

    annexin: str
    pi: str
    fsc_a: str
    ssc_a: str
    fsc_h: str | None = None
    fsc_w: str | None = None
    time: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {
            "annexin": self.annexin,
            "pi": self.pi,
            "fsc_a": self.fsc_a,
            "ssc_a": self.ssc_a,
            "fsc_h": self.fsc_h,
            "fsc_w": self.fsc_w,
            "time": self.time,
        }


@dataclass
class SampleInput:
    """One tube of the batch: where it came from (for messages), its role and its data."""

    name: str
    role: Role
    dataset: FcsDataset


@dataclass
class PlotData:
    """What the report draws for one sample (float32, at most ~50,000 events each)."""

    fsc: Array  # FSC-A of events past saturation and time gates
    ssc: Array
    fsc_other: Array | None  # FSC-H or FSC-W of the same events
    other_kind: str | None
    debris_threshold: float | None
    singlet_bounds: tuple[float, float] | None
    annexin: Array  # compensated, of the cells (all gates)
    pi: Array
    thresholds: tuple[float | None, float | None]
    names: tuple[str, str]  # axis titles


@dataclass
class CytometryResult:
    """One tube's analysis (the JSON of ``analyze`` per FCS file, DESIGN.md §5.1)."""

    path: str
    role: Role
    verdict: Verdict
    flags: list[Flag]
    populations: dict[str, dict[str, float | int]] | None
    gates: dict[str, Any]
    compensation: dict[str, Any]
    well: str | None = None
    report: dict[str, str] = field(default_factory=dict)
    plot: PlotData | None = None

    def percent(self, population: str) -> float | None:
        if self.populations is None:
            return None
        return float(self.populations[population]["percent"])

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = jsonable(
            {
                "path": self.path,
                "kind": "cytometry",
                "role": self.role,
                "well": self.well,
                "verdict": self.verdict,
                "flags": [f.to_dict() for f in self.flags],
                "populations": self.populations,
                "gates": self.gates,
                "compensation": self.compensation,
                "report": self.report or None,
            }
        )
        return record
