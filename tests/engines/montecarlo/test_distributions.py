"""Statistical checks of the engine's own random streams and sampling transforms.

Each check states its sample size and tolerance; the seed is fixed, so a pass is reproducible, and the
tolerances (5 standard errors, or a chi-square quantile at 1 - 1e-6) would fail a biased sampler.
"""

import math
from statistics import NormalDist

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fundmodel.engines.montecarlo.distributions import (
    QUANTILE_CELLS,
    delay_quarters,
    delay_quarters_from_uniform,
    exit_multiple,
    normal_score_below,
    quantile_grid,
    standard_normal_quantile,
)
from fundmodel.engines.montecarlo.jit import jit
from fundmodel.engines.montecarlo.rng import block_keys, uniform

SAMPLES = 200_000
STANDARD_ERRORS = 5.0


@jit
def _uniforms(key: np.uint64, count: int) -> np.ndarray:
    values = np.empty(count)
    for index in range(count):
        values[index] = uniform(key, np.uint64(index))
    return values


@jit
def _multiples(key: np.uint64, count: int, log_median: float, sigma: float, cap: float) -> np.ndarray:
    values = np.empty(count)
    for index in range(count):
        values[index] = exit_multiple(uniform(key, np.uint64(index)), log_median, sigma, cap)
    return values


def _key(seed: int = 1234) -> np.uint64:
    return block_keys(seed, 0, 1)[0]


def test_uniforms_are_uniform_chi_square() -> None:
    values = _uniforms(_key(), SAMPLES)
    assert values.min() > 0.0
    assert values.max() < 1.0
    counts, _ = np.histogram(values, bins=50, range=(0.0, 1.0))
    expected = SAMPLES / 50
    chi_square = float(((counts - expected) ** 2 / expected).sum())
    # 49 degrees of freedom: the 1 - 1e-6 quantile is about 105.
    assert chi_square < 105.0


def test_neighbouring_counters_are_uncorrelated() -> None:
    values = _uniforms(_key(), SAMPLES)
    correlation = np.corrcoef(values[:-1], values[1:])[0, 1]
    assert abs(correlation) < STANDARD_ERRORS / math.sqrt(SAMPLES)


def test_block_keys_differ_by_block_and_seed() -> None:
    keys = block_keys(7, 0, 64)
    assert len(set(keys.tolist())) == 64
    assert not np.array_equal(block_keys(8, 0, 64), keys)
    assert np.array_equal(block_keys(7, 10, 5), keys[10:15])
    spawned = np.random.SeedSequence(7).spawn(3)[2].generate_state(1, dtype=np.uint64)[0]
    assert keys[2] == spawned


@given(st.floats(min_value=1e-300, max_value=1.0, exclude_max=True))
def test_normal_quantile_matches_the_standard_library(p: float) -> None:
    assert standard_normal_quantile(p) == pytest.approx(NormalDist().inv_cdf(p), rel=1e-12, abs=1e-12)


def test_lognormal_exit_mean_and_tail() -> None:
    median, sigma = 2.0, 1.0
    values = _multiples(_key(99), SAMPLES, math.log(median), sigma, math.inf)
    mean = median * math.exp(sigma**2 / 2)
    standard_error = math.sqrt((math.exp(sigma**2) - 1) * mean**2 / SAMPLES)
    assert abs(values.mean() - mean) < STANDARD_ERRORS * standard_error
    assert np.median(values) == pytest.approx(median, rel=0.02)
    # Tail: P(M > median * e^(1.645 sigma)) = 5 %, binomial standard error.
    threshold = median * math.exp(NormalDist().inv_cdf(0.95) * sigma)
    share = float((values > threshold).mean())
    assert abs(share - 0.05) < STANDARD_ERRORS * math.sqrt(0.05 * 0.95 / SAMPLES)
    # The 1-in-1,000 tail too.
    far = median * math.exp(NormalDist().inv_cdf(0.999) * sigma)
    share = float((values > far).mean())
    assert abs(share - 0.001) < STANDARD_ERRORS * math.sqrt(0.001 * 0.999 / SAMPLES)


def test_capped_exit_mean_matches_the_closed_form() -> None:
    median, sigma, cap = 1.5, 1.5, 20.0
    mu = math.log(median)
    values = _multiples(_key(5), SAMPLES, mu, sigma, cap)
    normal = NormalDist()
    expected = math.exp(mu + sigma**2 / 2) * normal.cdf((math.log(cap) - mu - sigma**2) / sigma)
    expected += cap * (1 - normal.cdf((math.log(cap) - mu) / sigma))
    assert values.max() == cap
    assert abs(values.mean() - expected) < STANDARD_ERRORS * values.std() / math.sqrt(SAMPLES)


def test_zero_sigma_is_the_median() -> None:
    assert exit_multiple(0.01, math.log(3.0), 0.0, math.inf) == pytest.approx(3.0)


@given(st.floats(-8.0, 8.0), st.floats(1.0, 40.0), st.floats(0.0, 2.0), st.floats(-1.0, 1.0))
def test_delays_are_the_rounded_lognormal_and_at_least_one_quarter(
    score: float, median: float, sigma: float, shift: float
) -> None:
    delay = delay_quarters(score, median, sigma, shift)
    exact = median * math.exp(sigma * score + shift)
    assert delay >= 1
    assert delay == max(1, math.floor(exact + 0.5))


def test_delays_have_the_carta_seed_to_series_a_quartiles() -> None:
    # Median 2.1 years (8.4 quarters), sigma 0.7: the 75th percentile is 2.1 x exp(0.7 x 0.674) = 3.4 years
    # (Carta, State of Seed, Winter 2025), within a quarter's rounding.
    values = _uniforms(_key(3), 50_000)
    delays = np.array([delay_quarters(standard_normal_quantile(u), 8.4, 0.7, 0.0) for u in values])
    assert abs(np.median(delays) - 8.4) <= 0.6
    assert abs(np.percentile(delays, 75) / 4.0 - 3.4) <= 0.25
    assert np.percentile(delays, 90) > 1.5 * np.percentile(delays, 75) - 8.4 * 0.5  # a right tail


def test_zero_sigma_delays_are_fixed() -> None:
    assert delay_quarters(3.0, 10.0, 0.0, 0.0) == 10


GRID = quantile_grid(QUANTILE_CELLS)
NORMAL = NormalDist()


def _near(value: float, steps: int) -> float:
    """``value`` moved by ``steps`` units in the last place, kept inside (0, 1)."""
    for _ in range(abs(steps)):
        value = math.nextafter(value, math.inf if steps > 0 else -math.inf)
    return min(max(value, 5e-324), math.nextafter(1.0, 0.0))


# Uniforms anywhere, and right at the grid's cell edges, where the bracket is tightest.
uniforms = st.one_of(
    st.floats(0.0, 1.0, exclude_min=True, exclude_max=True),
    st.builds(
        _near, st.integers(1, QUANTILE_CELLS - 1).map(lambda cell: cell / QUANTILE_CELLS), st.integers(-3, 3)
    ),
)


def _ulps(value: float, steps: int) -> float:
    for _ in range(abs(steps)):
        value = math.nextafter(value, math.inf if steps > 0 else -math.inf)
    return value


def test_the_grid_holds_the_quantiles_of_its_cell_edges() -> None:
    assert GRID[0] == -math.inf
    assert GRID[QUANTILE_CELLS] == math.inf
    assert np.all(np.diff(GRID) > 0.0)
    for cell in (1, 7, 512, 1000, QUANTILE_CELLS - 1):
        assert GRID[cell] == standard_normal_quantile(cell / QUANTILE_CELLS)


@settings(deadline=None)  # the first call compiles
@given(uniforms, st.floats(-3.0, 3.0), st.floats(0.2, 1.0), st.floats(-4.0, 4.0), st.integers(-2, 2))
def test_a_score_comparison_from_the_grid_is_the_quantiles(
    u: float, offset: float, scale: float, threshold: float, steps: int
) -> None:
    exact_score = offset + scale * standard_normal_quantile(u)
    # Also thresholds a few units in the last place from the score itself: the comparison must not drift.
    for bound in (threshold, _ulps(exact_score, steps), -math.inf, math.inf):
        assert normal_score_below(u, offset, scale, bound, GRID) == (exact_score < bound)


@settings(deadline=None)  # the first call compiles
@given(uniforms, st.floats(1.0, 40.0), st.floats(0.05, 2.0), st.floats(-1.0, 1.0))
def test_a_delay_from_the_grid_is_the_rounded_lognormal_of_the_quantile(
    u: float, median: float, sigma: float, shift: float
) -> None:
    grid = np.exp(sigma * GRID)[None, :]
    expected = delay_quarters(standard_normal_quantile(u), median, sigma, shift)
    assert delay_quarters_from_uniform(u, median, sigma, shift, grid, 0, math.exp(shift)) == expected


@settings(deadline=None)  # the first call compiles
@given(
    st.integers(1, 60), st.floats(1.0, 40.0), st.floats(0.05, 2.0), st.floats(-1.0, 1.0), st.integers(-4, 4)
)
def test_a_delay_at_a_rounding_edge_is_the_rounded_lognormal_of_the_quantile(
    quarters: int, median: float, sigma: float, shift: float, steps: int
) -> None:
    # The uniform whose lognormal delay is exactly ``quarters + 0.5``, and its neighbours.
    u = _near(NORMAL.cdf((math.log((quarters + 0.5) / median) - shift) / sigma), steps)
    grid = np.exp(sigma * GRID)[None, :]
    expected = delay_quarters(standard_normal_quantile(u), median, sigma, shift)
    assert delay_quarters_from_uniform(u, median, sigma, shift, grid, 0, math.exp(shift)) == expected
