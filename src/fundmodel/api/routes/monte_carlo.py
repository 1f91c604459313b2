"""Monte Carlo simulation and comparison (CPU-bound: run in worker threads, bounded per process)."""

from __future__ import annotations

from functools import partial

import anyio.to_thread
from fastapi import APIRouter

from fundmodel.api.dependencies import AppStateDep, SettingsDep, StageValidationDep
from fundmodel.api.openapi_docs import validated_responses
from fundmodel.simulations import service
from fundmodel.simulations.models import (
    ComparedResult,
    CompareRequest,
    CompareResponse,
    SimulateRequest,
    SimulationResponse,
)

router = APIRouter(prefix="/api/monte-carlo", tags=["monte carlo"])


@router.post("/simulate", response_model=SimulationResponse, responses=validated_responses(200, body=True))
async def simulate(
    body: SimulateRequest,
    validation: StageValidationDep,
    state: AppStateDep,
    settings: SettingsDep,
) -> SimulationResponse:
    weights = validation.distribution(body.stage_distribution, field="stageDistribution")
    profiles = validation.stage_keyed(body.stage_profiles, field="stageProfiles")
    service.check_iterations(
        body.iterations,
        1,
        max_iterations=settings.montecarlo_max_iterations,
        max_work=settings.montecarlo_max_compare_work,
    )
    config = service.build_config(body, weights, profiles)
    run = partial(service.run_simulation, config, body.iterations, service.resolve_seed(body.seed))
    result = await anyio.to_thread.run_sync(run, limiter=state.simulation_slots)
    return SimulationResponse(result=result, warnings=validation.warnings)


@router.post("/compare", response_model=CompareResponse, responses=validated_responses(200, body=True))
async def compare(
    body: CompareRequest,
    validation: StageValidationDep,
    state: AppStateDep,
    settings: SettingsDep,
) -> CompareResponse:
    weights = [
        validation.distribution(
            alternative.stage_distribution,
            field=f"alternatives[{position}].stageDistribution",
        )
        for position, alternative in enumerate(body.alternatives)
    ]
    profiles = validation.stage_keyed(body.stage_profiles, field="stageProfiles")
    service.check_iterations(
        body.iterations,
        len(weights),
        max_iterations=settings.montecarlo_max_iterations,
        max_work=settings.montecarlo_max_compare_work,
    )
    configs = [service.build_config(body, alternative, profiles) for alternative in weights]
    run = partial(service.run_comparison, configs, body.iterations, service.resolve_seed(body.seed))
    results = await anyio.to_thread.run_sync(run, limiter=state.simulation_slots)
    return CompareResponse(
        results=[
            ComparedResult(label=alternative.label, result=result)
            for alternative, result in zip(body.alternatives, results, strict=True)
        ],
        warnings=validation.warnings,
    )
