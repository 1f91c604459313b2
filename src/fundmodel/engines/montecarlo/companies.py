"""Portfolio construction: how many companies a fund enters at each stage, and the arrays the kernel reads.

The initial-check budget (investable capital x (1 - reserve ratio)) is split across entry stages by the
stage distribution (weights rescaled to sum exactly to 1). A stage with budget B and profile check size C
gets n = round(B / C) companies (at least 1, and enough that no check exceeds the round size), each
with the check B / n, so the whole budget is deployed. Company slots are laid out in canonical stage order;
each slot's random-stream key is (entry stage, index within that stage) (:func:`.rng.company_key`), so a
change in one stage's count changes no other company's draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from fundmodel.engines.montecarlo.config import QUARTERS_PER_YEAR, FollowOnPolicy, SimulationConfig
from fundmodel.engines.montecarlo.profiles import StageProfile
from fundmodel.engines.montecarlo.risk import RiskModel
from fundmodel.engines.montecarlo.rng import company_key
from fundmodel.errors import SimulationConfigError
from fundmodel.stages import STAGE_ORDER, Stage

MAX_COMPANIES_PER_FUND = 1000
"""Initial investments per fund; more is not a venture portfolio (and bounds the kernel's scratch space)."""

# Columns of PortfolioPlan.stage_table, one row per canonical stage.
COL_FAIL_Z = 0
"""The standard-normal quantile of the failure rate: a round's score below it is a failure."""
COL_EXIT_SHARE = 1
"""exit / (graduation + exit): the share of survivors that exit rather than raise the next round."""
COL_GRADUATE_QUARTERS = 2
COL_EXIT_QUARTERS = 3
COL_FAIL_QUARTERS = 4
COL_TIMING_SIGMA = 5
COL_ROUND_SIZE = 6
COL_PRE_MONEY = 7
COL_POST_MONEY = 8
COL_LOG_MEDIAN = 9
COL_SIGMA = 10
COL_CAP = 11
COL_RECOVERY_RATE = 12
COL_RECOVERY_MAX = 13
COL_PREF_STACK = 14
"""Liquidation preferences senior to common at this stage: every round raised up to and including it."""
STAGE_COLUMNS = 15

THRESHOLD_SAMPLE = 20_000
"""Companies simulated per entry stage to place the ``topQuantile`` signal thresholds."""
THRESHOLD_SEED = 20261203
"""Fixed: the thresholds are part of the configuration, not of a run's randomness."""


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
    slot_key: npt.NDArray[np.int64]
    """Random-stream key of each slot: (entry stage, index within the stage)."""
    slot_check: npt.NDArray[np.float64]
    stage_table: npt.NDArray[np.float64]
    signal_threshold: npt.NDArray[np.float64]
    """``[entry stage, stage reached]``: the observed quality a graduate needs for a follow-on (-inf: all)."""
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
    slot_key = np.concatenate(
        [
            np.array([company_key(stage.position, index) for index in range(counts[stage])], dtype=np.int64)
            for stage in counts
        ]
    )
    slot_check = np.concatenate([np.full(counts[stage], checks[stage], dtype=np.float64) for stage in counts])
    stage_table = _stage_table([profiles[stage] for stage in STAGE_ORDER])
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
        slot_key=slot_key,
        slot_check=slot_check,
        stage_table=stage_table,
        signal_threshold=signal_thresholds(config, stage_table, sorted({int(s) for s in slot_stage})),
        fixed_calls=fixed_calls,
        times_years=np.arange(horizon + 1, dtype=np.float64) / QUARTERS_PER_YEAR,
    )


def _stage_table(profiles: list[StageProfile]) -> npt.NDArray[np.float64]:
    table = np.zeros((len(profiles), STAGE_COLUMNS), dtype=np.float64)
    normal = NormalDist()
    stack = 0.0
    for row, profile in enumerate(profiles):
        failure = profile.failure_rate
        if failure <= 0.0:
            table[row, COL_FAIL_Z] = -math.inf
        elif failure >= 1.0:
            table[row, COL_FAIL_Z] = math.inf
        else:
            table[row, COL_FAIL_Z] = normal.inv_cdf(failure)
        survive = profile.graduation_rate + profile.exit_rate
        table[row, COL_EXIT_SHARE] = profile.exit_rate / survive if survive > 0.0 else 0.0
        table[row, COL_GRADUATE_QUARTERS] = profile.years_to_graduate * QUARTERS_PER_YEAR
        table[row, COL_EXIT_QUARTERS] = profile.years_to_exit * QUARTERS_PER_YEAR
        table[row, COL_FAIL_QUARTERS] = profile.years_to_fail * QUARTERS_PER_YEAR
        table[row, COL_TIMING_SIGMA] = profile.timing_sigma
        table[row, COL_ROUND_SIZE] = profile.round_size
        table[row, COL_PRE_MONEY] = profile.pre_money_valuation
        table[row, COL_POST_MONEY] = profile.post_money_valuation
        table[row, COL_LOG_MEDIAN] = math.log(profile.exit_multiple_median)
        table[row, COL_SIGMA] = profile.exit_multiple_sigma
        cap = profile.exit_multiple_cap
        table[row, COL_CAP] = math.inf if cap is None else cap
        table[row, COL_RECOVERY_RATE] = profile.failure_recovery_rate
        table[row, COL_RECOVERY_MAX] = profile.failure_recovery_max
        stack += profile.round_size
        table[row, COL_PREF_STACK] = stack
    return table


def signal_thresholds(
    config: SimulationConfig, stage_table: npt.NDArray[np.float64], entry_stages: list[int]
) -> npt.NDArray[np.float64]:
    """The ``topQuantile`` policy's bar: ``[entry stage, stage reached]`` -> the observed-quality quantile
    ``1 - followOnTopShare`` among companies of that entry stage that reach that stage.

    Placed once per configuration from ``THRESHOLD_SAMPLE`` companies per entry stage run through the
    kernel's own survive / route rules (market states included, the horizon ignored), with a fixed seed.
    Under the other policies every entry is -inf (follow on every graduate) or +inf (none).
    """
    stages = stage_table.shape[0]
    if config.follow_on_policy is FollowOnPolicy.PRO_RATA:
        return np.full((stages, stages), -math.inf)
    if config.follow_on_policy is FollowOnPolicy.NONE:
        return np.full((stages, stages), math.inf)
    risk: RiskModel = config.risk_model
    thresholds = np.full((stages, stages), -math.inf)
    generator = np.random.default_rng(THRESHOLD_SEED)
    for entry in entry_stages:
        quality = generator.standard_normal(THRESHOLD_SAMPLE)
        market = generator.standard_normal(THRESHOLD_SAMPLE)
        reaching = np.ones(THRESHOLD_SAMPLE, dtype=bool)
        for reached in range(entry + 1, stages):
            score = (
                risk.quality_on_outcomes * quality
                + risk.market_on_outcomes * market
                + risk.idiosyncratic_on_outcomes * generator.standard_normal(THRESHOLD_SAMPLE)
            )
            survives = score >= stage_table[reached - 1, COL_FAIL_Z]
            graduates = generator.uniform(size=THRESHOLD_SAMPLE) >= stage_table[reached - 1, COL_EXIT_SHARE]
            reaching &= survives & graduates
            signal = quality + risk.signal_noise * generator.standard_normal(THRESHOLD_SAMPLE)
            if reaching.any():
                thresholds[entry, reached] = float(
                    np.quantile(signal[reaching], 1.0 - config.follow_on_top_share)
                )
    return thresholds
