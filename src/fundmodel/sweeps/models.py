"""Public JSON schemas of the sweep jobs: sweeps, sensitivity (tornado) runs and backsolves.

The ``base`` of every request is the simulate body without ``iterations`` and ``seed`` (those are the
job's); its ``stageDistribution`` and ``stageProfiles`` keys go through the stage-validation layer, as do
the stage names inside varied paths and every point's varied stage distribution (see docs/api.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, Strict, StringConstraints

from fundmodel.apimodel import (
    INTEGRAL_FLOAT_AS_INT,
    ApiModel,
    RawStageDistribution,
    StageWarnings,
    StorableText,
    StrictInteger,
    StrictNumber,
)
from fundmodel.engines.montecarlo import MIN_ITERATIONS
from fundmodel.simulations.models import DEFAULT_ITERATIONS, MAX_SEED, FundTerms

MAX_PARAMETERS = 3
MAX_SENSITIVITY_PARAMETERS = 50
MAX_LISTED_VALUES = 1_000
DEFAULT_BACKSOLVE_STEPS = 30

ParameterPath = Annotated[
    StorableText, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
]
MetricPath = Annotated[StorableText, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
ValueRange = Annotated[
    StorableText,
    StringConstraints(strip_whitespace=True, min_length=3, max_length=100),
]

JobKind = Literal["sweep", "sensitivity", "backsolve"]
JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class SweepBase(FundTerms):
    """The fund a job varies: the simulate body without ``iterations`` and ``seed``."""

    stage_distribution: RawStageDistribution = Field(
        description=(
            "Share of the initial-check budget per entry stage, validated by the stage-validation layer "
            "as in simulate."
        ),
        examples=[{"seed": 0.6, "series_a": 0.4}],
    )


class JobRunOptions(ApiModel):
    iterations: StrictInteger = Field(
        default=DEFAULT_ITERATIONS,
        ge=MIN_ITERATIONS,
        le=2_000_000,
        description=(
            "Simulated funds per point (every point uses the same random streams). At most the simulate "
            "limit per point, and points x iterations at most the server's job limit (default "
            "5,000,000); beyond them the answer is 422 ITERATIONS_LIMIT or SWEEP_LIMIT."
        ),
    )
    seed: Annotated[int, Strict(), Field(ge=0, le=MAX_SEED), INTEGRAL_FLOAT_AS_INT] | None = Field(
        default=None, description="Random seed shared by every point; drawn if omitted (and reported)."
    )
    metric: MetricPath = Field(
        description="A number of the simulate result, as a dotted path: netTvpi.p50, dpi.mean, ...",
        examples=["netTvpi.p50"],
    )


class VariedParameter(ApiModel):
    path: ParameterPath = Field(
        description=(
            "A numeric field of the base as a dotted camelCase path: reserveRatio, "
            "stageDistribution.seed, stageProfiles.series_a.exitMultipleMedian, ..."
        ),
        examples=["reserveRatio"],
    )
    values: list[StrictNumber] | ValueRange = Field(
        description="The values: a list, or 'start:stop:count' (inclusive, count >= 2).",
        examples=["0:0.8:9"],
    )


class ParameterRange(ApiModel):
    path: ParameterPath = Field(description="A numeric field of the base, as in a sweep.")
    low: StrictNumber
    high: StrictNumber


class SweepRequest(JobRunOptions):
    base: SweepBase
    parameters: list[VariedParameter] = Field(
        min_length=1,
        max_length=MAX_PARAMETERS,
        description="Up to 3 varied parameters; the sweep runs the cartesian product of their values.",
    )


class SensitivityRequest(JobRunOptions):
    base: SweepBase
    parameters: list[ParameterRange] = Field(
        min_length=1,
        max_length=MAX_SENSITIVITY_PARAMETERS,
        description="Each parameter run at its low and its high value, the others at the base (a tornado).",
    )


class BacksolveRequest(JobRunOptions):
    base: SweepBase
    parameter: ParameterRange = Field(description="The parameter to solve for, and the interval to search.")
    target: StrictNumber = Field(description="The metric value to reach.")
    tolerance: StrictNumber = Field(default=0.01, gt=0, description="How close to the target is reached.")
    max_steps: StrictInteger = Field(
        default=DEFAULT_BACKSOLVE_STEPS, ge=1, le=60, description="Bisection steps at most."
    )


class JobProgress(ApiModel):
    points_done: int = Field(description="Points (configurations) finished so far.")
    points_total: int = Field(description="Points the job runs (a backsolve: its most bisection steps + 2).")


class SweepJob(ApiModel):
    """A job's state; ``result`` once it succeeded (or the partial result of a cancelled one)."""

    id: str = Field(description="The job id (also the last segment of `Location`).")
    kind: JobKind
    status: JobStatus = Field(
        description="queued -> running -> succeeded | failed | cancelled (see docs/api.md)."
    )
    progress: JobProgress
    cancel_requested: bool = Field(description="DELETE was called while it ran: it stops after this point.")
    attempts: int = Field(description="Times a server started it (more than 1: a server stopped mid-job).")
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    warnings: StageWarnings = Field(default_factory=list)
    result: dict[str, Any] | None = Field(
        default=None, description="The sweep, sensitivity or backsolve result (see docs/api.md)."
    )
    error: dict[str, Any] | None = Field(
        default=None, description="Why it failed: a problem-like object with code, title and detail."
    )
