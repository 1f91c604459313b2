"""Sweep jobs: sweeps, sensitivity (tornado) runs and backsolves, accepted as jobs and polled.

A submission is checked (stage validation, limits, a probe run of the base and the metric) and queued:
202 with the job and ``Location: /api/monte-carlo/jobs/{id}``. The servers' background workers run it;
``GET`` the job for its status, progress and result; ``DELETE`` cancels it (or deletes a finished one).
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Path, Response

from fundmodel.api.dependencies import AppStateDep, PrincipalDep, SettingsDep, StageValidationDep
from fundmodel.api.openapi_docs import plain_responses, validated_responses
from fundmodel.api.state import AppState
from fundmodel.settings import Settings
from fundmodel.sweeps import service
from fundmodel.sweeps.jobs import JobStore
from fundmodel.sweeps.models import BacksolveRequest, SensitivityRequest, SweepJob, SweepRequest

router = APIRouter(prefix="/api/monte-carlo", tags=["monte carlo jobs"])

JOBS_PATH = "/api/monte-carlo/jobs"

JobId = Annotated[
    str, Path(pattern="^[0-9a-f]{32}$", description="The job id from the submission's `Location`.")
]


async def get_job_store(state: AppStateDep) -> JobStore:
    return JobStore(state.engine)


JobStoreDep = Annotated[JobStore, Depends(get_job_store)]


def _submit_responses() -> dict[int | str, dict[str, Any]]:
    responses = validated_responses(202, 429, body=True)
    responses[202]["description"] = "Queued: the job, and where to poll it."
    responses[202]["headers"] = {
        **responses[202]["headers"],
        "Location": {"description": "The job: `/api/monte-carlo/jobs/{id}`.", "schema": {"type": "string"}},
    }
    return responses


async def _queue(
    prepared: service.PreparedJob,
    response: Response,
    principal_id: str,
    state: AppState,
    settings: Settings,
    jobs: JobStore,
) -> SweepJob:
    await anyio.to_thread.run_sync(service.check_capacity, jobs, principal_id, settings)
    await anyio.to_thread.run_sync(service.check_spec, prepared, limiter=state.simulation_slots)
    record = await anyio.to_thread.run_sync(partial(service.submit, jobs, principal_id, prepared, settings))
    response.headers["Location"] = f"{JOBS_PATH}/{record.job_id}"
    return service.job_view(record)


@router.post("/sweeps", status_code=202, response_model=SweepJob, responses=_submit_responses())
async def submit_sweep(
    body: SweepRequest,
    response: Response,
    validation: StageValidationDep,
    principal: PrincipalDep,
    state: AppStateDep,
    settings: SettingsDep,
    jobs: JobStoreDep,
) -> SweepJob:
    """A grid over up to 3 parameters, every point on common random numbers."""
    prepared = service.prepare_sweep(body, validation, settings)
    return await _queue(prepared, response, principal.client_id, state, settings, jobs)


@router.post("/sensitivity", status_code=202, response_model=SweepJob, responses=_submit_responses())
async def submit_sensitivity(
    body: SensitivityRequest,
    response: Response,
    validation: StageValidationDep,
    principal: PrincipalDep,
    state: AppStateDep,
    settings: SettingsDep,
    jobs: JobStoreDep,
) -> SweepJob:
    """One-at-a-time low/high runs around the base, ranked by their effect on the metric (a tornado)."""
    prepared = service.prepare_sensitivity(body, validation, settings)
    return await _queue(prepared, response, principal.client_id, state, settings, jobs)


@router.post("/backsolve", status_code=202, response_model=SweepJob, responses=_submit_responses())
async def submit_backsolve(
    body: BacksolveRequest,
    response: Response,
    validation: StageValidationDep,
    principal: PrincipalDep,
    state: AppStateDep,
    settings: SettingsDep,
    jobs: JobStoreDep,
) -> SweepJob:
    """The parameter value at which the metric reaches the target (bisection on common random numbers)."""
    prepared = service.prepare_backsolve(body, validation, settings)
    return await _queue(prepared, response, principal.client_id, state, settings, jobs)


@router.get("/jobs/{job_id}", response_model=SweepJob, responses=plain_responses(404))
async def get_job(job_id: JobId, principal: PrincipalDep, jobs: JobStoreDep) -> SweepJob:
    """A job of the caller's: status, progress, and its result once finished (404 for anyone else's)."""
    record = await anyio.to_thread.run_sync(service.get_job, jobs, principal.client_id, job_id)
    return service.job_view(record)


def _delete_responses() -> dict[int | str, dict[str, Any]]:
    responses = plain_responses(404)
    responses[200] = {
        "description": "Cancelled (queued, or its server was gone), or, while running, asked to stop "
        "after its current point (`cancelRequested`; poll until `cancelled`)."
    }
    responses[204] = {"description": "The job had finished: it is deleted."}
    return responses


@router.delete("/jobs/{job_id}", response_model=SweepJob, responses=_delete_responses())
async def cancel_job(job_id: JobId, principal: PrincipalDep, jobs: JobStoreDep) -> SweepJob | Response:
    """Cancel a queued or running job of the caller's; a finished one is deleted (204)."""
    outcome = await anyio.to_thread.run_sync(service.cancel_job, jobs, principal.client_id, job_id)
    if outcome.record is None:
        return Response(status_code=204)
    return service.job_view(outcome.record)
