"""Portfolio construction: how many companies a fund enters at each stage, and the arrays the kernel reads.

The initial-check budget (investable capital x (1 - reserve ratio)) is split across entry stages by the
stage distribution (weights rescaled to sum exactly to 1). A stage with budget B and profile check size C
gets n = round(B / C) companies (at least 1, and enough that no check exceeds the round size), each
with the check B / n, so the whole budget is deployed. Company slots are laid out in canonical stage order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fundmodel.engines.montecarlo.config import QUARTERS_PER_YEAR, SimulationConfig
from fundmodel.engines.montecarlo.profiles import StageProfile
from fundmodel.errors import SimulationConfigError
from fundmodel.stages import STAGE_ORDER, Stage

MAX_COMPANIES_PER_FUND = 1000
"""Initial investments per fund; more is not a venture portfolio (and bounds the kernel's scratch space)."""

# Columns of PortfolioPlan.stage_table, one row per canonical stage.
COL_GRADUATION = 0
COL_EXIT = 1
COL_GRADUATE_QUARTERS = 2
COL_EXIT_QUARTERS = 3
COL_JITTER = 4
COL_ROUND_SIZE = 5
COL_PRE_MONEY = 6
COL_POST_MONEY = 7
COL_LOG_MEDIAN = 8
COL_SIGMA = 9
COL_CAP = 10
STAGE_COLUMNS = 11


@dataclass(frozen=True, slots=True)
class PortfolioPlan:
    """Everything deterministic about a simulated fund, resolved once before the Monte Carlo loop."""

    stage_weights: dict[Stage, float]
    companies_by_stage: dict[Stage, int]
    initial_check_by_stage: dict[Stage, float]
    initial_budget: float
    reserve: float
    recycling_cap: float
    slot_stage: npt.NDArray[np.int64]
    slot_check: npt.NDArray[np.float64]
    stage_table: npt.NDArray[np.float64]
    fixed_calls: npt.NDArray[np.float64]
    """Management fees plus expenses called in each quarter 0 .. horizon (the last is 0)."""
    times_years: npt.NDArray[np.float64]

    @property
    def company_count(self) -> int:
        return int(self.slot_stage.shape[0])


def plan_portfolio(config: SimulationConfig) -> PortfolioPlan:
    """Resolve ``config`` into a plan; raise :class:`SimulationConfigError` when no sane portfolio fits."""
    profiles = config.resolved_stage_profiles()
    total_weight = sum(config.stage_distribution.values())
    weights = {
        stage: config.stage_distribution[stage] / total_weight
        for stage in STAGE_ORDER
        if config.stage_distribution.get(stage, 0.0) > 0.0
    }
    investable = config.investable_capital
    initial_budget = investable * (1.0 - config.reserve_ratio)
    reserve = investable - initial_budget

    counts: dict[Stage, int] = {}
    checks: dict[Stage, float] = {}
    for stage, weight in weights.items():
        profile = profiles[stage]
        budget = initial_budget * weight
        count = max(
            1,
            math.floor(budget / profile.check_size + 0.5),
            math.ceil(budget / profile.round_size),
        )
        counts[stage] = count
        checks[stage] = budget / count
    total_companies = sum(counts.values())
    if total_companies > MAX_COMPANIES_PER_FUND:
        raise SimulationConfigError(
            f"the allocation makes {total_companies} initial investments per fund; at most "
            f"{MAX_COMPANIES_PER_FUND} are allowed (raise stageProfiles.*.checkSize or lower fundSize)",
            field="stageProfiles",
        )

    slot_stage = np.concatenate([np.full(counts[stage], stage.position, dtype=np.int64) for stage in counts])
    slot_check = np.concatenate([np.full(counts[stage], checks[stage], dtype=np.float64) for stage in counts])
    horizon = config.horizon_quarters
    fixed_calls = np.zeros(horizon + 1, dtype=np.float64)
    fee_rates = np.asarray(config.quarterly_fee_rates(), dtype=np.float64)
    fixed_calls[:horizon] = fee_rates / QUARTERS_PER_YEAR * config.fund_size + config.total_expenses / horizon
    return PortfolioPlan(
        stage_weights=weights,
        companies_by_stage=counts,
        initial_check_by_stage=checks,
        initial_budget=initial_budget,
        reserve=reserve,
        recycling_cap=config.recycling_ratio * config.fund_size,
        slot_stage=slot_stage,
        slot_check=slot_check,
        stage_table=_stage_table([profiles[stage] for stage in STAGE_ORDER]),
        fixed_calls=fixed_calls,
        times_years=np.arange(horizon + 1, dtype=np.float64) / QUARTERS_PER_YEAR,
    )


def _stage_table(profiles: list[StageProfile]) -> npt.NDArray[np.float64]:
    table = np.zeros((len(profiles), STAGE_COLUMNS), dtype=np.float64)
    for row, profile in enumerate(profiles):
        table[row, COL_GRADUATION] = profile.graduation_rate
        table[row, COL_EXIT] = profile.exit_rate
        table[row, COL_GRADUATE_QUARTERS] = profile.years_to_graduate * QUARTERS_PER_YEAR
        table[row, COL_EXIT_QUARTERS] = profile.years_to_exit * QUARTERS_PER_YEAR
        table[row, COL_JITTER] = profile.timing_jitter
        table[row, COL_ROUND_SIZE] = profile.round_size
        table[row, COL_PRE_MONEY] = profile.pre_money_valuation
        table[row, COL_POST_MONEY] = profile.post_money_valuation
        table[row, COL_LOG_MEDIAN] = math.log(profile.exit_multiple_median)
        table[row, COL_SIGMA] = profile.exit_multiple_sigma
        cap = profile.exit_multiple_cap
        table[row, COL_CAP] = math.inf if cap is None else cap
    return table
