"""The MTT plate analysis: reads + layout → normalised plate, curves, flags, verdict."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from analysis.curves import Curve, ReferenceRange, curve_flags, fit_curves
from analysis.doseresponse import ResponseRules
from analysis.layout import Layout
from analysis.model import SEVERITY_RANK, Flag, Verdict, verdict_of
from analysis.plate import NormalisedPlate, choose_reads, normalise
from analysis.qc import QCThresholds, control_flags, replicate_flags, well_status_flags
from analysis.spatial import SpatialThresholds, spatial_flags
from datamodel import PlateRead


class PlateThresholds(QCThresholds, SpatialThresholds, Protocol):
    """Every threshold a plate analysis reads (config.schema.QCSettings satisfies this)."""


@dataclass
class PlateResult:
    plate_id: str
    verdict: Verdict
    flags: list[Flag]
    curves: list[Curve]
    qc: dict[str, Any]
    plate: NormalisedPlate
    report: dict[str, str] = field(default_factory=dict)

    def to_dict(self, path: str) -> dict[str, Any]:
        return {
            "path": path,
            "kind": "plate",
            "plate": self.plate_id,
            "verdict": self.verdict,
            "flags": [f.to_dict() for f in self.flags],
            "curves": [c.to_dict() for c in self.curves],
            "qc": self.qc,
            "report": self.report or None,
        }


def analyze_plate(
    reads: list[PlateRead],
    layout: Layout,
    qc: PlateThresholds,
    *,
    rules: ResponseRules | None = None,
    wavelength_nm: float = 570.0,
    reference_band: tuple[float, float] = (600.0, 700.0),
    references: Mapping[str, ReferenceRange] | None = None,
    confidence_level: float = 0.95,
    plate_id: str = "",
) -> PlateResult:
    """Analyse one plate. Pure: everything it needs is passed in; nothing is written."""
    primary, reference = choose_reads(reads, wavelength_nm, reference_band)
    plate = normalise(primary, reference, layout)
    metrics: dict[str, Any] = {
        "read": primary.label,
        "wavelength_nm": primary.wavelength_nm,
        "reference_read": reference.label if reference else None,
        "reference_wavelength_nm": reference.wavelength_nm if reference else None,
        "rows": plate.shape[0],
        "cols": plate.shape[1],
    }
    curves = fit_curves(plate, rules or ResponseRules(), references, confidence_level)
    flags: list[Flag] = []
    flags += well_status_flags(plate, qc, curves)
    flags += control_flags(plate, qc, metrics)
    flags += replicate_flags(plate, qc, metrics)
    flags += spatial_flags(plate, curves, qc, metrics)
    flags += curve_flags(curves)
    flags.sort(key=lambda f: -SEVERITY_RANK[f.severity])
    return PlateResult(
        plate_id=plate_id,
        verdict=verdict_of(flags),
        flags=flags,
        curves=curves,
        qc=metrics,
        plate=plate,
    )
