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

from fundmodel.engines.montecarlo.companies import PortfolioPlan
from fundmodel.engines.montecarlo.config import QUARTERS_PER_YEAR, SimulationConfig


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
    slot_check: npt.NDArray[np.float64]
    """Initial check of each company slot."""
    stage_table: npt.NDArray[np.float64]
    """One row per canonical stage, columns ``companies.COL_*``."""
    fixed_calls: npt.NDArray[np.float64]
    """Fees and expenses called in each quarter 0 .. horizon; its length sets the horizon."""
    times_years: npt.NDArray[np.float64]
    """Each quarter's date in years, for the IRR."""


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


def portfolio_arrays(plan: PortfolioPlan) -> PortfolioArrays:
    return PortfolioArrays(
        slot_stage=plan.slot_stage,
        slot_check=plan.slot_check,
        stage_table=plan.stage_table,
        fixed_calls=plan.fixed_calls,
        times_years=plan.times_years,
    )


def fund_terms(config: SimulationConfig, plan: PortfolioPlan) -> FundTerms:
    pref = config.preferred_return or 0.0
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
    )
