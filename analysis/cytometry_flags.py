"""The cytometry flags (DESIGN.md §5.1 codes): what happened, the likely cause, what to do."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from analysis.model import Flag, Severity

_ROLE_NAMES = {
    "unstained": "unstained",
    "annexin_only": "Annexin V-only",
    "pi_only": "PI-only",
}


def _wells(well: str | None) -> list[str]:
    return [well] if well else []


def _pct(value: float) -> str:
    return f"{value:.1f} %"


def few_events(cells: int, total: int, minimum: int, well: str | None) -> Flag | None:
    if cells >= minimum:
        return None
    severity: Severity = "critical" if cells < max(minimum // 10, 1) else "warning"
    return Flag(
        "few_events",
        severity,
        f"only {cells} cells left after the gates (of {total} events; at least {minimum} "
        "wanted): the percentages are imprecise. Likely too few cells in the tube, a short "
        "acquisition, or mostly debris. Acquire more events (≥ 10,000 cells).",
        _wells(well),
        {"cells": cells, "events": total, "min_events": minimum},
    )


def saturated_events(
    count: int, total: int, per_channel: dict[str, int], maximum: float, well: str | None
) -> Flag | None:
    fraction = count / total if total else 0.0
    if count == 0 or fraction <= maximum:
        return None
    worst = sorted(((v, k) for k, v in per_channel.items() if v), reverse=True)
    where = ", ".join(f"{k} {v}" for v, k in worst[:4])
    return Flag(
        "saturated_events",
        "warning",
        f"{count} events ({_pct(100 * fraction)}) sit at the top of a channel's range ({where}): "
        "their compensation would be wrong, so they are excluded. The detector voltage/gain "
        "is too high or the cells are clumped; lower the voltage of that detector (or filter "
        "the sample) and re-acquire.",
        _wells(well),
        {"events": count, "fraction": round(fraction, 5), "channels": per_channel},
    )


def saturated_scatter(
    per_channel: dict[str, int], total: int, maximum: float, well: str | None
) -> Flag | None:
    worst = sorted(((v, k) for k, v in per_channel.items() if v), reverse=True)
    if not worst or not total or worst[0][0] / total <= maximum:
        return None
    where = ", ".join(f"{k} {v} ({_pct(100 * v / total)})" for v, k in worst[:3])
    return Flag(
        "saturated_events",
        "warning",
        f"scatter at the top of its range ({where}): the scatter voltage is too high for these "
        "cells, so size and granularity of the largest cells are clipped (the events are kept; "
        "the debris and singlet gates see them clipped). Lower the FSC/SSC voltage.",
        _wells(well),
        {"scatter_channels": per_channel},
    )


def flow_instability(
    excluded: int,
    total: int,
    intervals: list[list[float]],
    maximum: float,
    well: str | None,
    applied: bool,
) -> Flag | None:
    fraction = excluded / total if total else 0.0
    if fraction <= maximum:
        return None
    spans = ", ".join(f"{lo:.1f}–{hi:.1f}" for lo, hi in intervals[:4])
    what = "are excluded" if applied else "could not be separated from the rest (most of the run)"
    return Flag(
        "flow_instability",
        "warning",
        f"{excluded} events ({_pct(100 * fraction)}) fell in stretches of unstable flow (time "
        f"{spans}{' …' if len(intervals) > 4 else ''}): the event rate dropped or jumped, or "
        f"the scatter shifted, as a partial clog or an air bubble does; those events {what}. "
        "Flush the flow cell, filter the sample, and re-acquire if it recurs.",
        _wells(well),
        {"events": excluded, "fraction": round(fraction, 5), "intervals": intervals},
    )


def no_compensation(well: str | None, reason: str) -> Flag:
    return Flag(
        "no_compensation",
        "warning",
        f"the data were not compensated ({reason}): FITC spills into the PI detector, so "
        "Annexin V-bright cells may be counted as late apoptotic. Set compensation on the "
        "instrument, or acquire Annexin V-only and PI-only single-stain tubes with the batch.",
        _wells(well),
        {"reason": reason},
    )


def missing_controls(missing: Sequence[str], consequences: list[str], critical: bool) -> Flag:
    names = ", ".join(_ROLE_NAMES.get(m, m) for m in missing)
    return Flag(
        "missing_controls",
        "critical" if critical else "warning",
        f"no {names} control among the files of this batch: {'; '.join(consequences)}. "
        "Acquire unstained, Annexin V-only and PI-only tubes with every experiment, and name "
        "them so they are found (or pass --control ROLE=FILE).",
        [],
        {"missing": list(missing)},
    )


def thresholds_disagree(
    channel: str, info: dict[str, Any], margin: float, well: str | None
) -> Flag | None:
    by = info.get("positive_percent") or {}
    if "valley" not in by or "control" not in by:
        return None
    gap = abs(by["valley"] - by["control"])
    if gap <= margin:
        return None
    return Flag(
        "thresholds_disagree",
        "warning",
        f"the {channel} threshold from the controls ({info['control']:.4g}, {by['control']:.1f} % "
        f"positive) and the density valley of the sample ({info['valley']:.4g}, "
        f"{by['valley']:.1f} % positive) differ by {gap:.1f} points; the {info['method']} "
        "threshold is used. Dim non-specific Annexin V binding (or a shifted negative "
        "population) moves live cells above the control's threshold; check the plot, and "
        "titrate Annexin V or wash the cells better if the live cells sit high.",
        _wells(well),
        {
            "channel": channel,
            "control": info.get("control"),
            "valley": info.get("valley"),
            "positive_percent": by,
            "gap_points": round(gap, 3),
        },
    )


def high_necrotic(percent: float, maximum: float, well: str | None) -> Flag | None:
    if percent <= maximum:
        return None
    return Flag(
        "high_necrotic",
        "warning",
        f"{_pct(percent)} of the cells are Annexin V−/PI+ (necrotic; usually small): cells "
        "damaged in handling (harsh pipetting, trypsin, centrifugation), a very late time point, "
        "or over-compensation of FITC out of PI. Handle cells gently and check the compensation.",
        _wells(well),
        {"percent": round(percent, 3), "max_percent": maximum},
    )


def low_viability_control(
    live: float, minimum: float, name: str, own: bool, well: str | None
) -> Flag:
    subject = "this untreated sample" if own else f"the untreated sample ({name})"
    return Flag(
        "low_viability_control",
        "critical" if own else "warning",
        f"{subject} is only {_pct(live)} live (at least {minimum:g} % expected): the cells "
        "were unhealthy before the drug (over-confluent, starved, contaminated, or damaged in "
        "handling), so drug-induced apoptosis cannot be told apart. Check the culture and "
        "repeat with healthy cells.",
        _wells(well),
        {"live_percent": round(live, 3), "min_percent": minimum, "untreated": name},
    )


def no_threshold(channel: str, why: str, well: str | None) -> Flag:
    return Flag(
        "missing_controls",
        "critical",
        f"no {channel} threshold could be set ({why}): the quadrants cannot be counted. "
        "Acquire the single-stain controls with the batch.",
        _wells(well),
        {"channel": channel},
    )
