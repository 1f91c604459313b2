"""Sweep jobs: requests checked and turned into stored job specs, the per-client bound, and running a spec.

At submission (in the request, with the caller's stage-validation mode) everything a job needs is decided:
the base's stage fields, the stage names inside varied paths and every point's varied stage distribution
go through the stage-validation layer exactly as simulate's fields do. Under enforce, points whose
varied stage weights are rejected (e.g. no longer summing to 1) are listed, one entry per point, in one
400; under warn/off each distinct point distribution is renormalized by the layer and its warnings are
stored, to be attached to that point's result. The stored spec is then self-contained: a worker in any
process runs it later without the request (and the mode changing meanwhile does not change the job).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from fundmodel.engines.sweep import (
    BacksolveSpec,
    Parameter,
    PointRunner,
    SensitivityParameter,
    SensitivitySpec,
    SweepSpec,
    expand_grid,
    parse_values,
    run_backsolve,
    run_sensitivity,
    run_sweep,
    validate_sweep,
)
from fundmodel.engines.sweep.parameters import check_values
from fundmodel.errors import (
    InvalidInputError,
    NotFoundError,
    TooManyJobsError,
)
from fundmodel.settings import Settings
from fundmodel.simulations.service import config_body, resolve_seed
from fundmodel.sweeps.jobs import CancelOutcome, JobRecord, JobStore
from fundmodel.sweeps.models import (
    BacksolveRequest,
    JobProgress,
    JobRunOptions,
    ParameterRange,
    SensitivityRequest,
    SweepBase,
    SweepJob,
    SweepRequest,
)
from fundmodel.sweeps.point_stages import (
    DISTRIBUTION_FIELD,
    RequestStageValidation,
    canonical_path,
    decide_point_stages,
    distribution_at,
    is_distribution,
    point_preparer,
    renormalizes,
)

__all__ = [
    "JOBS_RETRY_AFTER_SECONDS",
    "PreparedJob",
    "cancel_job",
    "check_capacity",
    "check_spec",
    "get_job",
    "job_view",
    "prepare_backsolve",
    "prepare_sensitivity",
    "prepare_sweep",
    "run_job",
    "submit",
]

JOBS_RETRY_AFTER_SECONDS = 10
"""Retry-After of a 429: about the time a small job takes, after which a slot has likely freed up."""

AnySpec = SweepSpec | SensitivitySpec | BacksolveSpec
_Value = TypeVar("_Value")


@dataclass(frozen=True, slots=True)
class PreparedJob:
    """A checked request: the job's kind, the spec it runs, what is stored and the warnings to answer."""

    kind: str
    spec: AnySpec
    stored: dict[str, Any]
    points_total: int
    warnings: list[dict[str, Any]]


def prepare_sweep(body: SweepRequest, validation: RequestStageValidation, settings: Settings) -> PreparedJob:
    base = _base(body.base, validation)
    _check_iterations(body, settings)
    parameters = tuple(
        Parameter(
            canonical_path(parameter.path, validation, f"parameters[{position}].path"),
            _values(parameter.values, f"parameters[{position}].values"),
        )
        for position, parameter in enumerate(body.parameters)
    )
    spec = SweepSpec(
        base=base,
        parameters=parameters,
        metric=body.metric,
        iterations=body.iterations,
        seed=resolve_seed(body.seed),
        renormalize_stages=renormalizes(validation),
        max_work=settings.sweep_max_work,
    )
    varies_stages = any(is_distribution(parameter.path) for parameter in parameters)
    points = (
        [(f"points[{point.index}]", point.body.get(DISTRIBUTION_FIELD)) for point in expand_grid(spec)]
        if varies_stages
        else []
    )
    point_stages = decide_point_stages(points, validation)
    stored = {
        "base": base,
        "parameters": [
            {"path": parameter.path, "values": list(parameter.values)} for parameter in parameters
        ],
        **_run_options(spec),
        "pointStages": point_stages,
    }
    return PreparedJob("sweep", spec, stored, spec.point_count, list(validation.warnings))


def prepare_sensitivity(
    body: SensitivityRequest, validation: RequestStageValidation, settings: Settings
) -> PreparedJob:
    base = _base(body.base, validation)
    _check_iterations(body, settings)
    parameters = tuple(
        _range(parameter, validation, f"parameters[{position}]")
        for position, parameter in enumerate(body.parameters)
    )
    spec = SensitivitySpec(
        base=base,
        parameters=parameters,
        metric=body.metric,
        iterations=body.iterations,
        seed=resolve_seed(body.seed),
        renormalize_stages=renormalizes(validation),
        max_work=settings.sweep_max_work,
    )
    points = [
        (f"parameters[{position}].{end}", distribution_at(base, parameter.path, value))
        for position, parameter in enumerate(parameters)
        if is_distribution(parameter.path)
        for end, value in (("low", parameter.low), ("high", parameter.high))
    ]
    stored = {
        "base": base,
        "parameters": [
            {"path": parameter.path, "low": parameter.low, "high": parameter.high} for parameter in parameters
        ],
        **_run_options(spec),
        "pointStages": decide_point_stages(points, validation),
    }
    return PreparedJob("sensitivity", spec, stored, spec.point_count, list(validation.warnings))


def prepare_backsolve(
    body: BacksolveRequest, validation: RequestStageValidation, settings: Settings
) -> PreparedJob:
    base = _base(body.base, validation)
    _check_iterations(body, settings)
    parameter = _range(body.parameter, validation, "parameter")
    spec = BacksolveSpec(
        base=base,
        path=parameter.path,
        low=parameter.low,
        high=parameter.high,
        metric=body.metric,
        target=body.target,
        iterations=body.iterations,
        seed=resolve_seed(body.seed),
        tolerance=body.tolerance,
        max_steps=body.max_steps,
        renormalize_stages=renormalizes(validation),
        max_work=settings.sweep_max_work,
    )
    # The bisection's values are not known in advance: its two ends are checked now (under enforce a
    # varied weight makes the sum miss 1 everywhere but at one value, so the ends decide), and under
    # warn/off the core renormalizes each step's weights with a STAGE_WEIGHTS_RENORMALIZED warning.
    if is_distribution(parameter.path):
        ends = [
            (f"parameter.{end}", distribution_at(base, parameter.path, value))
            for end, value in (("low", parameter.low), ("high", parameter.high))
        ]
        decide_point_stages(ends, validation)
    stored = {
        "base": base,
        "path": parameter.path,
        "low": parameter.low,
        "high": parameter.high,
        "target": body.target,
        "tolerance": body.tolerance,
        "maxSteps": body.max_steps,
        **_run_options(spec),
        "pointStages": [],
    }
    return PreparedJob("backsolve", spec, stored, spec.point_count, list(validation.warnings))


def check_spec(prepared: PreparedJob) -> None:
    """What the request's shape cannot show (a valid base, a known metric): one engine-minimum probe run."""
    validate_sweep(prepared.spec)


def check_capacity(store: JobStore, client_id: str, settings: Settings) -> None:
    """429 before the probe run when the client is at its bound already (``submit`` checks atomically)."""
    if store.active_count(client_id) >= settings.sweep_max_active_jobs_per_client:
        raise _too_many_jobs(settings)


def submit(store: JobStore, client_id: str, prepared: PreparedJob, settings: Settings) -> JobRecord:
    """Queue the job, or raise 429 TOO_MANY_JOBS when the client is at its bound of active jobs."""
    record = store.submit(
        client_id=client_id,
        kind=prepared.kind,
        request=prepared.stored,
        warnings=prepared.warnings,
        points_total=prepared.points_total,
        max_active=settings.sweep_max_active_jobs_per_client,
    )
    if record is None:
        raise _too_many_jobs(settings)
    return record


def _too_many_jobs(settings: Settings) -> TooManyJobsError:
    limit = settings.sweep_max_active_jobs_per_client
    return TooManyJobsError(
        f"this client already has {limit} queued or running job(s), the most it may have on this "
        "server; wait for one to finish or cancel one (DELETE /api/monte-carlo/jobs/{id})",
        retry_after_seconds=JOBS_RETRY_AFTER_SECONDS,
    )


def run_job(
    kind: str,
    stored: Mapping[str, Any],
    *,
    progress: Callable[[int, int], None],
    should_stop: Callable[[], bool],
    runner: PointRunner | None = None,
) -> dict[str, Any]:
    """Run a stored job spec with the core; the result's JSON (``cancelled`` true when stopped early).

    ``runner`` simulates the points (default: local threads; see :func:`fundmodel.scaleout.point_runner`)."""
    prepare = point_preparer(stored.get("pointStages", []))
    options: dict[str, Any] = {
        "metric": stored["metric"],
        "iterations": stored["iterations"],
        "seed": stored["seed"],
        "renormalize_stages": stored["renormalizeStages"],
        "max_work": stored["maxWork"],
    }
    result: Any
    if kind == "sweep":
        sweep = SweepSpec(
            base=stored["base"],
            parameters=tuple(Parameter(item["path"], tuple(item["values"])) for item in stored["parameters"]),
            **options,
        )
        result = run_sweep(
            sweep, progress=progress, should_stop=should_stop, prepare_point=prepare, runner=runner
        )
    elif kind == "sensitivity":
        sensitivity = SensitivitySpec(
            base=stored["base"],
            parameters=tuple(
                SensitivityParameter(item["path"], item["low"], item["high"]) for item in stored["parameters"]
            ),
            **options,
        )
        result = run_sensitivity(
            sensitivity, progress=progress, should_stop=should_stop, prepare_point=prepare, runner=runner
        )
    else:
        backsolve = BacksolveSpec(
            base=stored["base"],
            path=stored["path"],
            low=stored["low"],
            high=stored["high"],
            target=stored["target"],
            tolerance=stored["tolerance"],
            max_steps=stored["maxSteps"],
            **options,
        )
        result = run_backsolve(
            backsolve, progress=progress, should_stop=should_stop, prepare_point=prepare, runner=runner
        )
    body: dict[str, Any] = result.to_json()
    return body


def result_cancelled(result: Mapping[str, Any]) -> bool:
    """Whether a result is the partial result of a run stopped by a cancellation."""
    return bool(result.get("cancelled")) or result.get("status") == "cancelled"


# -- request checks ------------------------------------------------------------------------------------


def _base(base: SweepBase, validation: RequestStageValidation) -> dict[str, Any]:
    weights = validation.distribution(base.stage_distribution, field="base.stageDistribution")
    profiles = validation.stage_keyed(base.stage_profiles, field="base.stageProfiles")
    return config_body(base, weights, profiles)


def _check_iterations(body: JobRunOptions, settings: Settings) -> None:
    if body.iterations > settings.montecarlo_max_iterations:
        raise InvalidInputError(
            f"iterations must be at most {settings.montecarlo_max_iterations:,} per point on this server "
            f"(asked for {body.iterations:,})",
            code="ITERATIONS_LIMIT",
            field="iterations",
        )


def _values(values: list[float] | str, field: str) -> tuple[float, ...]:
    return parse_values(values, field=field) if isinstance(values, str) else check_values(values, field=field)


def _range(parameter: ParameterRange, validation: RequestStageValidation, where: str) -> SensitivityParameter:
    low, high = check_values([parameter.low, parameter.high], field=f"{where}.low/high")
    return SensitivityParameter(canonical_path(parameter.path, validation, f"{where}.path"), low, high)


def _run_options(spec: AnySpec) -> dict[str, Any]:
    return {
        "metric": spec.metric,
        "iterations": spec.iterations,
        "seed": spec.seed,
        "renormalizeStages": spec.renormalize_stages,
        "maxWork": spec.max_work,
    }


def job_view(record: JobRecord) -> SweepJob:
    """A stored job as its client sees it."""
    return SweepJob(
        id=record.job_id,
        kind=record.kind,
        status=record.status,
        progress=JobProgress(points_done=record.points_done, points_total=record.points_total),
        cancel_requested=record.cancel_requested,
        attempts=record.attempts,
        created_at=record.created_at,
        started_at=record.started_at,
        finished_at=record.finished_at,
        warnings=record.warnings,
        result=record.result,
        error=record.error,
    )


def get_job(store: JobStore, client_id: str, job_id: str) -> JobRecord:
    """The client's job, or 404 (also for another client's job: its existence is not revealed)."""
    record = store.get(client_id, job_id)
    if record is None:
        raise NotFoundError(f"no job {job_id} of this client", code="JOB_NOT_FOUND")
    return record


def cancel_job(store: JobStore, client_id: str, job_id: str) -> CancelOutcome:
    outcome = store.cancel(client_id, job_id)
    if outcome is None:
        raise NotFoundError(f"no job {job_id} of this client", code="JOB_NOT_FOUND")
    return outcome
