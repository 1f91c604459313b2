"""Turn validated requests into engine configurations, enforce the iteration limits, run the engine."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from fundmodel.engines.montecarlo import (
    SimulationConfig,
    SimulationResult,
    StageProfileOverride,
    compare,
    load_config,
    simulate,
)
from fundmodel.errors import InvalidInputError
from fundmodel.simulations.models import MAX_SEED, FundTerms
from fundmodel.stages import Stage

# Stage-keyed fields are taken from the validation layer's decisions, never from the raw request.
_TERMS_EXCLUDE = {"stage_distribution", "stage_profiles", "iterations", "seed", "alternatives"}


def build_config(
    terms: FundTerms,
    weights: Mapping[Stage, float],
    profiles: Mapping[Stage, StageProfileOverride] | None = None,
) -> SimulationConfig:
    """The engine configuration: the request's fund terms with canonical stage weights and overrides."""
    return load_config(config_body(terms, weights, profiles))


def config_body(
    terms: FundTerms,
    weights: Mapping[Stage, float],
    profiles: Mapping[Stage, StageProfileOverride] | None = None,
) -> dict[str, Any]:
    """The configuration as JSON (camelCase), before loading: what a sweep varies parameters of."""
    data: dict[str, Any] = terms.model_dump(by_alias=True, exclude=_TERMS_EXCLUDE, exclude_unset=True)
    data["stageDistribution"] = {stage.value: weight for stage, weight in weights.items()}
    if profiles:
        # exclude_unset keeps an explicit "exitMultipleCap": null (remove the cap) distinct from absent.
        data["stageProfiles"] = {
            stage.value: override.model_dump(by_alias=True, exclude_unset=True)
            for stage, override in profiles.items()
        }
    return data


def check_iterations(iterations: int, configurations: int, *, max_iterations: int, max_work: int) -> None:
    if configurations == 1 and iterations > max_iterations:
        raise InvalidInputError(
            f"iterations must be at most {max_iterations:,} per request on this server "
            f"(asked for {iterations:,})",
            code="ITERATIONS_LIMIT",
            field="iterations",
        )
    if iterations * configurations > max_work:
        raise InvalidInputError(
            f"iterations x alternatives must be at most {max_work:,} per request on this server "
            f"(asked for {iterations:,} x {configurations})",
            code="ITERATIONS_LIMIT",
            field="iterations",
        )


def resolve_seed(seed: int | None) -> int:
    """The seed to run with: the client's, or a fresh one reported back in the result."""
    return seed if seed is not None else secrets.randbelow(MAX_SEED + 1)


def run_simulation(config: SimulationConfig, iterations: int, seed: int) -> dict[str, Any]:
    return _json(simulate(config, iterations=iterations, seed=seed))


def simulate_funds(config: SimulationConfig, iterations: int, seed: int) -> SimulationResult:
    """The whole result, per-fund samples included (for the CSV table)."""
    return simulate(config, iterations=iterations, seed=seed)


def run_comparison(configs: list[SimulationConfig], iterations: int, seed: int) -> list[dict[str, Any]]:
    return [_json(result) for result in compare(configs, iterations=iterations, seed=seed)]


def _json(result: SimulationResult) -> dict[str, Any]:
    body: dict[str, Any] = result.to_json()
    return body
