"""One LL.4 fit per compound × cell line of a plate, and the flags a curve can raise."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from analysis.doseresponse import LL4Fit, ResponseRules, fit_ll4
from analysis.model import Flag
from analysis.plate import NormalisedPlate
from datamodel import WellStatus, parse_well

Array = npt.NDArray[np.float64]


class ReferenceRange(Protocol):
    """A published IC50 range (config.loader.ReferenceIC50 satisfies this)."""

    @property
    def low(self) -> float: ...
    @property
    def high(self) -> float: ...
    @property
    def unit(self) -> str: ...


@dataclass
class Expected:
    low: float
    high: float
    unit: str | None
    source: str  # "layout" (a control line the scientist marked) or "reference table"

    @property
    def resistant(self) -> bool:
        return math.isinf(self.high)


@dataclass
class Curve:
    compound: str | None
    cell_line: str | None
    unit: str | None
    fit: LL4Fit
    wells: list[str]
    doses: Array
    responses: Array
    expected: Expected | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return not self.problems

    @property
    def label(self) -> str:
        parts = [p for p in (self.compound, self.cell_line) if p]
        return " × ".join(parts) or "curve"

    def to_dict(self) -> dict[str, Any]:
        out = self.fit.to_dict()
        out["group"] = {"compound": self.compound, "cell_line": self.cell_line}
        out["unit"] = self.unit
        out["wells"] = list(self.wells)
        out["usable"] = self.usable
        out["problems"] = list(self.problems)
        out["expected_ic50"] = (
            {
                "low": self.expected.low,
                "high": None if self.expected.resistant else self.expected.high,
                "source": self.expected.source,
            }
            if self.expected
            else None
        )
        return out


def normalise_name(name: str | None) -> str:
    return "".join(ch for ch in (name or "").upper() if ch.isalnum())


def _units_match(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return True
    return a.replace("µ", "u").lower() == b.replace("µ", "u").lower()


def fit_curves(
    plate: NormalisedPlate,
    rules: ResponseRules,
    references: Mapping[str, ReferenceRange] | None = None,
    level: float = 0.95,
) -> list[Curve]:
    layout = plate.layout
    keys = dict.fromkeys(
        (s.compound, s.cell_line) for s in layout.wells.values() if s.role == "treated"
    )
    curves: list[Curve] = []
    for compound, line in keys:
        treated = [
            w
            for w, s in layout.wells.items()
            if s.role == "treated" and s.compound == compound and s.cell_line == line
        ]
        untreated = [
            w for w, s in layout.wells.items() if s.role == "untreated" and s.cell_line == line
        ]
        if not untreated:
            untreated = layout.wells_with("untreated")
        wells = treated + untreated
        used = [w for w in wells if plate.ok(w) and math.isfinite(plate.viability[parse_well(w)])]
        doses = np.array(
            [
                (layout.wells[w].conc or 0.0) if layout.wells[w].role == "treated" else 0.0
                for w in used
            ]
        )
        responses = np.array([plate.viability[parse_well(w)] for w in used])
        fit = fit_ll4(doses, responses, control=100.0, rules=rules, level=level)
        unit = next((layout.wells[w].unit for w in treated if layout.wells[w].unit), None)
        curve = Curve(compound, line, unit, fit, wells, doses, responses)
        curve.expected = _expected_for(plate, treated + untreated, line, unit, references)
        bad = [w for w in wells if not plate.ok(w)]
        saturated = [w for w in bad if plate.status[parse_well(w)] == WellStatus.OVERFLOW]
        if saturated:
            curve.problems.append("saturated wells: " + ", ".join(saturated))
        if not fit.converged:
            curve.problems.append(fit.message or "fit did not converge")
        curves.append(curve)
    return curves


def _expected_for(
    plate: NormalisedPlate,
    wells: list[str],
    line: str | None,
    unit: str | None,
    references: Mapping[str, ReferenceRange] | None,
) -> Expected | None:
    for w in wells:
        rng = plate.layout.wells[w].expected_ic50
        if rng is not None:
            return Expected(rng[0], rng[1], unit, "layout")
    if references and line:
        ref = references.get(normalise_name(line))
        if ref is not None and _units_match(ref.unit, unit):
            return Expected(ref.low, ref.high, ref.unit, "reference table")
    return None


def _fmt(value: float | None, unit: str | None = None) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    text = f"{value:.3g}"
    return f"{text} {unit}" if unit else text


def curve_flags(curves: list[Curve]) -> list[Flag]:
    flags: list[Flag] = []
    for curve in curves:
        fit = curve.fit
        metrics: dict[str, Any] = {
            "compound": curve.compound,
            "cell_line": curve.cell_line,
            "no_effect_p": fit.no_effect_p if math.isfinite(fit.no_effect_p) else None,
            "top_dose_effect": fit.top_dose_effect if math.isfinite(fit.top_dose_effect) else None,
            "max_effect": fit.max_effect if math.isfinite(fit.max_effect) else None,
            "ic50": fit.ic50,
            "ic50_qualifier": fit.ic50_qualifier,
        }
        expected = curve.expected
        resistant = expected is not None and expected.resistant
        top = _fmt(fit.dose_max, curve.unit)
        if fit.response == "none":
            kill = max(fit.max_effect * 100, 0.0) if math.isfinite(fit.max_effect) else 0.0
            if resistant:
                message = (
                    f"{curve.label}: no dose response up to {top} (at most {kill:.0f} % kill), "
                    "as expected for a resistant line."
                )
            else:
                message = (
                    f"{curve.label}: no dose response up to {top} (at most {kill:.0f} % kill, "
                    f"F-test p = {_fmt(fit.no_effect_p)}). Either the line is resistant, or the "
                    "drug was inactive: compare with the control line on this plate, check the "
                    "drug's activity and the dilution series, and extend the top dose if needed."
                )
            flags.append(
                Flag(
                    "no_dose_response",
                    "info" if resistant else "warning",
                    message,
                    curve.wells,
                    metrics,
                )
            )
        elif fit.response == "partial":
            flags.append(
                Flag(
                    "partial_response",
                    "info",
                    f"{curve.label}: partial kill — at most {fit.max_effect * 100:.0f} % below control "
                    f"at {top}; the absolute IC50 is not reached. Report the relative IC50 "
                    f"({_fmt(fit.e, curve.unit)}) with the maximum effect.",
                    curve.wells,
                    metrics,
                )
            )
        if fit.response != "none" and fit.ic50_qualifier != "=":
            side = "above the highest" if fit.ic50_qualifier == ">" else "below the lowest"
            flags.append(
                Flag(
                    "ic50_extrapolated",
                    "info",
                    f"{curve.label}: the IC50 lies {side} tested dose; it is reported as "
                    f"{fit.ic50_qualifier}{_fmt(fit.ic50, curve.unit)}, not extrapolated. Shift or "
                    "widen the dilution series to bracket it.",
                    curve.wells,
                    metrics | {"fitted_e": fit.e},
                )
            )
        if expected is not None and expected.source == "layout":
            flag = _control_flag(curve, expected, metrics)
            if flag is not None:
                flags.append(flag)
    return flags


def _control_flag(curve: Curve, expected: Expected, metrics: dict[str, Any]) -> Flag | None:
    fit = curve.fit
    low, high = expected.low, expected.high
    rng = f"[{_fmt(low)}, {'∞' if expected.resistant else _fmt(high)}] {curve.unit or ''}".rstrip()
    above = below = False
    if fit.response == "none" or fit.ic50_qualifier == ">":
        above = (fit.ic50 is not None and high < fit.ic50) or (
            fit.response == "none" and not expected.resistant
        )
    elif fit.ic50_qualifier == "<":
        below = fit.ic50 is not None and low > fit.ic50
    elif fit.ic50 is not None:
        above, below = fit.ic50 > high, fit.ic50 < low
    if not (above or below):
        return None
    shown = f"{fit.ic50_qualifier if fit.ic50_qualifier != '=' else ''}{_fmt(fit.ic50, curve.unit)}"
    if above:
        message = (
            f"control line {curve.cell_line}: IC50 {shown} is above its expected range {rng}. "
            "The asparaginase may be inactive: use a fresh vial / check its activity, and check "
            "the dilution series and the control cells' identity and passage."
        )
    else:
        message = (
            f"control line {curve.cell_line}: IC50 {shown} is below its expected range {rng}: "
            "check the stock concentration and the dilution series."
        )
    return Flag(
        "control_out_of_range",
        "critical",
        message,
        curve.wells,
        metrics | {"expected_low": low, "expected_high": None if expected.resistant else high},
    )
