"""Seeded timecourses from the plate model (drivers/plate_model.py), with the truth known.

A timecourse is the plate model read at planned hours (every ``every_h`` from 0 to
``for_h``) at 570 nm and the 650 nm reference, through the protocol-level simulator's
``model_read`` (so the reads are exactly what a simulated reader returns). Each seed draws
a plausible plate (doubling time, seeding, capacity, noise, kill onset) and, for a planted
defect, its size:

* ``growth_stop``: growth stops at an hour in [20, 48] h; half the seeds then lose
  0.2–1 %/h of their signal;
* ``blank_rise``: the blanks rise by 0.03–0.10 OD by the end (contamination);
* ``edge_drying``: the outer ring loses 15–30 % of its signal to evaporation by the end
  (the second ring half of that).

The model's exponential phase is clean (seeded signal ≤ 5 % of the capacity), so its
``doubling_time_h`` is the doubling time the untreated wells show early on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from analysis.layout import Layout, WellSpec
from analysis.timecourse import MissedRead, TimePoint
from drivers.plate_model import PlateModel
from drivers.simulator import SimulatedReader

Defect = Literal["clean", "growth_stop", "blank_rise", "edge_drying"]
DEFECTS: tuple[Defect, ...] = ("growth_stop", "blank_rise", "edge_drying")
WAVELENGTHS = (570.0, 650.0)


def model_layout(model: PlateModel) -> Layout:
    """The model's plate plan as a platewatch layout (asparaginase in IU/mL)."""
    wells: dict[str, WellSpec] = {}
    for name, plan in model.layout.items():
        if plan.role == "treated":
            spec = WellSpec("treated", "asparaginase", plan.conc, "IU/mL", cell_line=plan.cell_line)
        elif plan.role == "positive_control":
            spec = WellSpec("positive_control", "triton-x100", cell_line=plan.cell_line)
        elif plan.role == "untreated":
            spec = WellSpec("untreated", cell_line=plan.cell_line)
        else:
            spec = WellSpec(plan.role)
        wells[name] = spec
    return Layout(wells=wells, source="plate model", declared_shape=(model.rows, model.cols))


def timecourse_model(seed: int, defect: Defect = "clean", *, for_h: float = 72.0) -> PlateModel:
    """A plausible plate for this seed, with ``defect`` planted (sizes drawn by seed)."""
    rng = np.random.default_rng([seed, 1313])
    model = PlateModel(
        seed=seed,
        doubling_time_h=float(rng.uniform(20.0, 36.0)),
        seeded_od=float(rng.uniform(0.08, 0.14)),
        capacity_od=float(rng.uniform(2.8, 3.6)),
        kill_onset_h=float(rng.uniform(8.0, 16.0)),
        blank_od=float(rng.uniform(0.04, 0.07)),
        cv=float(rng.uniform(0.03, 0.06)),
    )
    stop_h = float(rng.uniform(20.0, 48.0))
    decline = float(rng.uniform(0.002, 0.01)) if rng.random() < 0.5 else 0.0
    rise = float(rng.uniform(0.03, 0.10))
    drying = float(rng.uniform(0.15, 0.30))
    if defect == "growth_stop":
        model = replace(model, growth_stop_h=stop_h, decline_per_h=decline)
    elif defect == "blank_rise":
        model = replace(model, blank_drift_per_h=rise / for_h)
    elif defect == "edge_drying":
        model = replace(model, evaporation_per_h=drying / for_h)
    return model


@dataclass
class SimulatedTimecourse:
    model: PlateModel
    layout: Layout
    defect: Defect
    planned_h: list[float]
    points: list[TimePoint]
    missed: list[MissedRead] = field(default_factory=list)

    @property
    def truth(self) -> dict[str, Any]:
        out = self.model.truth()
        out["defect"] = self.defect
        out["blank_rise_at_end"] = self.model.blank_drift_per_h * self.planned_h[-1]
        out["edge_loss_at_end"] = self.model.evaporation_loss(self.planned_h[-1], 0)
        return out


def simulate_timecourse(
    seed: int,
    defect: Defect = "clean",
    *,
    every_h: float = 2.0,
    for_h: float = 72.0,
    missed: Sequence[int] = (),
    model: PlateModel | None = None,
) -> SimulatedTimecourse:
    """Read the model at 0, every_h, … for_h; the planned reads with an index in ``missed``
    are not taken (the scheduler reports them as missed)."""
    model = model or timecourse_model(seed, defect, for_h=for_h)
    n = math.floor(for_h / every_h + 1e-9) + 1
    planned = [round(k * every_h, 6) for k in range(n)]
    skipped = set(missed)
    points = [
        TimePoint(
            t_h=hours,
            reads=[SimulatedReader.model_read(model, nm, hours) for nm in WAVELENGTHS],
            id=f"read-{k}",
        )
        for k, hours in enumerate(planned)
        if k not in skipped
    ]
    lost = [MissedRead(k, planned[k], "reader offline (simulated)") for k in sorted(skipped)]
    return SimulatedTimecourse(model, model_layout(model), defect, planned, points, lost)
