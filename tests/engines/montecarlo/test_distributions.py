"""Statistical checks of the engine's own random streams and sampling transforms.

Each check states its sample size and tolerance; the seed is fixed, so a pass is reproducible, and the
tolerances (5 standard errors, or a chi-square quantile at 1 - 1e-6) would fail a biased sampler.
"""

import math
from statistics import NormalDist

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fundmodel.engines.montecarlo.distributions import (
    event_delay_quarters,
    exit_multiple,
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


@given(st.floats(0.0, 1.0, exclude_min=True, exclude_max=True), st.floats(1.0, 40.0), st.floats(0, 0.99))
def test_delays_stay_in_their_band(u: float, mean: float, jitter: float) -> None:
    delay = event_delay_quarters(u, mean, jitter)
    assert delay >= 1
    assert mean * (1 - jitter) - 0.5 <= delay or delay == 1
    assert delay <= mean * (1 + jitter) + 0.5


def test_delay_mean_is_the_profile_mean() -> None:
    values = _uniforms(_key(3), 50_000)
    delays = np.array([event_delay_quarters(u, 10.0, 0.5) for u in values[:20_000]])
    # Uniform on 5..15 quarters, rounded: mean 10, sd ~2.9 -> SE ~0.02.
    assert abs(delays.mean() - 10.0) < 0.1
