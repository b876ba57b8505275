"""The series a timecourse follows per curve: GR values per well with GR50/GRmax per curve
and read (``analysis.grvalues``), and the IC50 of each curve per read with its trend.

GR values need the time-zero read (the first read within ``time_zero_max_h`` of the start:
x₀ per cell line is its mean untreated signal) or, without one, the lines' known doubling
time; a read enters once the untreated wells of its line grew ``gr_min_doublings`` (below
that the GR formula divides by almost nothing). GR curves are fitted on the treated wells.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from analysis.curves import Curve
from analysis.doseresponse import ResponseRules
from analysis.growth import trend
from analysis.grvalues import fit_gr, gr_from_doubling_time, gr_from_time_zero
from analysis.layout import CELL_ROLES, Layout
from analysis.model import rounded
from analysis.timecourse_checks import TimecourseThresholds
from analysis.timecourse_points import PointSummary
from datamodel import WellStatus, parse_well

Array = npt.NDArray[np.float64]


def known_doubling(known: float | Mapping[str, float] | None, line: str | None) -> float | None:
    if known is None:
        return None
    if isinstance(known, int | float):
        value = float(known)
    else:
        found = known.get(line or "")
        if found is None:
            return None
        value = float(found)
    return value if math.isfinite(value) and value > 0 else None


def gr_values(
    good: list[PointSummary],
    layout: Layout,
    th: TimecourseThresholds,
    known: float | Mapping[str, float] | None,
    rules: ResponseRules,
    fit: bool,
) -> tuple[list[Array | None], dict[str, Any]]:
    """GR values per well per read (NaN where undefined) and the GR curves' metrics."""
    zero = next((s for s in good if s.t_h <= th.time_zero_max_h), None)
    source = "time_zero" if zero is not None else None
    if source is None and any(known_doubling(known, line) for line in layout.cell_lines):
        source = "doubling_time"
    grids: list[Array | None] = [None] * len(good)
    out: dict[str, Any] = {
        "source": source,
        "time_zero_h": rounded(zero.t_h, 4) if zero else None,
        "curves": [],
        "note": "",
    }
    if source is None:
        out["note"] = "no time-zero read and no known doubling time: GR values not computed"
        return grids, out
    wells_of: dict[str | None, list[tuple[int, int]]] = {}
    for well, spec in layout.wells.items():
        if spec.role in CELL_ROLES:
            wells_of.setdefault(spec.cell_line, []).append(parse_well(well))
    keys = list(
        dict.fromkeys(
            (s.compound, s.cell_line) for s in layout.wells.values() if s.role == "treated"
        )
    )
    series: dict[tuple[str | None, str | None], list[dict[str, Any]]] = {k: [] for k in keys}
    for k, s in enumerate(good):
        plate = s.plate
        if plate is None or s is zero:
            continue
        grid = np.full(plate.shape, np.nan)
        done_lines = set()
        for line, cells in wells_of.items():
            x_ctrl = s.untreated.get(line, math.nan)
            if not (math.isfinite(x_ctrl) and x_ctrl > 0):
                continue
            rr = np.array([r for r, _ in cells])
            cc = np.array([c for _, c in cells])
            x = np.where(plate.status[rr, cc] == WellStatus.OK, plate.corrected[rr, cc], np.nan)
            if zero is not None:
                x0 = zero.untreated.get(line, math.nan)
                if not (math.isfinite(x0) and x0 > 0):
                    continue
                if math.log2(x_ctrl / x0) < th.gr_min_doublings:
                    continue
                grid[rr, cc] = gr_from_time_zero(x, x0, x_ctrl)
            else:
                td = known_doubling(known, line)
                if td is None or s.t_h <= 0 or s.t_h / td < th.gr_min_doublings:
                    continue
                grid[rr, cc] = gr_from_doubling_time(x, x_ctrl, s.t_h, td)
            done_lines.add(line)
        if not done_lines:
            continue
        grids[k] = grid
        if not fit:
            continue
        for compound, line in keys:
            if line not in done_lines:
                continue
            treated = [
                w
                for w, spec in layout.wells.items()
                if spec.role == "treated" and spec.compound == compound and spec.cell_line == line
            ]
            doses = np.array([layout.dose_of(w) for w in treated], dtype=float)
            values = np.array([grid[parse_well(w)] for w in treated], dtype=float)
            gr_fit = fit_gr(doses, values, p_threshold=rules.p_threshold)
            series[(compound, line)].append(
                {"t_h": rounded(s.t_h, 4), "id": s.id} | gr_fit.to_dict()
            )
    if not any(g is not None for g in grids):
        out["note"] = (
            f"the untreated wells have not grown {th.gr_min_doublings:g} doublings yet: no GR values"
        )
    out["curves"] = [
        {"compound": compound, "cell_line": line, "points": pts}
        for (compound, line), pts in series.items()
    ]
    if source == "doubling_time":
        out["doubling_time_h"] = {
            str(line): known_doubling(known, line) for line in layout.cell_lines
        }
    return grids, out


def _curve_point(s: PointSummary, curve: Curve) -> dict[str, Any]:
    f = curve.fit
    flat = f.response == "none"
    return {
        "t_h": rounded(s.t_h, 4),
        "id": s.id,
        "converged": f.converged,
        "usable": curve.usable,
        "response": f.response,
        "ic50": None if not f.converged else rounded(f.ic50, 8),
        "ic50_qualifier": f.ic50_qualifier if f.converged else None,
        "ic50_ci": [rounded(v, 8) for v in f.ic50_ci] if f.ic50_ci and not flat else None,
        "ic50_ci_method": f.ic50_ci_method if not flat else None,
        "e": None if flat else rounded(f.e, 8),
        "absolute_ic50": rounded(f.absolute_ic50, 8) if f.absolute_ic50 is not None else None,
        "absolute_ic50_qualifier": f.absolute_ic50_qualifier,
        "max_effect": rounded(f.max_effect),
        "no_effect_p": rounded(f.no_effect_p, 8),
    }


def ic50_series(good: list[PointSummary]) -> list[dict[str, Any]]:
    by_key: dict[tuple[str | None, str | None], dict[str, Any]] = {}
    for s in good:
        for curve in s.curves:
            entry = by_key.setdefault(
                (curve.compound, curve.cell_line),
                {
                    "compound": curve.compound,
                    "cell_line": curve.cell_line,
                    "unit": curve.unit,
                    "expected_ic50": (
                        {
                            "low": curve.expected.low,
                            "high": None if curve.expected.resistant else curve.expected.high,
                            "source": curve.expected.source,
                        }
                        if curve.expected
                        else None
                    ),
                    "points": [],
                },
            )
            entry["points"].append(_curve_point(s, curve))
    for entry in by_key.values():
        pts = [
            p
            for p in entry["points"]
            if p["ic50_qualifier"] == "=" and p["response"] != "none" and p["ic50"]
        ]
        tr = (
            trend(
                np.array([p["t_h"] for p in pts], dtype=float),
                np.log10(np.array([p["ic50"] for p in pts], dtype=float)),
            )
            if len(pts) >= 3
            else None
        )
        entry["trend"] = (
            {
                "fold_per_day": rounded(10 ** (tr.slope * 24), 4),
                "p_up": rounded(tr.p_up, 8),
                "p_down": rounded(tr.p_down, 8),
                "points": tr.n,
            }
            if tr
            else None
        )
        entry["latest"] = entry["points"][-1] if entry["points"] else None
    return list(by_key.values())
