import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fundmodel.engines.montecarlo.metrics import (
    column_percentiles,
    median_by_column,
    probabilities_at_least,
    summarize,
    tail_risk,
)
from fundmodel.engines.montecarlo.result import _require_finite

VALUES = np.arange(1.0, 101.0)  # 1 .. 100


def test_percentiles_interpolate_linearly() -> None:
    summary = summarize(VALUES)
    assert summary.mean == 50.5
    assert summary.percentiles[50] == 50.5
    assert summary.percentiles[5] == pytest.approx(1 + 0.05 * 99)
    assert summary.to_json()["p95"] == pytest.approx(1 + 0.95 * 99)


def test_value_at_risk_and_expected_shortfall() -> None:
    risk = tail_risk(VALUES)
    assert risk.value_at_risk[5] == pytest.approx(5.95)
    assert risk.expected_shortfall[5] == pytest.approx(3.0)  # mean of the worst 5: 1..5
    assert risk.expected_shortfall[10] == pytest.approx(5.5)  # mean of the worst 10
    assert risk.to_json()["valueAtRisk"]["10"] == pytest.approx(10.9)


def test_tail_of_a_tiny_sample_is_its_worst_value() -> None:
    assert tail_risk(np.array([3.0, 1.0, 2.0])).expected_shortfall[5] == 1.0


def test_probabilities_count_ties_as_reaching_the_threshold() -> None:
    assert probabilities_at_least(np.array([0.5, 1.0, 2.0, 3.0]), (1, 3)) == {1: 0.75, 3: 0.25}


def test_median_by_column_even_and_odd() -> None:
    columns = np.array([[4.0, 1.0, 3.0, 2.0], [9.0, 7.0, 8.0, 6.0]], dtype=np.float32).T
    assert median_by_column(columns.copy()).tolist() == [2.5, 7.5]
    assert median_by_column(columns[:3].copy()).tolist() == [3.0, 8.0]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.floats(-1e6, 1e6, width=32),
        min_size=1,
        max_size=60,
    ),
    st.integers(1, 3),
)
def test_median_by_column_matches_numpy(values: list[float], columns: int) -> None:
    data = np.array(values, dtype=np.float32)
    grid = np.stack([np.roll(data, shift) for shift in range(columns)], axis=1)
    expected = np.median(grid.astype(np.float64), axis=0)
    np.testing.assert_allclose(median_by_column(grid), expected, rtol=1e-7)


def test_non_finite_output_is_refused() -> None:
    _require_finite({"a": [1.0, {"b": 2.0}]}, "")
    with pytest.raises(ArithmeticError, match=r"a\[1\]\.b"):
        _require_finite({"a": [1.0, {"b": math.nan}]}, "")


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False, width=32), min_size=1, max_size=200),
    st.integers(1, 4),
)
def test_column_percentiles_are_numpys_linear_percentiles(column: list[float], columns: int) -> None:
    values = np.tile(np.asarray(column, dtype=np.float32)[:, None], (1, columns))
    values[:, -1] = values[::-1, -1]  # the same numbers in another order
    fractions = np.array([0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0])
    levels = np.empty((fractions.shape[0], columns))
    column_percentiles(values, fractions, levels, 0, columns)
    expected = np.percentile(values.astype(np.float64), fractions * 100.0, axis=0)
    np.testing.assert_allclose(levels, expected, rtol=1e-12, atol=1e-9)


@settings(deadline=None)
@given(st.lists(st.floats(-1e6, 1e6) | st.sampled_from([0.0, 1.0, 1.0, 2.5]), min_size=1, max_size=400))
def test_summaries_are_numpys_percentiles_of_the_raw_sample_to_the_bit(values: list[float]) -> None:
    # summarize and tail_risk sort first (for speed): the levels must be exactly NumPy's on the sample.
    sample = np.array(values)
    summary = summarize(sample)
    assert summary.mean == float(np.mean(sample))
    for level, value in summary.percentiles.items():
        assert value == float(np.percentile(sample, level))
    risk = tail_risk(sample)
    for level, value in risk.value_at_risk.items():
        assert value == float(np.percentile(sample, level))
