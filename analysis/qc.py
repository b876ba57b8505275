"""Plate QC (SCIENCE.md §2 and §4): each check returns its flags and the numbers it measured.

Position effects (edge, gradient) live in ``analysis.spatial``, replicate variability in
``analysis.replicates`` (re-exported here). Messages never show a
figure that is not finite: where a ratio is undefined (a blank at or below zero, controls
that read the same) the message says so in words.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
import numpy.typing as npt

from analysis.advice import message
from analysis.curves import Curve
from analysis.layout import CELL_ROLES
from analysis.model import Check, Flag, rounded
from analysis.plate import NormalisedPlate
from analysis.replicates import ReplicateThresholds, replicate_check
from analysis.stats import z_prime
from datamodel import WellStatus, parse_well

Array = npt.NDArray[np.float64]


class QCThresholds(ReplicateThresholds, Protocol):
    """The thresholds these checks read (config.schema.QCSettings satisfies this)."""

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


def _token_list(wells: list[str], tokens: dict[str, str]) -> str:
    shown = [f"{w} {tokens[w]}" if w in tokens else w for w in wells[:8]]
    return ", ".join(shown) + (f", … {len(wells) - 8} more" if len(wells) > 8 else "")


def _short(wells: list[str]) -> str:
    return ", ".join(wells[:8]) + (f", … {len(wells) - 8} more" if len(wells) > 8 else "")


def signal_check(plate: NormalisedPlate, assay: str) -> Check:
    """no_signal: nothing on the plate can be analysed (all unreadable, or all one value)."""
    used = [w for w, s in plate.layout.wells.items() if s.role != "empty"]
    values = plate.values(used, plate.od)
    check = Check(metrics={"readable_wells": len(values), "used_wells": len(used)})
    if not used:
        return check
    if len(values) == 0:
        what = f"none of the {len(used)} wells the layout uses has a valid reading"
    elif len(values) >= 2 and float(np.ptp(values)) == 0.0:
        what = (
            f"every readable well reads the same value ({values[0]:.4g} {plate.unit}".rstrip()
            + "): the plate carries no signal to analyse"
        )
    else:
        return check
    check.flags.append(
        Flag(
            "no_signal",
            "critical",
            message(what, assay, "no_signal"),
            [],
            {"readable": len(values)},
        )
    )
    return check


def well_status_check(
    plate: NormalisedPlate, qc: QCThresholds, curves: list[Curve], assay: str
) -> Check:
    """saturated_wells, invalid_wells, and layout wells the reader did not read."""
    check = Check()
    used = [w for w, s in plate.layout.wells.items() if s.role != "empty"]
    by_status: dict[str, list[str]] = {}
    for w in used:
        status = plate.status[parse_well(w)]
        if status != WellStatus.OK:
            by_status.setdefault(str(status), []).append(w)
    tokens = plate.tokens
    saturated = by_status.pop(WellStatus.OVERFLOW, [])
    if saturated:
        in_use = [w for w in saturated if plate.layout.wells[w].role in CELL_ROLES | {"blank"}]
        failed = [c.label for c in curves if any(w in c.wells for w in saturated)]
        what = (
            f"{len(saturated)} well(s) above the reader's range ({_token_list(saturated, tokens)})"
        )
        if failed:
            what += f"; curves failed: {', '.join(failed)}"
        check.flags.append(
            Flag(
                "saturated_wells",
                "critical" if in_use else "warning",
                message(what, assay, "saturated_wells"),
                saturated,
                {"count": len(saturated), "curves_failed": failed},
            )
        )
    not_read = by_status.pop(WellStatus.NOT_READ, [])
    if not_read:
        what = (
            f"{len(not_read)} well(s) that the layout uses were not read ({_short(not_read)}): "
            "the read covered part of the plate or the layout is for another plate"
        )
        check.flags.append(
            Flag(
                "layout_mismatch",
                "warning",
                message(what, assay, "layout_mismatch"),
                not_read,
                {"count": len(not_read)},
            )
        )
    invalid = [w for ws in by_status.values() for w in ws]
    if invalid:
        fraction = len(invalid) / max(len(used), 1)
        what = f"{len(invalid)} well(s) without a valid reading ({_token_list(invalid, tokens)})"
        check.flags.append(
            Flag(
                "invalid_wells",
                "critical" if fraction > qc.invalid_fraction_critical else "warning",
                message(what, assay, "invalid_wells"),
                invalid,
                {"count": len(invalid), "fraction": rounded(fraction), "statuses": dict(by_status)},
            )
        )
    return check


def layout_size_check(plate: NormalisedPlate, assay: str) -> Check:
    """A layout drawn for a smaller plate than the read (96-well layout on a 384-well read)."""
    check = Check()
    shape = plate.layout.shape
    rows, cols = plate.shape
    if shape is not None and (shape[0] * shape[1]) < rows * cols:
        what = (
            f"the layout describes a {shape[0] * shape[1]}-well plate but the read has "
            f"{rows * cols} wells: most of the plate is not in the layout"
        )
        check.flags.append(
            Flag(
                "layout_mismatch",
                "warning",
                message(what, assay, "layout_mismatch"),
                [],
                {"layout_wells": shape[0] * shape[1], "read_wells": rows * cols},
            )
        )
    treated = [w for w, s in plate.layout.wells.items() if s.role == "treated"]
    if treated and all(plate.layout.dose_of(w) == 0 for w in treated):
        what = f"all {len(treated)} treated wells of the layout have dose 0: there is no dose series to fit"
        check.flags.append(
            Flag("layout_mismatch", "warning", message(what, assay, "layout_mismatch"), treated, {})
        )
    return check


def _blank_spread(blanks: Array) -> float:
    """SD of the blank wells relative to max(mean, 0.10): the "blank CV" of the rule.

    Below 0.10 OD the spread of blanks is reader noise (±0.005–0.01 OD); judging it against
    0.10 OD keeps a clean 0.05 OD blank column from being called variable.
    """
    if len(blanks) < 2:
        return 0.0
    return float(np.std(blanks, ddof=1) / max(float(np.mean(blanks)), 0.10))


def control_check(plate: NormalisedPlate, qc: QCThresholds, assay: str) -> Check:
    """missing_controls, high_background, low_signal, low_z_prime, layout_mismatch (swapped)."""
    check = Check()
    flags = check.flags
    layout = plate.layout
    unit = plate.unit
    blanks_raw = plate.blank_values
    untreated = plate.values(layout.wells_with("untreated"), plate.od)
    positive = plate.values(layout.wells_with("positive_control"))
    b_spread = _blank_spread(blanks_raw)
    check.metrics["blank"] = {
        "n": len(blanks_raw),
        "mean": rounded(float(np.mean(blanks_raw))) if len(blanks_raw) else None,
        "spread": rounded(b_spread) if len(blanks_raw) > 1 else None,
    }
    check.metrics["untreated"] = {
        "n": len(untreated),
        "mean": rounded(float(np.mean(untreated))) if len(untreated) else None,
        "by_line": {str(k): rounded(v) for k, v in plate.untreated_mean.items()},
    }
    check.metrics["unit"] = unit
    if not layout.wells_with("blank"):
        what = "no blank (medium-only) wells in the layout" + (
            ": background was removed by the reference wavelength only"
            if plate.reference is not None
            else ""
        )
        flags.append(
            Flag(
                "missing_controls",
                "warning",
                message(what, assay, "missing_controls_blank"),
                [],
                {"missing": "blank"},
            )
        )
    if len(untreated) == 0:
        flags.append(
            Flag(
                "missing_controls",
                "critical",
                message("no readable untreated wells", assay, "missing_controls_untreated"),
                [],
                {"missing": "untreated"},
            )
        )
        return check

    u_mean = float(np.mean(untreated))
    b_mean = float(np.mean(blanks_raw)) if len(blanks_raw) else math.nan
    if len(blanks_raw):
        fraction = b_mean / u_mean if u_mean > 0 else math.nan
        reasons = []
        if unit == "OD" and b_mean > qc.blank_max_od:
            reasons.append(f"blank mean {b_mean:.3f} OD > {qc.blank_max_od}")
        if math.isfinite(fraction) and fraction > qc.blank_fraction_max:
            reasons.append(f"blank/untreated {fraction:.2f} > {qc.blank_fraction_max}")
        if b_spread > qc.blank_cv_max:
            reasons.append(f"blank CV {b_spread * 100:.0f} % > {qc.blank_cv_max * 100:.0f} %")
        if reasons and u_mean > b_mean:
            flags.append(
                Flag(
                    "high_background",
                    "warning",
                    message(
                        "high background in the medium-only wells (" + "; ".join(reasons) + ")",
                        assay,
                        "high_background",
                    ),
                    layout.wells_with("blank"),
                    {
                        "blank_mean": rounded(b_mean),
                        "blank_fraction": rounded(fraction),
                        "blank_cv": rounded(b_spread),
                    },
                )
            )
        if b_mean >= u_mean:
            what = (
                f"the blank wells read as high as the untreated cells ({b_mean:.3f} vs "
                f"{u_mean:.3f} {unit}".rstrip()
                + "): the layout may be rotated or for another plate, or the cells did not grow"
            )
            flags.append(
                Flag(
                    "layout_mismatch",
                    "critical",
                    message(what, assay, "layout_mismatch"),
                    layout.wells_with("blank") + layout.wells_with("untreated"),
                    {"blank_mean": rounded(b_mean), "untreated_mean": rounded(u_mean)},
                )
            )
    corrected_u = plate.values(layout.wells_with("untreated"))
    window = float(np.mean(corrected_u))
    check.metrics["signal_window"] = rounded(window)
    ratio = u_mean / b_mean if len(blanks_raw) and b_mean > 0 else math.nan
    check.metrics["untreated_blank_ratio"] = rounded(ratio)
    low_ratio = math.isfinite(ratio) and ratio < qc.signal_min_ratio
    if (unit == "OD" and window < qc.signal_min_od) or low_ratio or window <= 0:
        if len(blanks_raw):
            what = f"low signal: untreated wells read {window:.3f} {unit} above the blank".replace(
                "  ", " "
            )
            what += (
                f" (untreated/blank {ratio:.1f}x)"
                if math.isfinite(ratio)
                else " (the blank reads at or below zero)"
            )
        else:
            what = f"low signal: untreated wells read {window:.3f} {unit} (no blank wells to compare with)".replace(
                "  ", " "
            )
        flags.append(
            Flag(
                "low_signal",
                "critical" if window <= 0 else "warning",
                message(what, assay, "low_signal"),
                layout.wells_with("untreated"),
                {"signal": rounded(window), "untreated_blank_ratio": rounded(ratio)},
            )
        )
    _empty_wells_check(plate, window, check, assay)
    if len(positive) >= 2 and len(corrected_u) >= 2:
        classic, robust = z_prime(positive, corrected_u)
        check.metrics["z_prime"] = rounded(classic)
        check.metrics["z_prime_robust"] = rounded(robust)
        if not math.isfinite(classic):
            what = "the positive-control and untreated wells read the same: there is no assay window (Z′ undefined)"
            flags.append(
                Flag(
                    "low_z_prime",
                    "critical",
                    message(what, assay, "low_z_prime"),
                    layout.wells_with("untreated") + layout.wells_with("positive_control"),
                    {"z_prime": None, "z_prime_robust": rounded(robust)},
                )
            )
        elif classic < qc.z_prime_min:
            outliers = math.isfinite(robust) and robust >= qc.z_prime_min
            robust_text = f"robust {robust:.2f}" if math.isfinite(robust) else "robust undefined"
            what = (
                f"Z′ = {classic:.2f} ({robust_text}) between untreated and positive-control wells"
            )
            flags.append(
                Flag(
                    "low_z_prime",
                    # only a few outlier wells spoil the classic Z′ (the robust one is
                    # fine): a note; the outliers themselves are replicate_variability's
                    "info"
                    if outliers
                    else "critical"
                    if classic < 0 and not (math.isfinite(robust) and robust >= 0)
                    else "warning",
                    message(what, assay, "low_z_prime_outliers" if outliers else "low_z_prime"),
                    layout.wells_with("untreated") + layout.wells_with("positive_control"),
                    {"z_prime": rounded(classic), "z_prime_robust": rounded(robust)},
                )
            )
    return check


def _empty_wells_check(plate: NormalisedPlate, window: float, check: Check, assay: str) -> None:
    empty = [w for w, s in plate.layout.wells.items() if s.role == "empty" and plate.ok(w)]
    if not empty or not window > 0:
        return
    loud = [w for w in empty if plate.corrected[parse_well(w)] > 0.5 * window]
    if len(loud) >= max(2, len(empty) // 4):
        what = f"{len(loud)} well(s) marked empty read like cells ({_short(loud)})"
        check.flags.append(
            Flag(
                "layout_mismatch",
                "warning",
                message(what, assay, "layout_mismatch"),
                loud,
                {"count": len(loud)},
            )
        )


__all__ = [
    "QCThresholds",
    "control_check",
    "layout_size_check",
    "replicate_check",
    "signal_check",
    "well_status_check",
]
