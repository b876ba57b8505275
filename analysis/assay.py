"""The plate analysis: reads + layout → normalised plate, curves, flags, verdict.

Checks run in a fixed order and each returns its own flags and metrics. A plate without
signal (nothing readable, every well one value, no readable untreated wells) is not fitted
and not judged for position effects: it gets the flags that say what is wrong with it and
no IC50, CI, F-test or kill figure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from analysis.advice import message
from analysis.curves import Curve, ReferenceRange, curve_check, fit_curves
from analysis.doseresponse import ResponseRules
from analysis.layout import Layout
from analysis.model import SEVERITY_RANK, Check, Flag, Verdict, verdict_of
from analysis.plate import NormalisedPlate, choose_reads, normalise
from analysis.qc import (
    QCThresholds,
    control_check,
    layout_size_check,
    replicate_check,
    signal_check,
    well_status_check,
)
from analysis.spatial import SpatialThresholds, spatial_check
from datamodel import PlateRead

WAVELENGTH_TOLERANCE_NM = 10.0


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
        """The stored and printed result (DESIGN.md §5.1), with what its report is drawn from."""
        plate = self.plate
        rows, cols = plate.shape
        values = plate.primary.to_dict()["values"]
        return {
            "path": path,
            "kind": "plate",
            "plate": self.plate_id,
            "verdict": self.verdict,
            "flags": [f.to_dict() for f in self.flags],
            "curves": [c.to_dict() for c in self.curves],
            "qc": self.qc,
            "grid": {
                "rows": rows,
                "cols": cols,
                "read": plate.primary.label,
                "unit": plate.unit,
                "values": values,
                "status": [[str(s) for s in row] for row in plate.status],
                "roles": {w: s.role for w, s in plate.layout.wells.items()},
            },
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
    assay: str = "mtt",
) -> PlateResult:
    """Analyse one plate. Pure: everything it needs is passed in; nothing is written."""
    primary, reference = choose_reads(reads, wavelength_nm, reference_band)
    plate = normalise(primary, reference, layout)
    check = Check(
        metrics={
            "assay": assay,
            "read": primary.label,
            "mode": primary.mode,
            "unit": primary.unit,
            "wavelength_nm": primary.wavelength_nm,
            "reference_read": reference.label if reference else None,
            "reference_wavelength_nm": reference.wavelength_nm if reference else None,
            "rows": plate.shape[0],
            "cols": plate.shape[1],
        }
    )
    check += _wavelength_check(primary, wavelength_nm, assay)
    check += signal_check(plate, assay)
    check += layout_size_check(plate, assay)
    controls = control_check(plate, qc, assay)
    check += controls
    has_signal = not any(
        f.code == "no_signal"
        or (f.code == "missing_controls" and f.severity == "critical")
        or (f.code == "low_signal" and f.severity == "critical")
        or (f.code == "layout_mismatch" and f.severity == "critical")
        for f in check.flags
    )
    curves: list[Curve] = []
    if has_signal:
        curves = fit_curves(plate, rules or ResponseRules(), references, confidence_level)
    else:
        check.metrics["curves"] = "not fitted: the plate has no usable signal (see the flags)"
    check += well_status_check(plate, qc, curves, assay)
    if has_signal:
        check += replicate_check(plate, qc, assay)
        check += spatial_check(plate, curves, qc, assay)
        check += curve_check(curves, assay)
    flags = sorted(check.flags, key=lambda f: -SEVERITY_RANK[f.severity])
    return PlateResult(
        plate_id=plate_id,
        verdict=verdict_of(flags),
        flags=flags,
        curves=curves,
        qc=check.metrics,
        plate=plate,
    )


def _wavelength_check(primary: PlateRead, wavelength_nm: float, assay: str) -> Check:
    """wavelength_differs: the read used is not at the configured wavelength (said, not hidden)."""
    check = Check()
    if primary.mode != "absorbance" or primary.wavelength_nm is None:
        return check
    if abs(primary.wavelength_nm - wavelength_nm) > WAVELENGTH_TOLERANCE_NM:
        what = (
            f"the measurement read is at {primary.wavelength_nm:g} nm, not the configured "
            f"{wavelength_nm:g} nm; the {primary.wavelength_nm:g} nm read was analysed"
        )
        check.flags.append(
            Flag(
                "wavelength_differs",
                "info",
                message(what, assay, "wavelength_differs"),
                [],
                {"read_nm": primary.wavelength_nm, "configured_nm": wavelength_nm},
            )
        )
    return check
