"""The fitter's calls on 2,400 screen-shaped curves, against the fitter before issue 14.

tests/data/fit_regression.json holds what bench/legacy.py (analysis/doseresponse.py at
2b4e585, MINPACK polish + trust-region-reflective bounded refit) reported for
``bench.screen.make_screen(2400, 14)``: the response call, the IC50 qualifier and value,
the RSS, whether the fit was bounded and converged (``python -m bench.fit
--write-regression`` rewrites it). Every curve must keep its call, qualifier and IC50
(within 1 %) unless one of these explains the change — each checked here, not asserted:

* ``crashed``: the old fitter raised (OverflowError in the fls CI of an unpinned IC50);
* ``old_not_converged``: the old fit ran out of evaluations (so it claimed nothing) and the
  new one converges to a fit at least as good (RSS within 1e-7);
* ``better_minimum``: the old fit stopped in a worse local minimum (the new RSS is lower by
  more than 1e-7 relative; typically a bounded step refit that went the wrong way);
* ``flat_valley``: a bounded fit along a valley of equal RSS (within 1e-7 relative): the data
  do not determine the IC50 there, and the old one lies inside the new fit's bracket.
"""

from __future__ import annotations

import collections
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from analysis.doseresponse import LL4Fit, fit_ll4_many
from bench.screen import make_screen

DATA = Path(__file__).resolve().parent / "data" / "fit_regression.json"
CALL = {"y": "yes", "p": "partial", "n": "none"}


@pytest.fixture(scope="module")
def before() -> dict[str, Any]:
    return dict(json.loads(DATA.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def after(before: dict[str, Any]) -> list[LL4Fit]:
    curves = make_screen(before["n"], before["seed"])
    checksum = sum(float(c.response.sum()) + float(c.dose.sum()) for c in curves)
    assert float(f"{checksum:.10g}") == before["checksum"], (
        "bench/screen.py no longer makes the curves the regression data were written for"
    )
    return fit_ll4_many([(c.dose, c.response) for c in curves])


def _reason(old: dict[str, Any], new: LL4Fit) -> str | None:
    """None when the call, qualifier and IC50 are unchanged, else why they changed."""
    if old["response"] == "x":
        return "crashed"
    same_call = CALL[old["response"]] == new.response and old["qualifier"] == new.ic50_qualifier
    a, b = old["ic50"], new.ic50
    same_ic50 = a is None or b is None or not math.isfinite(b) or abs(b / a - 1) <= 0.01
    if same_call and same_ic50:
        return None
    rel = (new.rss - old["rss"]) / old["rss"]
    if old["converged"] == "0" and new.converged and rel <= 1e-7:
        return "old_not_converged"
    if rel < -1e-7:
        return "better_minimum"
    bracket = new.ic50_ci if new.ic50_ci_method == "bracket" else None
    if abs(rel) <= 1e-7 and (new.bounded or old["bounded"] == "1") and bracket is not None:
        if bracket[0] * (1 - 1e-9) <= a <= bracket[1] * (1 + 1e-9):
            return "flat_valley"
    return "unexplained"


def test_calls_qualifiers_and_ic50s_unchanged_or_explained(
    before: dict[str, Any], after: list[LL4Fit]
) -> None:
    reasons: collections.Counter[str] = collections.Counter()
    unexplained = []
    for i, new in enumerate(after):
        old = {
            key: before[key][i]
            for key in ("response", "qualifier", "bounded", "converged", "ic50", "rss")
        }
        reason = _reason(old, new)
        reasons[reason or "unchanged"] += 1
        if reason == "unexplained":
            unexplained.append((i, old, new.response, new.ic50_qualifier, new.ic50, new.rss))
    print(dict(reasons))
    assert not unexplained, unexplained[:5]
    assert reasons["unchanged"] >= 0.95 * len(after)  # 2,322 of 2,400 when written
    assert reasons["crashed"] == len(before["crashed"])


def test_no_fit_is_a_clearly_worse_minimum_than_before(
    before: dict[str, Any], after: list[LL4Fit]
) -> None:
    """Both fitters are local optimisers from similar starts; where they part (a flat
    curve with several minima) the new one may stop in a slightly worse one, rarely, and
    never so that a call changes (the test above)."""
    old_rss = np.array([math.nan if v is None else v for v in before["rss"]])
    new_rss = np.array([f.rss for f in after])
    has = np.isfinite(old_rss)
    worse = has & (new_rss > old_rss * (1 + 1e-6))
    assert int(worse.sum()) <= 0.002 * len(after), np.flatnonzero(worse)[:10]
    assert np.all(new_rss[has] <= old_rss[has] * 1.01)


def test_the_old_crashes_now_give_finite_json(before: dict[str, Any], after: list[LL4Fit]) -> None:
    assert before["crashed"], "the regression data should hold the old OverflowError cases"
    for i in before["crashed"]:
        record = after[i].to_dict()
        json.dumps(record, allow_nan=False)  # no NaN/inf anywhere: they are null
        assert after[i].response in ("yes", "partial", "none")
