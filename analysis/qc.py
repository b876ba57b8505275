"""Plate QC (SCIENCE.md §2 and §4): each check returns flags and records its numbers.

Position effects (edge, gradient) live in ``analysis.spatial``.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from analysis.curves import Curve
from analysis.layout import CELL_ROLES
from analysis.model import Flag
from analysis.plate import NormalisedPlate
from analysis.stats import cv, mad, z_prime
from datamodel import WellStatus, parse_well

Array = npt.NDArray[np.float64]


class QCThresholds(Protocol):
    """The thresholds these checks read (config.schema.QCSettings satisfies this)."""

    @property
    def replicate_cv(self) -> float: ...
    @property
    def replicate_min_level(self) -> float: ...
    @property
    def outlier_mad(self) -> float: ...
    @property
    def blank_max_od(self) -> float: ...
    @property
    def blank_fraction_max(self) -> float: ...
    @property
    def blank_cv_max(self) -> float: ...
    @property
    def signal_min_ratio(self) -> float: ...
    @property
    def signal_min_od(self) -> float: ...
    @property
    def z_prime_min(self) -> float: ...
    @property
    def invalid_fraction_critical(self) -> float: ...


def _r(value: float, digits: int = 4) -> float | None:
    return round(value, digits) if math.isfinite(value) else None


def well_status_flags(plate: NormalisedPlate, qc: QCThresholds, curves: list[Curve]) -> list[Flag]:
    """saturated_wells, invalid_wells, and layout wells the reader did not read."""
    flags: list[Flag] = []
    used = [w for w, s in plate.layout.wells.items() if s.role != "empty"]
    by_status: dict[str, list[str]] = {}
    for w in used:
        status = plate.status[parse_well(w)]
        if status != WellStatus.OK:
            by_status.setdefault(str(status), []).append(w)
    tokens = plate.primary.raw_tokens
    saturated = by_status.pop(WellStatus.OVERFLOW, [])
    if saturated:
        in_use = [w for w in saturated if plate.layout.wells[w].role in CELL_ROLES | {"blank"}]
        failed = [c.label for c in curves if any(w in c.wells for w in saturated)]
        flags.append(
            Flag(
                "saturated_wells",
                "critical" if in_use else "warning",
                f"{len(saturated)} well(s) above the reader's range ({_token_list(saturated, tokens)})"
                + (f"; curves failed: {', '.join(failed)}" if failed else "")
                + ". Dilute the solubilised formazan or read at a less absorbing wavelength, "
                "and re-read; the saturated wells are excluded, never guessed.",
                saturated,
                {"count": len(saturated), "curves_failed": failed},
            )
        )
    not_read = by_status.pop(WellStatus.NOT_READ, [])
    if not_read:
        flags.append(
            Flag(
                "layout_mismatch",
                "warning",
                f"{len(not_read)} well(s) that the layout uses were not read "
                f"({_short(not_read)}): the read covered part of the plate or the layout is for "
                "another plate. Check the reader's plate definition and the layout.",
                not_read,
                {"count": len(not_read)},
            )
        )
    invalid = [w for ws in by_status.values() for w in ws]
    if invalid:
        fraction = len(invalid) / max(len(used), 1)
        flags.append(
            Flag(
                "invalid_wells",
                "critical" if fraction > qc.invalid_fraction_critical else "warning",
                f"{len(invalid)} well(s) without a valid reading ({_token_list(invalid, tokens)}): "
                "bubbles, a missed read or a reader error. They are excluded; re-read the plate if "
                "they are controls or many in one curve.",
                invalid,
                {
                    "count": len(invalid),
                    "fraction": _r(fraction),
                    "statuses": {k: v for k, v in by_status.items()},
                },
            )
        )
    return flags


def _token_list(wells: list[str], tokens: dict[str, str]) -> str:
    shown = [f"{w} {tokens[w]}" if w in tokens else w for w in wells[:8]]
    return ", ".join(shown) + (f", … {len(wells) - 8} more" if len(wells) > 8 else "")


def _short(wells: list[str]) -> str:
    return ", ".join(wells[:8]) + (f", … {len(wells) - 8} more" if len(wells) > 8 else "")


def control_flags(plate: NormalisedPlate, qc: QCThresholds, metrics: dict[str, Any]) -> list[Flag]:
    """missing_controls, high_background, low_signal, low_z_prime, layout_mismatch (swapped)."""
    flags: list[Flag] = []
    layout = plate.layout
    blanks_raw = plate.blank_values
    untreated = plate.values(layout.wells_with("untreated"), plate.od)
    positive = plate.values(layout.wells_with("positive_control"))
    b_spread = _blank_spread(blanks_raw)
    metrics["blank"] = {
        "n": len(blanks_raw),
        "mean_od": _r(float(np.mean(blanks_raw))) if len(blanks_raw) else None,
        "spread": _r(b_spread) if len(blanks_raw) > 1 else None,
    }
    metrics["untreated"] = {
        "n": len(untreated),
        "mean_od": _r(float(np.mean(untreated))) if len(untreated) else None,
        "by_line": {str(k): _r(v) for k, v in plate.untreated_mean.items()},
    }
    if not layout.wells_with("blank"):
        flags.append(
            Flag(
                "missing_controls",
                "warning",
                "no blank (medium-only) wells in the layout: background was not subtracted"
                + (" beyond the reference wavelength" if plate.reference is not None else "")
                + ", so viabilities are slightly compressed towards 100 %. Include medium-only "
                "wells on the next plate.",
                [],
                {"missing": "blank"},
            )
        )
    if len(untreated) == 0:
        flags.append(
            Flag(
                "missing_controls",
                "critical",
                "no readable untreated wells: % viability cannot be computed. Check the layout "
                '(role = "untreated") and the read.',
                [],
                {"missing": "untreated"},
            )
        )
        return flags

    u_mean = float(np.mean(untreated))
    if len(blanks_raw):
        b_mean = float(np.mean(blanks_raw))
        fraction = b_mean / u_mean if u_mean > 0 else math.inf
        reasons = []
        if b_mean > qc.blank_max_od:
            reasons.append(f"blank mean {b_mean:.3f} OD > {qc.blank_max_od}")
        if fraction > qc.blank_fraction_max:
            reasons.append(f"blank/untreated {fraction:.2f} > {qc.blank_fraction_max}")
        if b_spread > qc.blank_cv_max:
            reasons.append(f"blank CV {b_spread * 100:.0f} % > {qc.blank_cv_max * 100:.0f} %")
        if reasons and u_mean > b_mean:
            flags.append(
                Flag(
                    "high_background",
                    "warning",
                    "high background in the medium-only wells (" + "; ".join(reasons) + "). Likely "
                    "contamination or degraded (light-exposed) MTT: check the medium for turbidity, "
                    "use fresh MTT, and protect it from light.",
                    layout.wells_with("blank"),
                    {
                        "blank_mean_od": _r(b_mean),
                        "blank_fraction": _r(fraction),
                        "blank_cv": _r(b_spread),
                    },
                )
            )
        if b_mean >= u_mean:
            flags.append(
                Flag(
                    "layout_mismatch",
                    "critical",
                    f"the blank wells read as high as the untreated cells ({b_mean:.3f} vs "
                    f"{u_mean:.3f} OD): the layout may be rotated or for another plate, or the cells "
                    "did not grow. Check the layout against the plate map.",
                    layout.wells_with("blank") + layout.wells_with("untreated"),
                    {"blank_mean_od": _r(b_mean), "untreated_mean_od": _r(u_mean)},
                )
            )
    corrected_u = plate.values(layout.wells_with("untreated"))
    window = float(np.mean(corrected_u))
    ratio = (
        u_mean / float(np.mean(blanks_raw))
        if len(blanks_raw) and np.mean(blanks_raw) > 0
        else math.inf
    )
    metrics["signal_window_od"] = _r(window)
    if window < qc.signal_min_od or ratio < qc.signal_min_ratio:
        flags.append(
            Flag(
                "low_signal",
                "critical" if window <= 0 else "warning",
                f"low signal: untreated wells read {window:.3f} OD above the blank "
                f"(untreated/blank {ratio:.1f}x). Too few cells were seeded, the cells were "
                "unhealthy, or the MTT incubation was too short: check the seeding density and "
                "extend the MTT step to 4 h.",
                layout.wells_with("untreated"),
                {"signal_od": _r(window), "untreated_blank_ratio": _r(ratio)},
            )
        )
    _empty_wells_check(plate, window, flags)
    if len(positive) >= 2 and len(corrected_u) >= 2:
        classic, robust = z_prime(positive, corrected_u)
        metrics["z_prime"] = _r(classic)
        metrics["z_prime_robust"] = _r(robust)
        if classic < qc.z_prime_min:
            outliers = robust >= qc.z_prime_min
            flags.append(
                Flag(
                    "low_z_prime",
                    "critical" if classic < 0 and robust < 0 else "warning",
                    f"Z′ = {classic:.2f} (robust {robust:.2f}) between untreated and positive-control "
                    "wells: "
                    + (
                        "a few outlier wells spoil an otherwise good window; see replicate_variability."
                        if outliers
                        else "the assay window is too narrow or too noisy to separate effects. Check "
                        "seeding uniformity and the positive control."
                    ),
                    layout.wells_with("untreated") + layout.wells_with("positive_control"),
                    {"z_prime": _r(classic), "z_prime_robust": _r(robust)},
                )
            )
    return flags


def _blank_spread(blanks: Array) -> float:
    """SD of the blank wells relative to max(mean, 0.10 OD): the "blank CV" of the rule.

    Below 0.10 OD the spread of blanks is reader noise (±0.005–0.01 OD); judging it against
    0.10 OD keeps a clean 0.05 OD blank column from being called variable.
    """
    if len(blanks) < 2:
        return 0.0
    return float(np.std(blanks, ddof=1) / max(float(np.mean(blanks)), 0.10))


def _empty_wells_check(plate: NormalisedPlate, window: float, flags: list[Flag]) -> None:
    empty = [w for w, s in plate.layout.wells.items() if s.role == "empty" and plate.ok(w)]
    if not empty or not window > 0:
        return
    loud = [w for w in empty if plate.corrected[parse_well(w)] > 0.5 * window]
    if len(loud) >= max(2, len(empty) // 4):
        flags.append(
            Flag(
                "layout_mismatch",
                "warning",
                f"{len(loud)} well(s) marked empty read like cells ({_short(loud)}): the layout may "
                "not match the plate. Check the plate map.",
                loud,
                {"count": len(loud)},
            )
        )


def replicate_flags(
    plate: NormalisedPlate, qc: QCThresholds, metrics: dict[str, Any]
) -> list[Flag]:
    """replicate_variability: group CVs above the threshold and single outlier wells."""
    flags: list[Flag] = []
    worst: list[tuple[float, str, list[str]]] = []
    outliers: list[str] = []
    cvs: list[float] = []
    for (role, compound, conc, line), wells in plate.groups.items():
        if role not in ("untreated", "treated"):
            continue
        ok = [w for w in wells if plate.ok(w)]
        if len(ok) < 2:
            continue
        vals = plate.values(ok)
        base = plate.untreated_mean.get(line, math.nan)
        if not math.isfinite(base) or base <= 0:
            continue
        center = float(np.median(vals))
        if len(ok) >= 3:
            spread = max(mad(vals), 0.05 * base)
            for w, v in zip(ok, vals, strict=True):
                if abs(v - center) > qc.outlier_mad * spread and abs(v - center) > 0.25 * base:
                    outliers.append(w)
        if np.mean(vals) < qc.replicate_min_level * base:
            continue
        group_cv = cv(vals)
        cvs.append(group_cv)
        if group_cv > qc.replicate_cv:
            name = " ".join(str(p) for p in (compound, conc, line) if p is not None) or role
            worst.append((group_cv, f"{role} {name}".strip(), ok))
    metrics["replicate_cv_median"] = _r(float(np.median(cvs))) if cvs else None
    metrics["replicate_cv_max"] = _r(float(np.max(cvs))) if cvs else None
    if worst or outliers:
        worst.sort(reverse=True)
        wells = sorted({w for _, _, ws in worst for w in ws} | set(outliers), key=parse_well)
        parts = []
        if worst:
            parts.append(
                f"{len(worst)} replicate group(s) with CV above {qc.replicate_cv * 100:.0f} % "
                f"(worst: {worst[0][1]}, {worst[0][0] * 100:.0f} %)"
            )
        if outliers:
            parts.append(f"outlier well(s) {_short(sorted(outliers, key=parse_well))}")
        flags.append(
            Flag(
                "replicate_variability",
                "warning",
                "; ".join(parts) + ". Likely uneven seeding (cells settle in the reservoir: mix "
                "between rows), pipetting errors or bubbles. Treat the affected curves with care.",
                wells,
                {
                    "groups": [{"group": g, "cv": _r(c), "wells": ws} for c, g, ws in worst[:10]],
                    "outliers": sorted(outliers, key=parse_well),
                },
            )
        )
    return flags
