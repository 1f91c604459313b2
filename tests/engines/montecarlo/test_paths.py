"""Phase 1 of the kernel: company paths, and the pairing guarantee of the company keys.

A company's draws are keyed by (entry stage, index within the stage): adding or removing companies at one
stage must leave every other company's path (every event, its date, kind, stage, multiple and follow-on
decision) bit-identical. Checked on the compiled phase directly, for generated portfolios.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fundmodel.engines.montecarlo.companies import plan_portfolio
from fundmodel.engines.montecarlo.distributions import (
    QUANTILE_CELLS,
    normal_score_below,
    quantile_grid,
    standard_normal_quantile,
)
from fundmodel.engines.montecarlo.kernel_inputs import PortfolioArrays, fund_terms, portfolio_arrays
from fundmodel.engines.montecarlo.paths import (
    EVENT_ROUND,
    FAILS,
    SURVIVES,
    UNDECIDED,
    FundStream,
    draw_company_paths,
    market_state,
    new_company_book,
    new_event_log,
    outcome_from_quality_cell,
)
from fundmodel.engines.montecarlo.rng import FUNDS_PER_BLOCK, block_keys, company_key
from fundmodel.stages import Stage

from .builders import default_fund

CompanyPath = list[tuple[int, int, int, float, bool]]


def _portfolio(base: PortfolioArrays, counts: dict[Stage, int]) -> PortfolioArrays:
    stages = [stage for stage in counts for _ in range(counts[stage])]
    keys = [company_key(stage.position, index) for stage in counts for index in range(counts[stage])]
    return base._replace(
        slot_stage=np.array([stage.position for stage in stages], dtype=np.int64),
        slot_key=np.array(keys, dtype=np.int64),
        slot_check=np.full(len(stages), 1e6),
    )


def _paths(counts: dict[Stage, int], fund: int, seed: int) -> dict[int, CompanyPath]:
    """Each company's events by its stream key, for fund ``fund`` of a run with ``seed``."""
    config = default_fund(followOnPolicy="topQuantile")
    plan = plan_portfolio(config)
    portfolio = _portfolio(portfolio_arrays(plan), counts)
    terms = fund_terms(config, plan)
    slots = portfolio.slot_stage.shape[0]
    log = new_event_log(slots * (portfolio.stage_table.shape[0] + 1))
    book = new_company_book(slots)
    horizon = config.horizon_quarters
    calls = np.zeros(horizon + 1)
    nav_change = np.zeros(horizon + 1)
    block = fund // FUNDS_PER_BLOCK
    stream = FundStream(block_keys(seed, block, 1)[0], fund - block * FUNDS_PER_BLOCK)
    events, _ = draw_company_paths(
        stream, market_state(stream), portfolio, terms, book, log, calls, nav_change
    )
    paths: dict[int, CompanyPath] = {int(key): [] for key in portfolio.slot_key}
    for index in range(events):
        key = int(portfolio.slot_key[log.slot[index]])
        kind = int(log.kind[index])
        paths[key].append(
            (
                kind,
                int(log.quarter[index]),
                int(log.stage[index]) if kind == EVENT_ROUND else -1,
                float(log.multiple[index]) if kind != EVENT_ROUND else math.nan,
                bool(log.follow[index]) if kind == EVENT_ROUND else False,
            )
        )
    return paths


@settings(max_examples=25, deadline=None)
@given(
    seed_companies=st.integers(1, 25),
    series_a_companies=st.integers(1, 10),
    added=st.integers(1, 5),
    fund=st.integers(0, 3 * FUNDS_PER_BLOCK),
    seed=st.integers(0, 2**64 - 1),
)
def test_changing_one_stage_count_leaves_every_other_company_identical(
    seed_companies: int, series_a_companies: int, added: int, fund: int, seed: int
) -> None:
    before = _paths({Stage.SEED: seed_companies, Stage.SERIES_A: series_a_companies}, fund, seed)
    after = _paths({Stage.SEED: seed_companies + added, Stage.SERIES_A: series_a_companies}, fund, seed)
    for key, path in before.items():
        # NaN != NaN: compare the multiples' bit patterns through repr.
        assert repr(after[key]) == repr(path), f"company key {key} moved"
    assert len(after) == len(before) + added


def test_company_keys_are_per_stage_and_index() -> None:
    plan = plan_portfolio(default_fund())
    seed_count = plan.companies_by_stage[Stage.SEED]
    expected = [company_key(Stage.SEED.position, index) for index in range(seed_count)]
    assert list(plan.slot_key[:seed_count]) == expected
    assert plan.slot_key[seed_count] == company_key(Stage.SERIES_A.position, 0)


GRID = quantile_grid(QUANTILE_CELLS)
# Uniforms anywhere inside the grid's inner cells (the end cells' quality is always computed), and
# right at the inner cells' edges, where the brackets are tightest.
inner_uniforms = st.one_of(
    st.floats(1.0 / QUANTILE_CELLS, 1.0 - 1.0 / QUANTILE_CELLS, exclude_max=True),
    st.builds(
        lambda cell, steps: _ulps(cell / QUANTILE_CELLS, steps),
        st.integers(2, QUANTILE_CELLS - 2),
        st.integers(-3, 3),
    ),
)
any_uniforms = st.one_of(
    st.floats(0.0, 1.0, exclude_min=True, exclude_max=True),
    st.builds(
        lambda cell, steps: _ulps(cell / QUANTILE_CELLS, steps),
        st.integers(1, QUANTILE_CELLS - 1),
        st.integers(-3, 3),
    ),
)


def _ulps(value: float, steps: int) -> float:
    for _ in range(abs(steps)):
        value = math.nextafter(value, math.inf if steps > 0 else -math.inf)
    return min(max(value, 5e-324), math.nextafter(1.0, 0.0))


@settings(deadline=None)  # the first call compiles
@given(
    quality_u=inner_uniforms,
    outcome_u=any_uniforms,
    quality_loading=st.floats(0.0, 0.95),
    market_loading=st.floats(0.0, 0.95),
    market=st.floats(-5.0, 5.0),
    threshold=st.floats(-4.0, 4.0),
    near_score=st.booleans(),
    steps=st.integers(-3, 3),
)
def test_an_outcome_decided_from_the_quality_cell_is_the_one_the_exact_quality_gives(
    quality_u: float,
    outcome_u: float,
    quality_loading: float,
    market_loading: float,
    market: float,
    threshold: float,
    near_score: bool,
    steps: int,
) -> None:
    # The kernel's own arithmetic, with the quality computed: common + scale x quantile(u) < threshold.
    scale = math.sqrt(max(1.0 - quality_loading**2 - market_loading**2, 0.01))
    market_term = market_loading * market
    common = quality_loading * standard_normal_quantile(quality_u) + market_term
    exact_score = common + scale * standard_normal_quantile(outcome_u)
    if near_score:  # thresholds a few units in the last place from the score: the decision must not drift
        threshold = exact_score
        for _ in range(abs(steps)):
            threshold = math.nextafter(threshold, math.inf if steps > 0 else -math.inf)
    cell = min(int(quality_u * QUANTILE_CELLS), QUANTILE_CELLS - 1)
    decided = outcome_from_quality_cell(
        outcome_u,
        quality_loading * GRID[cell] + market_term,
        quality_loading * GRID[cell + 1] + market_term,
        scale,
        threshold,
        GRID,
    )
    assert decided in (FAILS, SURVIVES, UNDECIDED)
    if decided != UNDECIDED:
        assert (decided == FAILS) == (exact_score < threshold)
    assert normal_score_below(outcome_u, common, scale, threshold, GRID) == (exact_score < threshold)


def test_most_outcomes_are_decided_without_the_quality() -> None:
    # What the lazy quality buys: the cell decides all but a small share of outcomes.
    rng = np.random.default_rng(7)
    undecided = 0
    trials = 20_000
    for quality_u, outcome_u in rng.uniform(1.0 / QUANTILE_CELLS, 1.0 - 1.0 / QUANTILE_CELLS, (trials, 2)):
        cell = int(quality_u * QUANTILE_CELLS)
        decided = outcome_from_quality_cell(
            outcome_u, 0.5 * GRID[cell] + 0.1, 0.5 * GRID[cell + 1] + 0.1, 0.8, -0.2, GRID
        )
        undecided += decided == UNDECIDED
    assert undecided / trials < 0.01
