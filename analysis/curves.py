"""One LL.4 fit per compound × cell line of a plate, and the flags a curve can raise.

A curve claims only what its fit supports: a curve that could not be fitted gets a
``fit_failed`` flag and no IC50, response figures or control verdict; a flat curve is
reported as "no dose response" with its F-test, never with a slope or a band.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from analysis.advice import message
from analysis.doseresponse import LL4Fit, ResponseRules, fit_ll4_many
from analysis.model import Check, Flag, rounded
from analysis.plate import NormalisedPlate
from datamodel import WellStatus, parse_well
from datamodel.names import line_key

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
        """Only a lower bound is known ('> 25 IU/mL'): a weak response is expected."""
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
        out["doses"] = [float(v) for v in self.doses]
        out["responses"] = [rounded(float(v), 4) for v in self.responses]
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
    found = []
    for compound, line in keys:
        treated = [
            w
            for w, s in layout.wells.items()
            if s.role == "treated" and s.compound == compound and s.cell_line == line
        ]
        wells = treated + layout.untreated_for(line)
        used = [w for w in wells if plate.ok(w) and math.isfinite(plate.viability[parse_well(w)])]
        doses = np.array([layout.dose_of(w) for w in used], dtype=float)
        responses = np.array([plate.viability[parse_well(w)] for w in used], dtype=float)
        found.append((compound, line, treated, wells, doses, responses))
    # All of the plate's curves in one batched fit: as fast as one curve alone.
    fits = fit_ll4_many(
        [(doses, responses) for *_, doses, responses in found],
        controls=[100.0] * len(found),
        rules=rules,
        level=level,
    )
    curves: list[Curve] = []
    for (compound, line, treated, wells, doses, responses), fit in zip(found, fits, strict=True):
        unit = next((layout.wells[w].unit for w in treated if layout.wells[w].unit), None)
        curve = Curve(compound, line, unit, fit, wells, doses, responses)
        curve.expected = _expected_for(plate, wells, line, unit, references)
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
        ref = references.get(line_key(line))
        if ref is not None and _units_match(ref.unit, unit):
            return Expected(ref.low, ref.high, ref.unit, "reference table")
    return None


def _fmt(value: float, unit: str | None = None) -> str:
    text = f"{value:.3g}"
    return f"{text} {unit}" if unit else text


def curve_check(curves: list[Curve], assay: str) -> Check:
    """no_dose_response, partial_response, ic50_extrapolated, control_out_of_range, fit_failed."""
    check = Check()
    for curve in curves:
        fit = curve.fit
        fields = {"compound": curve.compound or ""}
        if not fit.converged:
            check.flags.append(
                Flag(
                    "fit_failed",
                    "warning",
                    message(
                        f"{curve.label}: no dose-response curve could be fitted ({fit.message or 'the fit did not converge'}); "
                        "no IC50 is reported",
                        assay,
                        "fit_failed",
                        **fields,
                    ),
                    curve.wells,
                    {"compound": curve.compound, "cell_line": curve.cell_line, "n": fit.n},
                )
            )
            continue
        metrics: dict[str, Any] = {
            "compound": curve.compound,
            "cell_line": curve.cell_line,
            "no_effect_p": rounded(fit.no_effect_p, 6),
            "top_dose_effect": rounded(fit.top_dose_effect),
            "max_effect": rounded(fit.max_effect),
            "ic50": rounded(fit.ic50, 6) if fit.response != "none" else None,
            "ic50_qualifier": fit.ic50_qualifier if fit.response != "none" else None,
        }
        expected = curve.expected
        resistant = expected is not None and expected.resistant
        top = _fmt(fit.dose_max, curve.unit)
        kill = max(fit.max_effect * 100, 0.0) if math.isfinite(fit.max_effect) else 0.0
        p = f"F-test p = {fit.no_effect_p:.2g}" if math.isfinite(fit.no_effect_p) else "no F-test"
        if fit.response == "none":
            what = f"{curve.label}: no dose response up to {top} (at most {kill:.0f} % kill, {p})"
            check.flags.append(
                Flag(
                    "no_dose_response",
                    "info" if resistant else "warning",
                    message(
                        what,
                        assay,
                        "no_dose_response_resistant" if resistant else "no_dose_response",
                        **fields,
                    ),
                    curve.wells,
                    metrics,
                )
            )
        elif fit.response == "partial":
            what = (
                f"{curve.label}: partial kill — at most {kill:.0f} % below control at {top}; the "
                f"absolute IC50 is not reached (relative IC50 {_fmt(fit.e, curve.unit)})"
            )
            check.flags.append(
                Flag(
                    "partial_response",
                    "info",
                    message(what, assay, "partial_response"),
                    curve.wells,
                    metrics,
                )
            )
        if fit.response != "none" and fit.ic50_qualifier != "=" and fit.ic50 is not None:
            side = "above the highest" if fit.ic50_qualifier == ">" else "below the lowest"
            what = (
                f"{curve.label}: the IC50 lies {side} tested dose; it is reported as "
                f"{fit.ic50_qualifier}{_fmt(fit.ic50, curve.unit)}, not extrapolated"
            )
            check.flags.append(
                Flag(
                    "ic50_extrapolated",
                    "info",
                    message(what, assay, "ic50_extrapolated"),
                    curve.wells,
                    metrics | {"fitted_e": rounded(fit.e, 6)},
                )
            )
        if expected is not None and expected.source == "layout":
            flag = _control_flag(curve, expected, metrics, assay)
            if flag is not None:
                check.flags.append(flag)
    return check


def _control_flag(
    curve: Curve, expected: Expected, metrics: dict[str, Any], assay: str
) -> Flag | None:
    fit = curve.fit
    low, high = expected.low, expected.high
    rng = f"[{_fmt(low)}, {'∞' if expected.resistant else _fmt(high)}] {curve.unit or ''}".rstrip()
    above = below = False
    if fit.response == "none":
        above = not expected.resistant
    elif fit.ic50 is None:
        return None
    elif fit.ic50_qualifier == ">":
        above = high < fit.ic50
    elif fit.ic50_qualifier == "<":
        below = low > fit.ic50
    else:
        above, below = fit.ic50 > high, fit.ic50 < low
    if not (above or below):
        return None
    if fit.response == "none":
        shown = f"no dose response up to {_fmt(fit.dose_max, curve.unit)}"
        what = f"control line {curve.cell_line}: {shown}, but its expected IC50 is {rng}"
    else:
        q = fit.ic50_qualifier if fit.ic50_qualifier != "=" else ""
        shown = f"{q}{_fmt(fit.ic50, curve.unit)}"  # type: ignore[arg-type]
        side = "above" if above else "below"
        what = f"control line {curve.cell_line}: IC50 {shown} is {side} its expected range {rng}"
    key = "control_out_of_range_high" if above else "control_out_of_range_low"
    return Flag(
        "control_out_of_range",
        "critical",
        message(what, assay, key, compound=curve.compound or ""),
        curve.wells,
        metrics | {"expected_low": low, "expected_high": None if expected.resistant else high},
    )
