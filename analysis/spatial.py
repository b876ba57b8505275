"""Position effects on a plate: edge effects and gradients (SCIENCE.md §4, issue 9).

Judged on cell wells only, each against the wells that should read alike
(``analysis.wellgroups``: one cell line at one dose, the plateau doses with the untreated
wells after the curve fit), never across groups whose difference is biology. One model,
fitted within those groups, holds all three position effects at once, so an edge effect is
not mistaken for a gradient nor the reverse:

    ratio = group level + β_row · row position + β_col · column position + β_ring · outer ring

(positions 0 … 1 from the first to the last row/column, so β is the end-to-end change).
The fit is a Huber M-fit, each β tested by Huber's t on the within-group degrees of
freedom (``analysis.withingroup``), so an outlier well cannot make or hide an effect.

Plate-level error rates, by design:

* ``edge_effect`` is one test: it warns when p < ``edge_p`` and the ring ratio is outside
  [``edge_ratio``, 1/``edge_ratio``]; ``edge_p`` is the plate's false-alarm rate.
* ``plate_gradient`` is the family {rows, columns}: ``gradient_p`` is split between the two
  (weighted Bonferroni, weights from the layout and the plate's noise so that the weaker
  axis keeps its power for a ``gradient_target`` gradient) and an axis warns when its p is
  below its share and its end-to-end change is at least ``gradient_trend``. The reported
  ``p`` is the family's adjusted p: it is below ``gradient_p`` exactly when the flag fires.

Where the layout confounds an axis with the groups (lines in row blocks: a row gradient
looks like a difference between the lines; doses along an axis with no controls spanning
it), too little of the axis' variation lies within groups (< ``confounded_share``): that
axis is not tested and an ``info`` flag says why, instead of a guess.

Descriptive numbers (half-plate ratios, Tukey median polish ranges) are reported too.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from analysis.advice import message
from analysis.curves import Curve
from analysis.model import Check, Flag, rounded
from analysis.plate import NormalisedPlate
from analysis.stats import median_polish
from analysis.wellgroups import WellGroups, well_groups
from analysis.withingroup import ContrastTests, split_alpha, within_group_test

Array = npt.NDArray[np.float64]

AXES = (("row", "rows", ("top", "bottom")), ("column", "columns", ("left", "right")))
METHOD = "within-group Huber fit and t, weighted Bonferroni over rows and columns"


class SpatialThresholds(Protocol):
    @property
    def edge_ratio(self) -> float: ...
    @property
    def edge_p(self) -> float: ...
    @property
    def gradient_p(self) -> float: ...
    @property
    def gradient_trend(self) -> float: ...
    @property
    def gradient_target(self) -> float: ...
    @property
    def residual_floor(self) -> float: ...
    @property
    def plateau_tolerance(self) -> float: ...
    @property
    def confounded_share(self) -> float: ...


def residual_ratios(groups: WellGroups) -> Array:
    """Observed / fitted response of every judged well on the plate grid (NaN elsewhere)."""
    grid = np.full(groups.shape, np.nan)
    grid[groups.row, groups.col] = groups.ratio
    return grid


def _covariates(groups: WellGroups) -> dict[str, Array]:
    rows, cols = groups.shape
    row, col = groups.row.astype(float), groups.col.astype(float)
    ring = (
        (groups.row == 0) | (groups.row == rows - 1) | (groups.col == 0) | (groups.col == cols - 1)
    )
    return {
        "row": row / max(rows - 1, 1),
        "column": col / max(cols - 1, 1),
        "ring": ring.astype(float),
    }


def _line_share(groups: WellGroups, x: Array) -> float:
    """Share of a covariate's variation within cell lines (groups merged per line)."""
    lines = np.array([str(groups.lines[g]) for g in groups.group])
    within = 0.0
    for line in np.unique(lines):
        v = x[lines == line]
        within += float(((v - v.mean()) ** 2).sum())
    total = float(((x - x.mean()) ** 2).sum())
    return within / total if total > 0 else 0.0


def spatial_check(
    plate: NormalisedPlate, curves: list[Curve], qc: SpatialThresholds, assay: str
) -> Check:
    groups = well_groups(
        plate, curves, floor=qc.residual_floor, plateau_tolerance=qc.plateau_tolerance
    )
    check = Check()
    covariates = _covariates(groups)
    ring = covariates["ring"] > 0
    outer_n, inner_n = int(ring.sum()), int((~ring).sum())
    ring_tested = outer_n >= 3 and inner_n >= 3
    names = ["row", "column", *(["ring"] if ring_tested else [])]
    if len(groups) and math.isfinite(groups.multiplicative_sd):
        tests = within_group_test(
            groups.ratio,
            groups.group,
            groups.sigma,
            np.column_stack([covariates[n] for n in names]),
        )
    else:
        nan, zero = np.full(len(names), np.nan), np.zeros(len(names))
        tests = ContrastTests(nan, nan, nan, zero, zero)
    index = {n: i for i, n in enumerate(names)}
    noise = {
        "judged_wells": len(groups),
        "groups": groups.n_groups,
        "multiplicative_sd": rounded(groups.multiplicative_sd),
    }
    check.metrics["position_noise"] = noise
    check.flags += _edge(groups, tests, index, ring_tested, (outer_n, inner_n), qc, check, assay)
    check.flags += _gradient(groups, covariates, tests, index, qc, check.metrics, assay)
    return check


def _confounded_with(groups: WellGroups, x: Array, threshold: float) -> str:
    return "cell line" if _line_share(groups, x) < threshold else "dose"


def _edge(
    groups: WellGroups,
    tests: ContrastTests,
    index: dict[str, int],
    tested: bool,
    counts: tuple[int, int],
    qc: SpatialThresholds,
    check: Check,
    assay: str,
) -> list[Flag]:
    outer_n, inner_n = counts
    edge: dict[str, Any] = {"outer_n": outer_n, "interior_n": inner_n}
    check.metrics["edge"] = edge
    if not tested:
        edge["tested"] = False
        edge["note"] = (
            "the outer ring holds no cell wells (empty or PBS): edge effects are prevented by "
            "the layout"
            if outer_n < 3
            else "too few interior cell wells for a ring test"
        )
        return []
    i = index["ring"]
    share = float(tests.share[i])
    change, p = float(tests.estimate[i]), float(tests.p[i])
    ring_ratio = 1.0 + change
    edge.update(
        tested=True,
        within_share=rounded(share),
        ring_ratio=rounded(ring_ratio),
        change=rounded(change),
        se=rounded(float(tests.se[i])),
        p=rounded(p, 6),
        alpha=qc.edge_p,
        method="within-group Huber fit and t, one test per plate",
    )
    if share >= qc.confounded_share and not math.isfinite(p):
        edge.update(tested=False, note="too few judged wells that should read alike")
        return []
    if share < qc.confounded_share:
        x = _covariates(groups)["ring"]
        what_with = _confounded_with(groups, x, qc.confounded_share)
        edge.update(tested=False, untestable=True, confounded_with=what_with)
        edge["note"] = f"untestable: outer-ring position is confounded with {what_with}"
        what = (
            "edge effect untestable on this layout: the outer-ring cell wells are not "
            f"matched by interior wells of the same {what_with} (and dose), so an edge effect "
            f"cannot be told from a difference of {what_with}"
        )
        return [
            Flag(
                "edge_effect",
                "info",
                message(what, assay, "edge_effect_untestable"),
                [],
                {"untestable": True, "confounded_with": what_with, "within_share": rounded(share)},
            )
        ]
    if not (p < qc.edge_p and (ring_ratio < qc.edge_ratio or ring_ratio > 1 / qc.edge_ratio)):
        return []
    ring = _covariates(groups)["ring"] > 0
    wells = [w for w, r in zip(groups.wells, ring, strict=True) if r]
    direction = "low" if ring_ratio < 1 else "high"
    what = (
        f"edge effect: outer-ring wells read {abs(change) * 100:.0f} % {direction} against "
        f"interior wells that should read alike (ring ratio {ring_ratio:.2f}, plate-level "
        f"p = {max(p, 1e-300):.1e})"
    )
    return [
        Flag(
            "edge_effect",
            "warning",
            message(what, assay, "edge_effect"),
            wells,
            {
                "ring_ratio": rounded(ring_ratio),
                "p": p,
                "alpha": qc.edge_p,
                "outer_n": outer_n,
                "interior_n": inner_n,
            },
        )
    ]


def _descriptive(groups: WellGroups) -> dict[str, Any]:
    """Half-plate median ratios and median-polish ranges of the residual ratios (reported)."""
    ratio = residual_ratios(groups)
    rows, cols = ratio.shape
    rr, cc = np.indices(ratio.shape)
    judged = np.isfinite(ratio)
    out: dict[str, Any] = {}
    for first_half, (a_name, b_name) in (
        (cc < cols // 2, ("left", "right")),
        (rr < rows // 2, ("top", "bottom")),
    ):
        a, b = ratio[first_half & judged], ratio[~first_half & judged]
        if len(a) >= 3 and len(b) >= 3:
            out[f"{a_name}_{b_name}_ratio"] = rounded(float(np.median(a) / np.median(b)))
    if judged.sum() >= 6:
        polish = median_polish(np.where(judged, ratio, np.nan))
        col_fx = polish.col[judged.any(axis=0)]
        row_fx = polish.row[judged.any(axis=1)]
        out["medpolish_column_range"] = rounded(float(np.ptp(col_fx))) if len(col_fx) else None
        out["medpolish_row_range"] = rounded(float(np.ptp(row_fx))) if len(row_fx) else None
    return out


def _gradient(
    groups: WellGroups,
    covariates: dict[str, Array],
    tests: ContrastTests,
    index: dict[str, int],
    qc: SpatialThresholds,
    metrics: dict[str, Any],
    assay: str,
) -> list[Flag]:
    numbers: dict[str, Any] = {"method": METHOD, "alpha": qc.gradient_p}
    metrics["gradient"] = numbers
    flags: list[Flag] = []
    testable: list[tuple[str, str, tuple[str, str]]] = []
    for axis, plural, sides in AXES:
        i = index[axis]
        share = float(tests.share[i])
        entry: dict[str, Any] = {
            "change": rounded(float(tests.estimate[i])),
            "se": rounded(float(tests.se[i])),
            "p": rounded(float(tests.p[i]), 6),
            "within_share": rounded(share),
        }
        numbers[axis] = entry
        if not len(groups) or (share >= qc.confounded_share and not math.isfinite(tests.p[i])):
            entry.update(tested=False, note="too few judged wells that should read alike")
            continue
        if share >= qc.confounded_share:
            testable.append((axis, plural, sides))
            continue
        what_with = _confounded_with(groups, covariates[axis], qc.confounded_share)
        entry.update(tested=False, untestable=True, confounded_with=what_with)
        entry["note"] = f"untestable: confounded with {what_with}"
        flags.append(_untestable(axis, plural, sides, what_with, share, assay))
    z = [qc.gradient_target * math.sqrt(float(tests.info[index[a]])) for a, _, _ in testable]
    alphas = split_alpha(qc.gradient_p, z)
    found: list[str] = []
    fired: list[str] = []
    adjusted: list[float] = []
    for (axis, plural, (near, far)), alpha in zip(testable, alphas, strict=True):
        i = index[axis]
        change, p = float(tests.estimate[i]), float(tests.p[i])
        numbers[axis].update(tested=True, alpha=rounded(alpha, 6))
        adjusted.append(min(1.0, p * qc.gradient_p / alpha))
        if p < alpha and abs(change) >= qc.gradient_trend:
            side = far if change < 0 else near
            fired.append(plural)
            found.append(
                f"{side} side {abs(change) * 100:.0f} % lower across the {plural} (end to end, "
                f"p = {p:.1e} against its share α = {alpha:.1e})"
            )
    if adjusted:
        numbers["p"] = rounded(min(adjusted), 6)
    numbers.update(_descriptive(groups))
    if found:
        what = "gradient across the plate, within wells that should read alike: " + "; ".join(found)
        flags.append(
            Flag(
                "plate_gradient",
                "warning",
                message(what, assay, "plate_gradient"),
                list(groups.wells),
                numbers | {"axes": fired},
            )
        )
    return flags


def _untestable(
    axis: str, plural: str, sides: tuple[str, str], what_with: str, share: float, assay: str
) -> Flag:
    near, far = sides
    if what_with == "cell line":
        why = (
            f"each cell line sits in its own block of {plural}, so a {near}–{far} gradient "
            "cannot be told from a difference between the lines"
        )
    else:
        why = (
            f"the dilution series runs along the {plural} and no untreated wells span them, so "
            f"a {near}–{far} gradient cannot be told from the dose response"
        )
    what = f"{axis} gradient untestable on this layout: {why}"
    return Flag(
        "plate_gradient",
        "info",
        message(what, assay, "plate_gradient_untestable"),
        [],
        {
            "untestable": True,
            "axis": plural,
            "confounded_with": what_with,
            "within_share": rounded(share),
            "note": f"untestable: confounded with {what_with}",
        },
    )
