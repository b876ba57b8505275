"""From raw reads and a layout to blank-corrected signal and % of untreated (SCIENCE.md §1).

Reference-wavelength subtraction when a reference read exists, then subtraction of the
mean of the blank (medium-only) wells, then each cell well as % of the mean untreated well
of its cell line. Only ``ok`` wells enter any mean; every other well keeps its status. A
value no instrument can produce (an absorbance beyond 10 OD) is ``invalid``, never data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from analysis.layout import CELL_ROLES, Layout, WellSpec
from datamodel import PlateRead, WellStatus, parse_well, well_name
from errors import AnalysisError

Array = npt.NDArray[np.float64]
GroupKey = tuple[str, str | None, float | None, str | None]  # role, compound, conc, line

MAX_OD = 10.0  # 10 OD = 1e-10 transmission: no absorbance reader reports more
MIN_OD = -1.0


@dataclass
class NormalisedPlate:
    """A plate after reference and blank correction, with the layout attached."""

    layout: Layout
    primary: PlateRead
    reference: PlateRead | None
    od: Array  # primary − reference
    status: npt.NDArray[np.object_]  # combined status of primary and reference
    blank_mean: float
    blank_values: Array
    corrected: Array  # od − blank mean (od itself when there are no blanks)
    untreated_mean: dict[str | None, float]
    viability: Array  # % of the untreated mean of the well's line; NaN outside cell wells
    groups: dict[GroupKey, list[str]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # raw token of every non-ok well

    @property
    def shape(self) -> tuple[int, int]:
        return self.primary.shape

    @property
    def unit(self) -> str:
        return self.primary.unit

    def ok(self, well: str) -> bool:
        r, c = parse_well(well)
        return bool(self.status[r, c] == WellStatus.OK)

    def values(self, wells: list[str], grid: Array | None = None) -> Array:
        """Values of the ok wells among ``wells`` (corrected signal unless a grid is given)."""
        source = self.corrected if grid is None else grid
        out = [source[parse_well(w)] for w in wells if self.ok(w)]
        return np.asarray(out, dtype=float)


def choose_reads(
    reads: list[PlateRead], wavelength_nm: float, reference_band: tuple[float, float]
) -> tuple[PlateRead, PlateRead | None]:
    """The measurement read (closest to ``wavelength_nm``) and a reference read, if any.

    Kinetic exports give several reads per wavelength: the last time point is the endpoint.
    """
    if not reads:
        raise AnalysisError("the plate has no reads")
    latest: dict[float | None, PlateRead] = {}
    for read in reads:
        key = read.wavelength_nm
        if key not in latest or (read.time_s or 0) >= (latest[key].time_s or 0):
            latest[key] = read
    candidates = list(latest.values())
    low, high = reference_band
    references = [
        r
        for r in candidates
        if r.mode == "absorbance" and r.wavelength_nm is not None and low <= r.wavelength_nm <= high
    ]
    measurement = [r for r in candidates if r not in references] or candidates
    primary = min(
        measurement,
        key=lambda r: (
            abs(r.wavelength_nm - wavelength_nm) if r.wavelength_nm is not None else math.inf
        ),
    )
    reference = next(
        (
            r
            for r in references
            if r is not primary and r.shape == primary.shape and primary.mode == "absorbance"
        ),
        None,
    )
    return primary, reference


def group_key(spec: WellSpec) -> GroupKey:
    return (spec.role, spec.compound, spec.conc, spec.cell_line)


def _plausible(read: PlateRead) -> tuple[Array, npt.NDArray[np.object_], dict[str, str]]:
    """Values, statuses and tokens with impossible absorbances marked invalid."""
    values = read.values.copy()
    status = read.status.copy()
    tokens = dict(read.raw_tokens)
    if read.mode == "absorbance":
        ok = status == WellStatus.OK
        with np.errstate(invalid="ignore"):
            bad = ok & ~((values >= MIN_OD) & (values <= MAX_OD))
        for r, c in zip(*np.nonzero(bad), strict=True):
            tokens[well_name(int(r), int(c))] = f"{values[r, c]:.6g}"
            status[r, c] = WellStatus.INVALID
            values[r, c] = np.nan
    return values, status, tokens


def normalise(primary: PlateRead, reference: PlateRead | None, layout: Layout) -> NormalisedPlate:
    rows, cols = primary.shape
    layout.check_fits(rows, cols)
    od, status, tokens = _plausible(primary)
    if reference is not None:
        ref_values, ref_status, ref_tokens = _plausible(reference)
        od = od - ref_values
        bad_ref = (ref_status != WellStatus.OK) & (status == WellStatus.OK)
        status[bad_ref] = ref_status[bad_ref]
        for r, c in zip(*np.nonzero(bad_ref), strict=True):
            name = well_name(int(r), int(c))
            if name in ref_tokens:
                tokens[name] = f"{ref_tokens[name]} (reference read)"

    groups: dict[GroupKey, list[str]] = {}
    for well, spec in layout.wells.items():
        groups.setdefault(group_key(spec), []).append(well)

    def ok_values(wells: list[str], grid: Array) -> Array:
        vals = [grid[parse_well(w)] for w in wells if status[parse_well(w)] == WellStatus.OK]
        return np.asarray(vals, dtype=float)

    blank_values = ok_values(layout.wells_with("blank"), od)
    blank_mean = float(blank_values.mean()) if len(blank_values) else math.nan
    corrected = od - (blank_mean if math.isfinite(blank_mean) else 0.0)

    untreated_mean: dict[str | None, float] = {}
    for line in layout.cell_lines:
        vals = ok_values(layout.untreated_for(line), corrected)
        untreated_mean[line] = float(vals.mean()) if len(vals) else math.nan

    viability = np.full((rows, cols), np.nan)
    for well, spec in layout.wells.items():
        if spec.role in CELL_ROLES:
            r, c = parse_well(well)
            base = untreated_mean.get(spec.cell_line, math.nan)
            if math.isfinite(base) and base > 0 and status[r, c] == WellStatus.OK:
                viability[r, c] = 100.0 * corrected[r, c] / base
    return NormalisedPlate(
        layout=layout,
        primary=primary,
        reference=reference,
        od=od,
        status=status,
        blank_mean=blank_mean,
        blank_values=blank_values,
        corrected=corrected,
        untreated_mean=untreated_mean,
        viability=viability,
        groups=groups,
        tokens=tokens,
    )
