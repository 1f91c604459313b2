"""Config builders shared by the engine tests."""

from __future__ import annotations

from typing import Any

from fundmodel.engines.montecarlo import SimulationConfig, load_config


def deterministic_fund(**overrides: Any) -> SimulationConfig:
    """$100M, no fees, all-seed, every company exits at 3x its post-money after exactly 4 years (in every
    market state: the market does not move the timing)."""
    body: dict[str, Any] = {
        "fundSize": 100e6,
        "stageDistribution": {"seed": 1.0},
        "managementFeeRate": 0.0,
        "managementFeeStepDownRate": None,
        "fundExpenseRatio": 0.0,
        "reserveRatio": 0.0,
        "initialDeploymentYears": 0.0,
        "carryRate": 0.2,
        "preferredReturn": None,
        "catchUp": 1.0,
        "riskModel": {"marketOnTiming": 0.0},
        "stageProfiles": {
            "seed": {
                "graduationRate": 0.0,
                "exitRate": 1.0,
                "yearsToExit": 4.0,
                "timingSigma": 0.0,
                "exitMultipleMedian": 3.0,
                "exitMultipleSigma": 0.0,
                "exitMultipleCap": None,
            }
        },
    }
    body.update(overrides)
    return load_config(body)


def default_fund(**overrides: Any) -> SimulationConfig:
    body: dict[str, Any] = {"fundSize": 100e6, "stageDistribution": {"seed": 0.6, "series_a": 0.4}}
    body.update(overrides)
    return load_config(body)
