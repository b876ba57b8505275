"""The statistics platewatch computes itself, against scipy's reference implementations."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from analysis.stats import mann_whitney_p, ranks

samples = st.lists(
    st.floats(min_value=-5, max_value=5, allow_nan=False).map(lambda v: round(v, 1)),
    min_size=3,
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(a=samples, b=samples)
def test_mann_whitney_equals_scipy_exact_and_asymptotic(a: list[float], b: list[float]) -> None:
    ours = mann_whitney_p(np.array(a), np.array(b))
    ref = stats.mannwhitneyu(a, b, alternative="two-sided").pvalue
    assert ours == ref or abs(ours - ref) <= 1e-9 * max(ref, 1e-300)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.integers(-3, 3).map(float), min_size=1, max_size=30))
def test_ranks_equal_scipy_rankdata(values: list[float]) -> None:
    np.testing.assert_allclose(ranks(np.array(values)), stats.rankdata(values))


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.lists(st.one_of(st.none(), st.floats(-5, 5)), min_size=1, max_size=12),
        min_size=1,
        max_size=8,
    ).filter(lambda rs: len({len(r) for r in rs}) == 1)
)
def test_row_medians_skip_missing_values_as_medpolish_does(rows: list[list[float | None]]) -> None:
    from analysis.stats import _nanmedian_rows

    grid = np.array([[np.nan if v is None else v for v in r] for r in rows], dtype=float)
    expected = [float(np.median(r[np.isfinite(r)])) if np.isfinite(r).any() else 0.0 for r in grid]
    np.testing.assert_allclose(_nanmedian_rows(grid), expected)
