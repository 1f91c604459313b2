"""The result of a simulation and its JSON form (the CLI's ``--json`` and the API's response body).

Every number in the JSON form is finite: the engine never produces NaN or infinity, and :meth:`to_json`
refuses (with an internal error) rather than emit one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from fundmodel.engines.montecarlo.metrics import DistributionSummary, TailRisk
from fundmodel.stages import Stage


@dataclass(frozen=True, slots=True)
class JCurve:
    """Median (across simulated funds) cumulative LP net cash flow at the end of each quarter, in USD."""

    quarters: list[int]
    median_cumulative_net_cash_flow: list[float]

    def to_json(self) -> dict[str, Any]:
        return {
            "quarters": self.quarters,
            "medianCumulativeNetCashFlow": self.median_cumulative_net_cash_flow,
        }


DEAL_BUCKETS: tuple[str, ...] = ("<1x", "1-5x", "5-10x", "10-20x", "20-50x", ">=50x")
"""Multiple buckets of ``dealOutcomes``, in the order of ``events.BUCKET_BOUNDS``."""
BAND_PERCENTILES: tuple[int, ...] = (10, 25, 50, 75, 90)
"""Percentiles of ``yearlyBands``."""
BAND_MEASURES: tuple[str, ...] = ("tvpi", "dpi", "paidIn", "nav")
"""The measures of ``yearlyBands``, in the order of ``cashflows.YEARLY_*``."""


@dataclass(frozen=True, slots=True)
class YearlyBands:
    """Percentiles across simulated funds, at the end of each year of the fund's life (year 0: the first
    quarter), of TVPI, DPI, paid-in and NAV (USD). Before the horizon, NAV is gross of carry and TVPI is
    (LP distributions + NAV) / paid-in; at the horizon TVPI is the net TVPI."""

    years: list[float]
    bands: dict[str, dict[int, list[float]]]
    """measure -> percentile -> one value per year."""

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"years": self.years}
        for measure, by_level in self.bands.items():
            document[measure] = {f"p{level}": values for level, values in by_level.items()}
        return document


@dataclass(frozen=True, slots=True)
class DealOutcomes:
    """Shares of all financings (every initial check and every follow-on, all funds) by the multiple it
    returned (proceeds, or value at the horizon, over its cost): by count and by dollars invested."""

    by_count: dict[str, float]
    by_dollars: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        return {"byCount": dict(self.by_count), "byDollars": dict(self.by_dollars)}


@dataclass(frozen=True, slots=True)
class SourceReturns:
    """Pooled over all funds: dollars returned (and value at the horizon) per dollar invested, and the
    share of dollars in financings that returned less than 1x."""

    gross_moic: float
    loss_ratio: float

    def to_json(self) -> dict[str, float]:
        return {"grossMoic": self.gross_moic, "lossRatio": self.loss_ratio}


@dataclass(frozen=True, slots=True)
class ReturnsBySource:
    initial: SourceReturns
    follow_on: SourceReturns

    def to_json(self) -> dict[str, Any]:
        return {"initial": self.initial.to_json(), "followOn": self.follow_on.to_json()}


@dataclass(frozen=True, slots=True)
class CapitalSummary:
    """Fund-level capital figures; stochastic ones are means across simulated funds."""

    commitments: float
    management_fees: float
    fund_expenses: float
    investable: float
    initial_budget: float
    reserve: float
    companies_by_stage: dict[Stage, int]
    initial_check_by_stage: dict[Stage, float]
    mean_paid_in: float
    mean_initial_deployed: float
    mean_follow_on_deployed: float
    mean_follow_on_requested: float
    mean_reserve_used: float
    mean_recycled: float
    mean_carry_paid: float

    def to_json(self) -> dict[str, Any]:
        return {
            "commitments": self.commitments,
            "managementFees": self.management_fees,
            "fundExpenses": self.fund_expenses,
            "investable": self.investable,
            "initialBudget": self.initial_budget,
            "reserve": self.reserve,
            "initialCompanies": sum(self.companies_by_stage.values()),
            "companiesByStage": {stage.value: n for stage, n in self.companies_by_stage.items()},
            "initialCheckByStage": {
                stage.value: check for stage, check in self.initial_check_by_stage.items()
            },
            "paidIn": self.mean_paid_in,
            "deployed": {
                "initial": self.mean_initial_deployed,
                "followOn": self.mean_follow_on_deployed,
                "followOnRequested": self.mean_follow_on_requested,
            },
            "reserveUsed": self.mean_reserve_used,
            "reserveUsage": self.mean_reserve_used / self.reserve if self.reserve > 0 else 0.0,
            "recycled": self.mean_recycled,
            "carryPaid": self.mean_carry_paid,
        }


@dataclass(frozen=True, slots=True)
class EngineInfo:
    version: str
    iterations: int
    seed: int

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "iterations": self.iterations, "seed": self.seed}


@dataclass(frozen=True, slots=True)
class SimulationResult:
    """Summary statistics of one simulation, plus the per-fund samples (not part of the JSON form)."""

    net_tvpi: DistributionSummary
    dpi: DistributionSummary
    rvpi: DistributionSummary
    net_irr: DistributionSummary
    gross_moic: DistributionSummary
    loss_ratio: DistributionSummary
    prob_tvpi_at_least: dict[int, float]
    tvpi_risk: TailRisk
    irr_risk: TailRisk
    j_curve: JCurve
    capital: CapitalSummary
    stage_distribution: dict[Stage, float]
    engine: EngineInfo
    yearly_bands: YearlyBands
    deal_outcomes: DealOutcomes
    returns_by_source: ReturnsBySource
    prob_fund_returner: float
    """Share of funds in which at least one company returns the whole fund (its commitments) or more."""
    samples: dict[str, npt.NDArray[np.float64]] = field(repr=False, compare=False)
    """Per-fund values by name (``netTvpi``, ``dpi``, ``netIrr``, ``grossMoic``, ...), for plots and tests."""

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "netTvpi": self.net_tvpi.to_json(),
            "dpi": self.dpi.to_json(),
            "rvpi": self.rvpi.to_json(),
            "netIrr": self.net_irr.to_json(),
            "grossMoic": self.gross_moic.to_json(),
            "probTvpiAtLeast": {str(threshold): p for threshold, p in self.prob_tvpi_at_least.items()},
            "risk": {"netTvpi": self.tvpi_risk.to_json(), "netIrr": self.irr_risk.to_json()},
            "lossRatio": self.loss_ratio.to_json(),
            "jCurve": self.j_curve.to_json(),
            "yearlyBands": self.yearly_bands.to_json(),
            "dealOutcomes": self.deal_outcomes.to_json(),
            "returnsBySource": self.returns_by_source.to_json(),
            "probFundReturner": self.prob_fund_returner,
            "capital": self.capital.to_json(),
            "stageDistribution": {stage.value: weight for stage, weight in self.stage_distribution.items()},
            "engine": self.engine.to_json(),
        }
        _require_finite(document, "")
        return document


def _require_finite(value: object, path: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _require_finite(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for position, item in enumerate(value):
            _require_finite(item, f"{path}[{position}]")
    elif isinstance(value, float) and not math.isfinite(value):
        raise ArithmeticError(f"simulation produced a non-finite value at {path}")
