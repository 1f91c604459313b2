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
from fundmodel.engines.montecarlo.kernel_inputs import PortfolioArrays, fund_terms, portfolio_arrays
from fundmodel.engines.montecarlo.paths import (
    EVENT_ROUND,
    FundStream,
    draw_company_paths,
    market_state,
    new_company_book,
    new_event_log,
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
