"""The timecourse analysis (issue 13 part 2; SCIENCE.md §8): the reads of one plate over
48–72 h → growth, GR values, IC50 over time, edge and blank trends, and their flags.

Pure: the caller hands in every read (``TimePoint``: hours since the timecourse started +
the plate's reads), the layout, the thresholds (any object with the fields of
``TimecourseThresholds``; ``TimecourseDefaults`` holds the defaults) and the planned reads
the scheduler missed; nothing is read or written here. Reads may arrive in any order:
they are sorted by their hours.

Per read (``analysis.timecourse_points``): the plate normalised as a plate is, its blank
level, the untreated signal per line, the edge ring ratio against replicates, and, unless
``curves=False``, one LL.4 fit per compound × line (``fit_curves``: IC50 with its fls CI);
with ``plate_qc`` each read is also analysed as a plate, and its verdict and flags are kept.

Over the series: the untreated wells' exponential phase and doubling time with its CI
(``analysis.growth``), the recent growth rate, GR values per well and GR50/GRmax per curve
per read (``analysis.grvalues``; from the time-zero read, or from a known doubling time),
the IC50 of each curve per read with its trend, the blank level and the edge ring ratio
with their trends, and the flags of ``analysis.timecourse_checks``. The flags depend only
on the growth, blank and edge series, never on the curve fits, so ``curves=False`` (fast)
raises the same flags.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from analysis.assay import PlateThresholds
from analysis.curves import ReferenceRange
from analysis.doseresponse import ResponseRules
from analysis.growth import GrowthFit, exponential_phase
from analysis.layout import CELL_ROLES, Layout
from analysis.model import SEVERITY_RANK, Flag, Verdict, jsonable, rounded, verdict_of
from analysis.timecourse_checks import (
    THRESHOLD_KEYS,
    MissedRead,
    TimecourseDefaults,
    TimecourseThresholds,
    blank_check,
    edge_check,
    growth_check,
    missed_check,
)
from analysis.timecourse_points import (
    EdgeGroups,
    PointSummary,
    TimePoint,
    kinetic_points,
    ring_ratios,
    summarise_point,
)
from analysis.timecourse_series import gr_values, ic50_series
from datamodel import WellStatus, parse_well

__all__ = [
    "THRESHOLD_KEYS",
    "MissedRead",
    "TimePoint",
    "TimecourseDefaults",
    "TimecourseResult",
    "TimecourseThresholds",
    "analyze_timecourse",
    "kinetic_points",
    "sparkline",
]

Array = npt.NDArray[np.float64]
SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float | None], width: int | None = None) -> str:
    """A text sparkline (``"▁▂▃▅▇"``) of ``values``; gaps (None, NaN) are spaces. With
    ``width``, longer series are averaged into that many cells."""
    data = np.array([math.nan if v is None else float(v) for v in values], dtype=float)
    if width is not None and width > 0 and len(data) > width:
        cells = np.array_split(data, width)
        data = np.array([float(np.nanmean(c)) if np.isfinite(c).any() else math.nan for c in cells])
    finite = data[np.isfinite(data)]
    if len(finite) == 0:
        return " " * len(data)
    low, high = float(finite.min()), float(finite.max())
    out = []
    for v in data:
        if not math.isfinite(v):
            out.append(" ")
        elif high == low:
            out.append(SPARK[3])
        else:
            out.append(SPARK[min(len(SPARK) - 1, int((v - low) / (high - low) * len(SPARK)))])
    return "".join(out)


@dataclass
class TimecourseResult:
    timecourse_id: str
    verdict: Verdict
    flags: list[Flag]
    summary: dict[str, Any]
    points: list[dict[str, Any]] = field(default_factory=list)
    wells: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The stored body: plain JSON (no NaN or inf), what the report is drawn from."""
        body = {
            "kind": "timecourse",
            "id": self.timecourse_id,
            "verdict": self.verdict,
            "flags": [f.to_dict() for f in self.flags],
            "summary": self.summary,
            "points": self.points,
            "wells": self.wells,
        }
        out: dict[str, Any] = jsonable(body)
        return out


def _series(values: Sequence[float], digits: int = 5) -> list[float | None]:
    return [rounded(v, digits) for v in values]


def _growth_dict(fit: GrowthFit) -> dict[str, Any]:
    ci = fit.doubling_time_ci
    return {
        "doubling_time_h": rounded(fit.doubling_time_h, 4),
        "doubling_time_ci": [rounded(ci[0], 4), rounded(ci[1], 4) if ci[1] is not None else None]
        if ci
        else None,
        "rate_per_h": rounded(fit.rate_per_h, 6),
        "log_intercept": rounded(fit.log_intercept, 6),
        "rate_ci": [rounded(v, 6) for v in fit.rate_ci] if fit.rate_ci else None,
        "window_h": [rounded(v, 3) for v in fit.window_h] if fit.window_h else None,
        "points": fit.points,
        "significant": fit.significant,
        "note": fit.note,
    }


def analyze_timecourse(
    points: Sequence[TimePoint],
    layout: Layout,
    thresholds: TimecourseThresholds | None = None,
    *,
    missed: Sequence[MissedRead] = (),
    rules: ResponseRules | None = None,
    references: Mapping[str, ReferenceRange] | None = None,
    plate_qc: PlateThresholds | None = None,
    wavelength_nm: float = 570.0,
    reference_band: tuple[float, float] = (600.0, 700.0),
    confidence_level: float = 0.95,
    doubling_time_h: float | Mapping[str, float] | None = None,
    curves: bool = True,
    end_h: float | None = None,
    timecourse_id: str = "",
    assay: str = "mtt",
) -> TimecourseResult:
    """Analyse one plate's timecourse. ``end_h``: the planned last read (for projections);
    ``doubling_time_h``: the lines' known doubling time (one for all, or per line), used
    for GR values when there is no time-zero read."""
    th = thresholds or TimecourseDefaults()
    rules = rules or ResponseRules()
    order = sorted(range(len(points)), key=lambda i: float(points[i].t_h))
    summaries = [
        summarise_point(
            k,
            points[i],
            layout,
            wavelength_nm=wavelength_nm,
            reference_band=reference_band,
            rules=rules,
            references=references,
            level=confidence_level,
            fit=curves,
            plate_qc=plate_qc,
            assay=assay,
        )
        for k, i in enumerate(order)
    ]
    good = [s for s in summaries if s.plate is not None]
    groups: dict[tuple[int, int], EdgeGroups] = {}
    for shape in dict.fromkeys(s.plate.shape for s in good if s.plate):
        groups[shape] = EdgeGroups.of(layout, shape)
        same = [s for s in good if s.plate and s.plate.shape == shape]
        plates = [s.plate for s in same if s.plate]
        for s, ring in zip(same, ring_ratios(plates, groups[shape], th.edge_floor), strict=True):
            s.ring = ring
    t = np.array([s.t_h for s in good], dtype=float)
    lines = layout.cell_lines
    untreated_wells = layout.wells_with("untreated")
    flags: list[Flag] = []
    summary: dict[str, Any] = {
        "reads": len(good),
        "t_h": _series(t.tolist(), 4),
        "ids": [s.id for s in good],
        "errors": [
            {"index": s.index, "t_h": s.t_h, "id": s.id, "error": s.error}
            for s in summaries
            if s.error
        ],
        "missed": [
            {"index": m.index, "due_h": rounded(m.due_h, 4), "reason": m.reason} for m in missed
        ],
        "end_h": rounded(end_h, 4) if end_h is not None else None,
    }
    latest = good[-1].plate if good else None
    unit = latest.unit if latest else ""
    summary["unit"] = unit
    summary["read"] = latest.primary.label if latest else None
    summary["reference_read"] = latest.reference.label if latest and latest.reference else None

    # -- growth of the untreated wells
    g_all = np.array([s.untreated_all for s in good], dtype=float)
    phase = exponential_phase(
        t,
        g_all,
        window_h=th.growth_window_h,
        min_points=th.growth_window_points,
        quota=th.growth_window_quota,
        level=confidence_level,
    )
    growth_flags, recent = growth_check(t, g_all, phase, th, assay, untreated_wells)
    flags += growth_flags
    per_line: dict[str, Any] = {}
    line_series: dict[str, list[float | None]] = {}
    for line in lines:
        g = np.array([s.untreated.get(line, math.nan) for s in good], dtype=float)
        line_series[str(line)] = _series(g.tolist())
        per_line[str(line)] = _growth_dict(
            exponential_phase(
                t,
                g,
                window_h=th.growth_window_h,
                min_points=th.growth_window_points,
                quota=th.growth_window_quota,
                level=confidence_level,
            )
        )
    summary["growth"] = (
        _growth_dict(phase)
        | recent
        | {
            "series": _series(g_all.tolist()),
            "lines": line_series,
            "per_line": per_line,
        }
    )
    summary["sparkline"] = sparkline([v for v in g_all.tolist()])

    # -- blank level
    blank = np.array([s.blank_raw for s in good], dtype=float)
    blank_ref = np.array([s.blank_reference for s in good], dtype=float)
    blank_flags, blank_numbers = blank_check(
        t,
        blank,
        blank_ref,
        th,
        assay,
        unit=unit,
        read=str(summary["read"]),
        reference_read=summary["reference_read"],
        wells=layout.wells_with("blank"),
    )
    flags += blank_flags
    summary["blank"] = {
        "series": _series(blank.tolist(), 6),
        "reference_series": _series(blank_ref.tolist(), 6),
        "corrected_series": _series([s.plate.blank_mean if s.plate else math.nan for s in good], 6),
    } | blank_numbers

    # -- edge ring ratio
    ringed = [s for s in good if s.ring is not None]
    t_ring = np.array([s.t_h for s in ringed], dtype=float)
    ratios = np.array([s.ring.ratio for s in ringed if s.ring], dtype=float)
    outer_wells = list(next(iter(groups.values())).outer_wells) if groups else []
    edge_flags, edge_numbers = edge_check(t_ring, ratios, th, assay, wells=outer_wells, end_h=end_h)
    flags += edge_flags
    summary["edge"] = {
        "method": "outer ring vs interior replicates",
        "t_h": _series(t_ring.tolist(), 4),
        "series": _series(ratios.tolist()),
        "p": [rounded(s.ring.p, 8) for s in ringed if s.ring],
        "outer_n": [s.ring.outer_n for s in ringed if s.ring],
        "interior_n": [s.ring.interior_n for s in ringed if s.ring],
        "note": ""
        if groups and outer_wells
        else "no replicates on both the outer ring and the interior: edge not followed",
    } | edge_numbers

    # -- GR values
    gr_grids, gr_summary = gr_values(good, layout, th, doubling_time_h, rules, curves)
    summary["gr"] = gr_summary

    # -- IC50 over time
    summary["ic50"] = ic50_series(good) if curves else []

    # -- missed reads
    flags += missed_check(
        missed,
        t,
        phase,
        time_zero=gr_summary["source"] == "time_zero",
        gr_source=gr_summary["source"],
        th=th,
        assay=assay,
    )

    flags = sorted(flags, key=lambda f: -SEVERITY_RANK[f.severity])
    last = good[-1] if good else None
    summary["latest"] = (
        {
            "t_h": rounded(last.t_h, 4),
            "id": last.id,
            "untreated": rounded(last.untreated_all, 5),
            "blank": rounded(last.blank_raw, 6),
            "ring_ratio": rounded(last.ring.ratio, 4) if last.ring else None,
            "plate_verdict": last.plate_verdict,
        }
        if last
        else None
    )
    return TimecourseResult(
        timecourse_id=timecourse_id,
        verdict=verdict_of(flags),
        flags=flags,
        summary=summary,
        points=[_point_dict(s) for s in summaries],
        wells=_well_series(good, layout, gr_grids),
    )


def _point_dict(s: PointSummary) -> dict[str, Any]:
    plate = s.plate
    return {
        "index": s.index,
        "t_h": rounded(s.t_h, 4),
        "id": s.id,
        "read": plate.primary.label if plate else None,
        "reference_read": plate.reference.label if plate and plate.reference else None,
        "blank": rounded(s.blank_raw, 6),
        "blank_reference": rounded(s.blank_reference, 6),
        "blank_corrected": rounded(plate.blank_mean, 6) if plate else None,
        "untreated": {str(k): rounded(v, 5) for k, v in s.untreated.items()},
        "untreated_all": rounded(s.untreated_all, 5),
        "ring_ratio": rounded(s.ring.ratio, 4) if s.ring else None,
        "ring_p": rounded(s.ring.p, 8) if s.ring else None,
        "plate_verdict": s.plate_verdict,
        "plate_flags": [f.to_dict() for f in s.plate_flags],
        "error": s.error or None,
    }


def _listed(values: Array, digits: int) -> list[float | None]:
    """A row of numbers for JSON: rounded, NaN → None (vectorised rounding)."""
    return [None if v != v else v for v in np.round(values, digits).tolist()]


def _well_series(
    good: list[PointSummary], layout: Layout, gr_grids: list[Array | None]
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    plates = [s.plate for s in good if s.plate is not None]
    if not plates or len(plates) != len(good):
        return out
    ok = np.stack([p.status == WellStatus.OK for p in plates])
    signal = np.where(ok, np.stack([p.corrected for p in plates]), np.nan)
    viability = np.where(ok, np.stack([p.viability for p in plates]), np.nan)
    have_gr = any(g is not None for g in gr_grids)
    blank = np.full(plates[0].shape, np.nan)
    gr = np.stack([blank if g is None else g for g in gr_grids]) if have_gr else None
    for well, spec in layout.wells.items():
        if spec.role == "empty":
            continue
        r, c = parse_well(well)
        entry: dict[str, Any] = {
            "role": spec.role,
            "cell_line": spec.cell_line,
            "compound": spec.compound,
            "conc": spec.conc,
            "signal": _listed(signal[:, r, c], 5),
        }
        if spec.role in CELL_ROLES:
            entry["viability"] = _listed(viability[:, r, c], 3)
            if gr is not None:
                entry["gr"] = _listed(gr[:, r, c], 4)
        if not ok[:, r, c].all():
            entry["status"] = [str(p.status[r, c]) for p in plates]
        out[well] = entry
    return out
