"""One read of a timecourse, summarised: blank level, untreated growth signal, edge ratio,
and (optionally) its dose-response curves and plate flags.

Each time point is normalised exactly as a plate is (``analysis.plate``: reference and
blank subtraction, % of the untreated mean of each line). What the timecourse follows:

* blank level: the mean of the ok blank wells on the raw measurement read (and on the
  reference read). The raw read is the one that shows contamination: turbid medium raises
  both wavelengths, so the reference-subtracted blank can stay flat while the wells cloud.
* untreated signal: the mean blank-corrected signal of the ok untreated wells, per cell
  line and pooled (the growth series).
* edge ring ratio: each cell well against the median of the interior wells that hold the
  same thing (same role, compound, dose and line) at the same read; the ratio of the
  median of the outer-ring wells' ratios to the median of the interior wells' ratios.
  Replicates are compared with replicates, so the ratio needs no curve fit and means the
  same at hour 0 (no kill yet) as at hour 72; wells whose group sits below ``floor`` %
  viability are left out (their ratios are noise). "Outer ring" is row A or the last row,
  or column 1 or the last column, as in the plate's ring test.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from analysis.assay import PlateThresholds, analyze_plate
from analysis.curves import Curve, ReferenceRange, fit_curves
from analysis.doseresponse import ResponseRules
from analysis.layout import Layout
from analysis.model import Flag
from analysis.plate import NormalisedPlate, choose_reads, group_key, normalise
from analysis.stats import mann_whitney_p
from datamodel import PlateRead, WellStatus, parse_well
from errors import AnalysisError, LayoutError

Array = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.intp]


@dataclass(frozen=True)
class TimePoint:
    """One read of the plate: hours since the timecourse started and the plate's reads."""

    t_h: float
    reads: Sequence[PlateRead]  # measurement and reference reads, as an export holds them
    id: str = ""  # capture id, file name: carried into the result


def kinetic_points(reads: Sequence[PlateRead], *, id: str = "") -> list[TimePoint]:
    """The reads of a kinetic export (Gen5, SoftMax Pro …) as a timecourse: the k-th read
    of each wavelength (in time order) make the k-th point, at the hours of its earliest
    read's ``time_s`` (the kinetic clock). A read without a time is its own point at 0."""
    by_wavelength: dict[object, list[PlateRead]] = {}
    for read in reads:
        key = read.wavelength_nm if read.wavelength_nm is not None else read.label
        by_wavelength.setdefault(key, []).append(read)
    for series in by_wavelength.values():
        series.sort(key=lambda r: r.time_s if r.time_s is not None else 0.0)
    points: list[TimePoint] = []
    longest = max((len(v) for v in by_wavelength.values()), default=0)
    for k in range(longest):
        group = [series[k] for series in by_wavelength.values() if k < len(series)]
        seconds = min((r.time_s for r in group if r.time_s is not None), default=0.0)
        name = f"{id}#{k}" if id else f"#{k}"
        points.append(TimePoint(t_h=float(seconds) / 3600.0, reads=group, id=name))
    return points


@dataclass(frozen=True)
class RingRatio:
    ratio: float
    p: float
    outer_n: int
    interior_n: int


@dataclass
class PointSummary:
    index: int
    t_h: float
    id: str
    plate: NormalisedPlate | None = None
    blank_raw: float = math.nan
    blank_reference: float = math.nan
    untreated: dict[str | None, float] = field(default_factory=dict)
    untreated_all: float = math.nan
    ring: RingRatio | None = None  # filled over the series (``ring_ratios``)
    curves: list[Curve] = field(default_factory=list)
    plate_verdict: str | None = None
    plate_flags: list[Flag] = field(default_factory=list)
    error: str = ""


@dataclass(frozen=True)
class EdgeGroups:
    """Cell wells grouped by what they hold (role, compound, dose, line), only groups with
    wells both on the outer ring and inside it: padded matrices of flat grid indices
    (−1 = padding), one row per group."""

    outer: IndexArray  # groups × most outer wells of a group
    inner: IndexArray  # groups × most interior wells of a group
    outer_wells: tuple[str, ...]

    @classmethod
    def of(cls, layout: Layout, shape: tuple[int, int]) -> EdgeGroups:
        rows, cols = shape
        by_group: dict[object, tuple[list[int], list[int], list[str]]] = {}
        for well, spec in layout.wells.items():
            if spec.role not in ("untreated", "treated"):
                continue
            r, c = parse_well(well)
            entry = by_group.setdefault(group_key(spec), ([], [], []))
            if r in (0, rows - 1) or c in (0, cols - 1):
                entry[0].append(r * cols + c)
                entry[2].append(well)
            else:
                entry[1].append(r * cols + c)
        kept = [g for g in by_group.values() if g[0] and g[1]]
        return cls(
            _padded([g[0] for g in kept]),
            _padded([g[1] for g in kept]),
            tuple(w for g in kept for w in g[2]),
        )


def _padded(rows: list[list[int]]) -> IndexArray:
    width = max((len(r) for r in rows), default=0)
    out = np.full((len(rows), width), -1, dtype=np.intp)
    for k, r in enumerate(rows):
        out[k, : len(r)] = r
    return out


def _gather(values: Array, index: IndexArray) -> Array:
    """values (reads × wells) at a padded index matrix → reads × groups × members (NaN pads)."""
    picked = values[:, np.where(index >= 0, index, 0)]
    return np.asarray(np.where(index >= 0, picked, np.nan), dtype=float)


def ring_ratios(
    plates: Sequence[NormalisedPlate], groups: EdgeGroups, floor: float
) -> list[RingRatio | None]:
    """The edge ring ratio of each read against replicates (None: too few wells to judge).
    Vectorised over the reads: one median per group and read, one per read and side."""
    if not plates or groups.outer.size == 0:
        return [None] * len(plates)
    ok = np.stack([(p.status == WellStatus.OK).ravel() for p in plates])
    signal = np.where(ok, np.stack([p.corrected.ravel() for p in plates]), np.nan)
    viability = np.where(ok, np.stack([p.viability.ravel() for p in plates]), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN groups: judged below
        inner = _gather(signal, groups.inner)
        ref = np.nanmedian(inner, axis=2)
        level = np.nanmedian(_gather(viability, groups.inner), axis=2)
        outer = _gather(signal, groups.outer)
        judged = np.isfinite(ref) & (ref > 0) & np.isfinite(level) & (level >= floor)
        judged &= np.isfinite(outer).any(axis=2)
        ref = np.where(judged, ref, np.nan)
        outer_ratio = outer / ref[..., None]
        inner_ratio = inner / ref[..., None]
        reads = len(plates)
        out_flat = outer_ratio.reshape(reads, -1)
        in_flat = inner_ratio.reshape(reads, -1)
        out_med = np.nanmedian(out_flat, axis=1)
        in_med = np.nanmedian(in_flat, axis=1)
    out_n = np.isfinite(out_flat).sum(axis=1)
    in_n = np.isfinite(in_flat).sum(axis=1)
    result: list[RingRatio | None] = []
    for k in range(reads):
        if out_n[k] < 3 or in_n[k] < 3 or not in_med[k] > 0:
            result.append(None)
            continue
        a, b = out_flat[k], in_flat[k]
        p = mann_whitney_p(a[np.isfinite(a)], b[np.isfinite(b)])
        result.append(RingRatio(float(out_med[k] / in_med[k]), p, int(out_n[k]), int(in_n[k])))
    return result


def _ok_mean(read: PlateRead | None, wells: list[str]) -> float:
    if read is None or not wells:
        return math.nan
    cells = [parse_well(w) for w in wells]
    values = [read.values[rc] for rc in cells if read.status[rc] == WellStatus.OK]
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def summarise_point(
    index: int,
    point: TimePoint,
    layout: Layout,
    *,
    wavelength_nm: float,
    reference_band: tuple[float, float],
    rules: ResponseRules,
    references: Mapping[str, ReferenceRange] | None,
    level: float,
    fit: bool,
    plate_qc: PlateThresholds | None = None,
    assay: str = "mtt",
) -> PointSummary:
    """Normalise one read and measure what the timecourse follows (pure). With ``plate_qc``
    the read is analysed as a plate too (its verdict and flags, its curves)."""
    summary = PointSummary(index=index, t_h=float(point.t_h), id=point.id)
    try:
        if plate_qc is not None:
            result = analyze_plate(
                list(point.reads),
                layout,
                plate_qc,
                rules=rules,
                wavelength_nm=wavelength_nm,
                reference_band=reference_band,
                references=references,
                confidence_level=level,
                plate_id=point.id,
                assay=assay,
            )
            plate = result.plate
            summary.plate_verdict, summary.plate_flags = result.verdict, result.flags
            summary.curves = result.curves if fit else []
        else:
            primary, reference = choose_reads(list(point.reads), wavelength_nm, reference_band)
            plate = normalise(primary, reference, layout)
    except (AnalysisError, LayoutError) as exc:
        summary.error = str(exc)
        return summary
    summary.plate = plate
    blanks = layout.wells_with("blank")
    summary.blank_raw = _ok_mean(plate.primary, blanks)
    summary.blank_reference = _ok_mean(plate.reference, blanks)
    summary.untreated = dict(plate.untreated_mean)
    untreated = plate.values(layout.wells_with("untreated"))
    summary.untreated_all = float(untreated.mean()) if len(untreated) else math.nan
    growing = any(math.isfinite(v) and v > 0 for v in plate.untreated_mean.values())
    if fit and plate_qc is None and growing:
        summary.curves = fit_curves(plate, rules, references, level)
    return summary
