"""Monte Carlo simulation and comparison (CPU-bound: run in worker threads, bounded per process)."""

from __future__ import annotations

from functools import partial
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from fundmodel.api.dependencies import AppStateDep, SettingsDep, StageValidationDep
from fundmodel.api.openapi_docs import validated_responses
from fundmodel.simulations import fund_table, service
from fundmodel.simulations.models import (
    ComparedResult,
    CompareRequest,
    CompareResponse,
    SimulateRequest,
    SimulationResponse,
)

router = APIRouter(prefix="/api/monte-carlo", tags=["monte carlo"])

SEED_HEADER = "X-Simulation-Seed"
CSV_CONTENT = f"{fund_table.CSV_MEDIA_TYPE}; charset=utf-8"
_CSV_EXAMPLE = (
    "fund,netTvpi,dpi,rvpi,netIrr,grossMoic,lossRatio,paidIn,...\n"
    "0,1.84,0.92,0.92,0.087,2.31,0.58,97500000.0,...\n"
)


def _simulate_responses() -> dict[int | str, dict[str, Any]]:
    responses = validated_responses(200, body=True)
    success = responses[200]
    success["description"] = (
        "The summary as JSON; with `Accept: text/csv`, the per-fund table instead (one row per simulated "
        f"fund, streamed; the seed used is in `{SEED_HEADER}`)."
    )
    success["content"] = {CSV_CONTENT: {"schema": {"type": "string"}, "example": _CSV_EXAMPLE}}
    success["headers"] = {
        **success["headers"],
        SEED_HEADER: {
            "description": "The seed of the run (CSV answers only): send it as `seed` to get the same table.",
            "schema": {"type": "integer"},
        },
    }
    return responses


@router.post("/simulate", response_model=SimulationResponse, responses=_simulate_responses())
async def simulate(
    body: SimulateRequest,
    request: Request,
    validation: StageValidationDep,
    state: AppStateDep,
    settings: SettingsDep,
) -> SimulationResponse | StreamingResponse:
    weights = validation.distribution(body.stage_distribution, field="stageDistribution")
    profiles = validation.stage_keyed(body.stage_profiles, field="stageProfiles")
    service.check_iterations(
        body.iterations,
        1,
        max_iterations=settings.montecarlo_max_iterations,
        max_work=settings.montecarlo_max_compare_work,
    )
    config = service.build_config(body, weights, profiles)
    seed = service.resolve_seed(body.seed)
    if fund_table.prefers_csv(request.headers.get("accept")):
        funds = partial(service.simulate_funds, config, body.iterations, seed)
        simulated = await anyio.to_thread.run_sync(funds, limiter=state.simulation_slots)
        return StreamingResponse(
            fund_table.csv_chunks(simulated), media_type=CSV_CONTENT, headers={SEED_HEADER: str(seed)}
        )
    run = partial(service.run_simulation, config, body.iterations, seed)
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
