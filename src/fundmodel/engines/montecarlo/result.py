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
