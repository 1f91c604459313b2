"""What the Monte Carlo kernel reads, as named groups: which funds, the portfolio's arrays, the fund terms.

Named tuples rather than positional arguments: Numba compiles them in nopython mode (each field access
is resolved at compile time, so they cost nothing at run time), and a caller can no longer pass one float
where another was meant without it showing by name. The builders coerce every scalar to ``int`` or
``float`` so that the kernel always sees the same types: a stray ``numpy.float32`` or ``int`` where a
float belongs would otherwise compile a second specialisation, with different arithmetic.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from fundmodel.engines.montecarlo.companies import COL_TIMING_SIGMA, PortfolioPlan
from fundmodel.engines.montecarlo.config import QUARTERS_PER_YEAR, SimulationConfig
from fundmodel.engines.montecarlo.distributions import QUANTILE_CELLS, quantile_grid


class FundBatch(NamedTuple):
    """The funds one kernel call simulates, where their results go, and their random streams."""

    first_fund: int
    """Index of the first fund in the whole simulation: it selects the funds' random streams."""
    fund_count: int
    output_offset: int
    """Column of ``out`` (row of ``j_curve``) receiving the first fund's results."""
    block_keys: npt.NDArray[np.uint64]
    """Keys of the random-number blocks from ``first_block`` on, covering every fund of the batch."""
    first_block: int


class PortfolioArrays(NamedTuple):
    """The deterministic portfolio of every simulated fund (see :class:`PortfolioPlan`)."""

    slot_stage: npt.NDArray[np.int64]
    """Entry stage of each company slot (a row of ``stage_table``)."""
    slot_key: npt.NDArray[np.int64]
    """Random-stream key of each company slot: (entry stage, index within the stage)."""
    slot_check: npt.NDArray[np.float64]
    """Initial check of each company slot."""
    stage_table: npt.NDArray[np.float64]
    """One row per canonical stage, columns ``companies.COL_*``."""
    signal_threshold: npt.NDArray[np.float64]
    """``[entry stage, stage reached]``: observed quality a graduate needs for a follow-on."""
    fixed_calls: npt.NDArray[np.float64]
    """Fees and expenses called in each quarter 0 .. horizon; its length sets the horizon."""
    times_years: npt.NDArray[np.float64]
    """Each quarter's date in years, for the IRR."""
    normal_grid: npt.NDArray[np.float64]
    """The standard-normal quantile at ``i / QUANTILE_CELLS`` (``distributions.quantile_grid``)."""
    lognormal_grid: npt.NDArray[np.float64]
    """``[stage, i]``: ``exp(timing sigma x normal_grid[i])``, for the stage's delays."""


class FundTerms(NamedTuple):
    """The fund's terms, in the units the kernel uses (quarters, dollars, quarterly rates)."""

    deployment_quarters: int
    """Initial checks are dated uniformly over quarters 0 .. this - 1 (0: all in quarter 0)."""
    recycling_quarters: int
    """Exits up to and including this quarter may be recycled."""
    reserve: float
    """Dollars held back for follow-ons."""
    recycling_cap: float
    """Most exit proceeds the fund may recycle over its life."""
    participation: float
    """Follow-on request as a multiple of the pro-rata share of a new round."""
    carry: float
    quarterly_pref: float
    """The preferred return as a quarterly compounding rate (0: no hurdle)."""
    catch_up: float
    commitments: float
    """LP commitments: the J-curve is per dollar committed."""
    outcome_quality: float
    outcome_market: float
    outcome_idiosyncratic: float
    exit_quality: float
    exit_market: float
    exit_idiosyncratic: float
    market_timing: float
    signal_noise: float


def portfolio_arrays(plan: PortfolioPlan) -> PortfolioArrays:
    normal_grid = quantile_grid(QUANTILE_CELLS)
    sigmas = plan.stage_table[:, COL_TIMING_SIGMA]
    with np.errstate(invalid="ignore"):  # 0 x inf at the grid's ends for a stage without spread
        lognormal_grid = np.exp(np.outer(sigmas, normal_grid))
    lognormal_grid[sigmas <= 0.0] = 1.0  # unused: such a stage's delays are its medians
    return PortfolioArrays(
        slot_stage=plan.slot_stage,
        slot_key=plan.slot_key,
        slot_check=plan.slot_check,
        stage_table=plan.stage_table,
        signal_threshold=plan.signal_threshold,
        fixed_calls=plan.fixed_calls,
        times_years=plan.times_years,
        normal_grid=normal_grid,
        lognormal_grid=lognormal_grid,
    )


def fund_terms(config: SimulationConfig, plan: PortfolioPlan) -> FundTerms:
    pref = config.preferred_return or 0.0
    risk = config.risk_model
    return FundTerms(
        deployment_quarters=int(config.deployment_quarters),
        recycling_quarters=int(config.investment_period_quarters),
        reserve=float(plan.reserve),
        recycling_cap=float(plan.recycling_cap),
        participation=float(config.follow_on_participation),
        carry=float(config.carry_rate),
        quarterly_pref=float((1.0 + pref) ** (1.0 / QUARTERS_PER_YEAR) - 1.0),
        catch_up=float(config.catch_up),
        commitments=float(config.fund_size),
        outcome_quality=float(risk.quality_on_outcomes),
        outcome_market=float(risk.market_on_outcomes),
        outcome_idiosyncratic=float(risk.idiosyncratic_on_outcomes),
        exit_quality=float(risk.quality_on_exits),
        exit_market=float(risk.market_on_exits),
        exit_idiosyncratic=float(risk.idiosyncratic_on_exits),
        market_timing=float(risk.market_on_timing),
        signal_noise=float(risk.signal_noise),
    )
