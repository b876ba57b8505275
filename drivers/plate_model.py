"""A seeded MTT plate whose truth is known, shared by the simulator and the wire-level fakes.

Per well, at ``hours`` since the plate was started and wavelength ``nm`` (OD)::

    OD = blank(t) + N(t) · v(well, t) · edge(well, t) · spectrum(nm) · (1 + ε_cv) + ε_od

* ``blank(t) = blank_od + blank_drift_per_h · t`` (medium + MTT; drifts when contaminated);
* ``N(t)`` the untreated cell signal, logistic: ``K / (1 + (K/N0 − 1) e^(−r t))`` with
  ``r = ln 2 / doubling_time_h`` (so the early doubling time is ``doubling_time_h``); a
  planted stall (``growth_stop_h``: medium exhausted, incubator failure) freezes it at that
  hour, after which it falls by ``decline_per_h`` (a fraction per hour, exponential);
* ``v`` the viability of the well's cell line at its dose: it starts at 1 when the drug
  goes in and approaches the LL.4 viability ``c + (100 − c) / (1 + (d/e)^b)`` (% of
  untreated) with time constant ``kill_onset_h``, so the IC50 stays ``e`` while the curve
  deepens; the positive control (Triton) reads 2 % at once;
* ``edge`` the outer-ring loss: a fixed ``edge_loss`` plus evaporation that grows as
  ``evaporation_per_h · t`` (capped at 50 %), the second ring getting half of both;
* ``spectrum(nm)`` the formazan band, a Gaussian around ``peak_nm`` (a 650 nm reference
  read sees little of it); ε are seeded noise. Values above ``saturation_od`` and the
  ``saturated`` planted wells read as over range.

The noise of one read depends only on (seed, wavelength, whole seconds of plate age), so a
test that knows the seed and the age computes exactly what the simulator or a fake sent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from datamodel import FloatGrid, parse_well, well_name
from errors import ConfigError

Role = Literal["blank", "untreated", "treated", "positive_control", "empty"]
BoolGrid = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class CellLine:
    name: str
    ic50: float  # e, in the layout's concentration unit (IU/mL for asparaginase)
    hill: float  # b
    bottom: float  # c, % of untreated at full effect


@dataclass(frozen=True)
class WellPlan:
    role: Role
    cell_line: str | None = None
    conc: float = 0.0


CELL_LINES: tuple[CellLine, ...] = (
    CellLine("REH", ic50=0.8, hill=1.2, bottom=5.0),
    CellLine("MOLT-4P", ic50=0.004, hill=1.5, bottom=3.0),
)


def mtt_layout(
    rows: int, cols: int, lines: tuple[CellLine, ...] = CELL_LINES
) -> dict[str, WellPlan]:
    """config/layouts/mtt-96.toml generalised: column 1 blank, columns 2 and n−1 untreated,
    the columns between a 4-fold dilution series from 10, the last column Triton; the cell
    lines alternate by row."""
    plan: dict[str, WellPlan] = {}
    for r in range(rows):
        line = lines[r % len(lines)].name if lines else None
        for c in range(cols):
            if c == 0:
                spec = WellPlan("blank")
            elif c in (1, cols - 2):
                spec = WellPlan("untreated", line)
            elif c == cols - 1:
                spec = WellPlan("positive_control", line)
            else:
                spec = WellPlan("treated", line, 10.0 / 4 ** (c - 2))
            plan[well_name(r, c)] = spec
    return plan


@dataclass(frozen=True)
class PlateModel:
    seed: int = 1
    rows: int = 8
    cols: int = 12
    blank_od: float = 0.05
    blank_drift_per_h: float = 0.0
    seeded_od: float = 0.3  # N0: the cell signal (OD above blank at the peak) at hour 0
    capacity_od: float = 2.0  # K
    doubling_time_h: float = 30.0
    growth_stop_h: float = math.inf  # a planted stall: the cells stop growing at this hour
    decline_per_h: float = 0.0  # ... and then lose this fraction of their signal per hour
    kill_onset_h: float = 12.0
    edge_loss: float = 0.0
    evaporation_per_h: float = 0.0
    cv: float = 0.04
    od_sd: float = 0.004
    saturation_od: float = 4.0
    saturated: int = 0  # planted over-range wells, chosen by seed among the cell wells
    peak_nm: float = 570.0
    band_nm: float = 40.0
    cell_lines: tuple[CellLine, ...] = CELL_LINES
    layout: Mapping[str, WellPlan] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.layout:
            object.__setattr__(self, "layout", mtt_layout(self.rows, self.cols, self.cell_lines))

    # -- construction from config options ---------------------------------------------------

    NUMBER_OPTIONS = (
        "blank_od", "blank_drift_per_h", "seeded_od", "capacity_od", "doubling_time_h",
        "growth_stop_h", "decline_per_h", "kill_onset_h", "edge_loss", "evaporation_per_h", "cv", "od_sd", "saturation_od",
        "peak_nm", "band_nm",
    )  # fmt: skip
    INT_OPTIONS = ("seed", "rows", "cols", "saturated")

    @classmethod
    def from_options(cls, options: Mapping[str, Any], *, source: str = "reader") -> PlateModel:
        values: dict[str, Any] = {}
        for key, value in options.items():
            if key in cls.INT_OPTIONS:
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    raise ConfigError(
                        f"plate model option {key} must be an integer ≥ 0", source=source
                    )
            elif key in cls.NUMBER_OPTIONS:
                if not isinstance(value, int | float) or isinstance(value, bool):
                    raise ConfigError(f"plate model option {key} must be a number", source=source)
                if not math.isfinite(value) or value < 0:
                    raise ConfigError(
                        f"plate model option {key} must be finite and ≥ 0", source=source
                    )
                value = float(value)
            else:
                raise ConfigError(f"unknown plate model option {key!r}", source=source)
            values[key] = value
        model = cls(**values)
        model.check(source)
        return model

    def check(self, source: str = "plate model") -> None:
        if (self.rows, self.cols) not in ((8, 12), (16, 24)):
            raise ConfigError(
                f"plate model is {self.rows}x{self.cols}; 8x12 or 16x24", source=source
            )
        if self.doubling_time_h <= 0 or self.kill_onset_h <= 0 or self.band_nm <= 0:
            raise ConfigError(
                "doubling_time_h, kill_onset_h and band_nm must be > 0", source=source
            )
        if not 0 < self.seeded_od < self.capacity_od:
            raise ConfigError("plate model needs 0 < seeded_od < capacity_od", source=source)
        if self.edge_loss >= 1:
            raise ConfigError("edge_loss must be below 1", source=source)
        if self.decline_per_h >= 1:
            raise ConfigError("decline_per_h must be below 1", source=source)

    # -- truth --------------------------------------------------------------------------------

    @property
    def growth_rate_per_h(self) -> float:
        return math.log(2) / self.doubling_time_h

    def cell_signal(self, hours: float) -> float:
        """N(t): the untreated cell signal (OD above blank at the band peak), logistic until
        ``growth_stop_h``, then falling by ``decline_per_h`` per hour."""
        k, n0 = self.capacity_od, self.seeded_od
        grown = min(max(0.0, hours), self.growth_stop_h)
        n = k / (1 + (k / n0 - 1) * math.exp(-self.growth_rate_per_h * grown))
        if hours > self.growth_stop_h and self.decline_per_h > 0:
            n *= (1 - self.decline_per_h) ** (hours - self.growth_stop_h)
        return n

    def blank(self, hours: float) -> float:
        return self.blank_od + self.blank_drift_per_h * max(0.0, hours)

    def spectrum(self, nm: float) -> float:
        return math.exp(-0.5 * ((nm - self.peak_nm) / self.band_nm) ** 2)

    def line(self, name: str | None) -> CellLine:
        for line in self.cell_lines:
            if line.name == name:
                return line
        return CellLine(name or "?", ic50=1.0, hill=1.0, bottom=5.0)

    def viability(self, plan: WellPlan, hours: float) -> float:
        """Fraction of the untreated signal a cell well keeps at ``hours``."""
        if plan.role == "positive_control":
            return 0.02
        if plan.role != "treated" or plan.conc <= 0:
            return 1.0
        line = self.line(plan.cell_line)
        final = (
            line.bottom + (100 - line.bottom) / (1 + (plan.conc / line.ic50) ** line.hill)
        ) / 100
        onset = 1 - math.exp(-max(0.0, hours) / self.kill_onset_h)
        return float(1 - (1 - final) * onset)

    def ring(self, row: int, col: int) -> int:
        return min(row, col, self.rows - 1 - row, self.cols - 1 - col)

    def evaporation_loss(self, hours: float, ring: int = 0) -> float:
        """Fraction of cell signal lost to evaporation in ``ring`` (0 = outer) at ``hours``."""
        loss = min(0.5, self.evaporation_per_h * max(0.0, hours))
        return loss if ring == 0 else loss / 2 if ring == 1 else 0.0

    @cached_property
    def _plan_arrays(self) -> tuple[npt.NDArray[np.intp], BoolGrid, FloatGrid, FloatGrid]:
        """Per well, computed once: ring index, cell-well mask, the final viability of a
        treated well (NaN elsewhere) and the fixed viability of the other cell wells."""
        rows, cols = self.rows, self.cols
        rings = np.array([[self.ring(r, c) for c in range(cols)] for r in range(rows)])
        cells = np.zeros((rows, cols), dtype=bool)
        final = np.full((rows, cols), np.nan)
        fixed = np.ones((rows, cols))
        for name, plan in self.layout.items():
            if plan.role in ("blank", "empty"):
                continue
            r, c = parse_well(name)
            cells[r, c] = True
            if plan.role == "positive_control":
                fixed[r, c] = self.viability(plan, 0.0)
            elif plan.role == "treated" and plan.conc > 0:
                line = self.line(plan.cell_line)
                final[r, c] = (
                    line.bottom + (100 - line.bottom) / (1 + (plan.conc / line.ic50) ** line.hill)
                ) / 100
        return rings, cells, final, fixed

    def edge_factor(self, hours: float) -> FloatGrid:
        rings = self._plan_arrays[0]
        grid = np.ones((self.rows, self.cols))
        for ring in (0, 1):
            fixed = self.edge_loss if ring == 0 else self.edge_loss / 2
            grid[rings == ring] = (1 - fixed) * (1 - self.evaporation_loss(hours, ring))
        return grid

    def cell_grid(self, hours: float) -> FloatGrid:
        """Noise-free cell signal per well at the band peak (0 for blank and empty wells);
        the same numbers as :meth:`viability` per well, computed for the whole plate."""
        _, cells, final, fixed = self._plan_arrays
        onset = 1 - math.exp(-max(0.0, hours) / self.kill_onset_h)
        with np.errstate(invalid="ignore"):
            viability = np.where(np.isnan(final), fixed, 1 - (1 - final) * onset)
        grid = np.where(cells, self.cell_signal(hours) * viability, 0.0)
        return np.asarray(grid * self.edge_factor(hours), dtype=float)

    def background_grid(self, hours: float) -> FloatGrid:
        grid = np.full((self.rows, self.cols), self.blank(hours))
        for name, plan in self.layout.items():
            if plan.role == "empty":
                r, c = parse_well(name)
                grid[r, c] = 0.04
        return grid

    def expected(self, nm: float, hours: float) -> FloatGrid:
        """The noise-free OD of every well (before the reader's range is applied)."""
        return self.background_grid(hours) + self.cell_grid(hours) * self.spectrum(nm)

    @property
    def planted(self) -> dict[str, str]:
        """Defects planted by seed: well → what (``saturated``)."""
        if not self.saturated:
            return {}
        rng = np.random.default_rng([self.seed, 7919])
        cells = sorted(
            (n for n, p in self.layout.items() if p.role in ("untreated", "treated")),
            key=lambda n: parse_well(n),
        )
        chosen = rng.choice(len(cells), size=min(self.saturated, len(cells)), replace=False)
        return {cells[int(i)]: "saturated" for i in sorted(chosen)}

    def measure(self, nm: float, hours: float) -> tuple[FloatGrid, BoolGrid]:
        """One read: (OD values, over-range mask). Reproducible from seed, nm and age."""
        age_s = round(max(0.0, hours) * 3600)
        rng = np.random.default_rng([self.seed, round(nm), age_s])
        cells = self.cell_grid(hours) * self.spectrum(nm)
        noisy = cells * (1 + rng.normal(0, self.cv, cells.shape))
        values = self.background_grid(hours) + noisy + rng.normal(0, self.od_sd, cells.shape)
        values = np.maximum(values, 0.0)
        over = values > self.saturation_od
        for name in self.planted:
            r, c = parse_well(name)
            over[r, c] = True
        return values, over

    def truth(self) -> dict[str, Any]:
        """What the tests (and a reader of a demo) may check analyses against."""
        return {
            "seed": self.seed,
            "rows": self.rows,
            "cols": self.cols,
            "doubling_time_h": self.doubling_time_h,
            "growth_rate_per_h": self.growth_rate_per_h,
            "growth_stop_h": self.growth_stop_h if math.isfinite(self.growth_stop_h) else None,
            "decline_per_h": self.decline_per_h,
            "capacity_od": self.capacity_od,
            "seeded_od": self.seeded_od,
            "blank_od": self.blank_od,
            "blank_drift_per_h": self.blank_drift_per_h,
            "edge_loss": self.edge_loss,
            "evaporation_per_h": self.evaporation_per_h,
            "kill_onset_h": self.kill_onset_h,
            "cell_lines": [
                {"name": x.name, "ic50": x.ic50, "hill": x.hill, "bottom": x.bottom}
                for x in self.cell_lines
            ],
            "planted": self.planted,
        }


def option_names() -> list[str]:
    """Every key a ``[reader.options]`` of a simulated reader may hold for the model."""
    return [f.name for f in fields(PlateModel) if f.name not in ("cell_lines", "layout")]
