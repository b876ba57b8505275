"""replicate_variability: outlier wells and variable replicate groups, at a plate-level rate.

Two families of tests on the replicate groups of the layout (one cell line at one dose of
one compound, or its untreated wells), both against the plate's own noise
(``analysis.wellgroups``: multiplicative σₘ from within-group differences, additive σₐ
from the blanks), and corrected together so that ``replicate_p`` is the chance that a
clean plate raises the flag (half of it for each family, Bonferroni within each):

* an **outlier well** is off the median of its other replicates by more than the plate's
  noise allows (|z| beyond the Bonferroni bound over all tested wells, from a Student t
  with ``TAIL_DF`` degrees of freedom, so that heavier-than-normal tails keep the rate) and
  by a size that matters: at least ``outlier_fold``-fold and 25 % of the untreated level
  (a well that received no cells reads about zero: both, by far);
* a **variable group** has a CV above ``replicate_cv`` (judgement, SCIENCE.md §2) and a
  variance the plate's noise cannot explain (χ² bound, Bonferroni over groups). The most
  extreme well of a group of four or more is left out of its CV: a single well is the
  outlier test's business, uneven seeding moves them all.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache
from typing import Protocol

import numpy as np
import numpy.typing as npt
from scipy import special

from analysis.advice import message
from analysis.model import Check, Flag, rounded
from analysis.plate import NormalisedPlate
from analysis.stats import cv
from analysis.wellgroups import additive_sd, multiplicative_sd
from datamodel import parse_well

Array = npt.NDArray[np.float64]

TAIL_DF = 8.0  # the outlier bound holds for well errors as heavy-tailed as a t with 8 df
PRACTICAL_CHANGE = 0.25  # an outlier is at least this far from its group, × untreated level
MAD_SCALE = 1.4826
# Var(median of m normal values) / σ²; 1.5708/m beyond the table
_MEDIAN_VARIANCE = {1: 1.0, 2: 0.5, 3: 0.449, 4: 0.343, 5: 0.287, 6: 0.247, 7: 0.210}


class ReplicateThresholds(Protocol):
    @property
    def replicate_cv(self) -> float: ...
    @property
    def replicate_min_level(self) -> float: ...
    @property
    def replicate_p(self) -> float: ...
    @property
    def outlier_fold(self) -> float: ...


def outlier_bound(alpha: float, tests: int, df: float = TAIL_DF) -> float:
    """|z| beyond which one of ``tests`` wells is an outlier at family-wise ``alpha``.

    z is in units of a median-based (normal-consistent) scale, so the t quantile is divided
    by the t's own normal-consistent scale.
    """
    if tests <= 0:
        return math.inf
    quantile = float(special.stdtrit(df, 1.0 - alpha / (2.0 * tests)))
    return quantile / (float(special.stdtrit(df, 0.75)) * MAD_SCALE)


@lru_cache(maxsize=64)
def _leave_one_out(k: int) -> npt.NDArray[np.intp]:
    """(k × k−1) indices: row i lists every replicate but the i-th."""
    full = np.arange(k)
    return np.array([np.delete(full, i) for i in range(k)], dtype=np.intp).reshape(k, k - 1)


def _median_variance(m: int) -> float:
    return _MEDIAN_VARIANCE.get(m, 1.5708 / max(m, 1))


def _short(wells: list[str]) -> str:
    return ", ".join(wells[:8]) + (f", … {len(wells) - 8} more" if len(wells) > 8 else "")


def replicate_check(plate: NormalisedPlate, qc: ReplicateThresholds, assay: str) -> Check:
    """replicate_variability: variable groups and single outlier wells, at a plate-level α."""
    check = Check()
    additive = additive_sd(plate)
    members: list[tuple[str, str | None, list[str], Array]] = []  # name, line, wells, rel
    for (role, compound, conc, line), wells in plate.groups.items():
        if role not in ("untreated", "treated"):
            continue
        ok = [w for w in wells if plate.ok(w)]
        base = plate.untreated_mean.get(line, math.nan)
        if len(ok) < 2 or not math.isfinite(base) or base <= 0:
            continue
        name = " ".join(str(p) for p in (compound, conc, line) if p is not None) or role
        members.append((f"{role} {name}".strip(), line, ok, plate.values(ok) / base))
    if not members:
        return check
    # the plate's noise, from the groups at a level where ratios mean something
    level = [float(np.median(rel)) for _, _, _, rel in members]
    add = [additive.get(line, 0.0) / 100.0 for _, line, _, _ in members]  # of untreated
    judged = [g for g, lv in enumerate(level) if lv >= max(qc.replicate_min_level, 1e-6)]
    ratios, group, add_rel = [], [], []
    for g in judged:
        rel = members[g][3]
        ratios.append(rel / level[g])
        group.append(np.full(len(rel), g))
        add_rel.append(np.full(len(rel), add[g] / level[g]))
    sigma_m = (
        multiplicative_sd(np.concatenate(ratios), np.concatenate(group), np.concatenate(add_rel))
        if ratios
        else math.nan
    )
    check.metrics["replicate_noise"] = {"multiplicative_sd": rounded(sigma_m)}
    if not math.isfinite(sigma_m):
        return check

    def abs_sd(g: int) -> float:  # SD of one well of group g, in units of the untreated level
        return math.hypot(sigma_m * level[g], add[g])

    outliers, out_p = _outliers(members, abs_sd, qc)
    worst, cvs, cv_p = _variable_groups(members, level, judged, abs_sd, qc)
    check.metrics["replicate_cv_median"] = rounded(float(np.median(cvs))) if cvs else None
    check.metrics["replicate_cv_max"] = rounded(float(np.max(cvs))) if cvs else None
    check.metrics["replicate_noise"]["p"] = rounded(min(out_p, cv_p), 6)
    if not (worst or outliers):
        return check
    worst.sort(reverse=True)
    wells = sorted({w for _, _, ws in worst for w in ws} | set(outliers), key=parse_well)
    parts = []
    if worst:
        parts.append(
            f"{len(worst)} replicate group(s) with CV above {qc.replicate_cv * 100:.0f} % "
            f"beyond the plate's noise (worst: {worst[0][1]}, {worst[0][0] * 100:.0f} %)"
        )
    if outliers:
        ordered = sorted(outliers, key=parse_well)
        parts.append(
            f"outlier well(s) {_short(ordered)} (at least {qc.outlier_fold:g}-fold off their "
            "replicates)"
        )
    check.flags.append(
        Flag(
            "replicate_variability",
            "warning",
            message("; ".join(parts), assay, "replicate_variability"),
            wells,
            {
                "groups": [{"group": g, "cv": rounded(c), "wells": ws} for c, g, ws in worst[:10]],
                "outliers": sorted(outliers, key=parse_well),
                "p": rounded(min(out_p, cv_p), 6),
                "alpha": qc.replicate_p,
            },
        )
    )
    return check


def _outliers(
    members: list[tuple[str, str | None, list[str], Array]],
    abs_sd: Callable[[int], float],
    qc: ReplicateThresholds,
) -> tuple[list[str], float]:
    """Outlier wells and the family's plate-level p (Bonferroni over the tested wells)."""
    tested = [g for g, m in enumerate(members) if len(m[2]) >= 3]
    n_tests = sum(len(members[g][2]) for g in tested)
    bound = outlier_bound(qc.replicate_p / 2.0, n_tests)
    scale = float(special.stdtrit(TAIL_DF, 0.75)) * MAD_SCALE
    found: list[str] = []
    best = 1.0
    fold = qc.outlier_fold
    for g in tested:
        _, _, wells, rel = members[g]
        k = len(rel)
        others = np.median(rel[_leave_one_out(k)], axis=1)  # median of the other replicates
        dev = rel - others
        sd = abs_sd(g) * math.sqrt(1.0 + _median_variance(k - 1))
        z = np.abs(dev) / sd if sd > 0 else np.full(k, np.inf)
        tail = special.stdtr(TAIL_DF, -z * scale)
        best = min(best, float(np.min(tail)) * 2.0 * n_tests * 2.0)
        far = (others > 0) & ((rel < others / fold) | (rel > others * fold))
        hit = (z > bound) & far & (np.abs(dev) >= PRACTICAL_CHANGE)
        found += [w for w, h in zip(wells, hit, strict=True) if h]
    return found, min(best, 1.0)


def _variable_groups(
    members: list[tuple[str, str | None, list[str], Array]],
    level: list[float],
    judged: list[int],
    abs_sd: Callable[[int], float],
    qc: ReplicateThresholds,
) -> tuple[list[tuple[float, str, list[str]]], list[float], float]:
    """Groups with a CV above the threshold and beyond the plate's noise (χ², Bonferroni)."""
    worst: list[tuple[float, str, list[str]]] = []
    cvs: list[float] = []
    best = 1.0
    tests = len(judged)
    for g in judged:
        name, _, wells, rel = members[g]
        kept = rel
        if len(rel) >= 4:
            kept = np.delete(rel, int(np.argmax(np.abs(rel - np.median(rel)))))
        group_cv = cv(kept)
        if not math.isfinite(group_cv):
            continue
        cvs.append(group_cv)
        dof = len(kept) - 1
        sd = abs_sd(g)
        chi2 = dof * float(np.var(kept, ddof=1)) / sd**2 if sd > 0 else math.inf
        p = float(special.chdtrc(dof, chi2))
        best = min(best, p * tests * 2.0)
        if group_cv > qc.replicate_cv and p < qc.replicate_p / (2.0 * tests):
            worst.append((group_cv, name, wells))
    return worst, cvs, min(best, 1.0)
