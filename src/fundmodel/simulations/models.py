"""Public JSON schemas of the Monte Carlo endpoints.

The fund terms are exactly the engine's :class:`SimulationConfig` fields (copied, so the API documents
them), except that ``stageDistribution`` and the keys of ``stageProfiles`` are taken raw: they go through
the stage-validation layer first, and the engine then receives the decisions' canonical stages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field, Strict, StringConstraints, create_model

from fundmodel.apimodel import (
    INTEGRAL_FLOAT_AS_INT,
    ApiModel,
    RawStageDistribution,
    StageWarnings,
    StorableText,
    StrictInteger,
)
from fundmodel.engines.montecarlo import MIN_ITERATIONS, SimulationConfig, StageProfileOverride

DEFAULT_ITERATIONS = 10_000
MAX_ALTERNATIVES = 10

MAX_SEED = 2**53 - 1
"""The largest seed the API takes (and draws): every JSON client holds it exactly, and JSON Schema
validators, which compare numbers as doubles, agree with this bound (2**63 - 1 rounds up to 2**63)."""
_RAW_FIELDS = {"stage_distribution", "stage_profiles"}

_DISTRIBUTION_DESCRIPTION = (
    "Share of the initial-check budget per entry stage: stage name -> fraction, summing to 1 "
    "within 1e-3. Validated by the stage-validation layer (see the mode table)."
)

if TYPE_CHECKING:

    class FundTerms(ApiModel):
        # The one field routes read directly (the rest only reaches the engine through model_dump).
        stage_profiles: dict[str, StageProfileOverride]

else:
    FundTerms = create_model(
        "FundTerms",
        __base__=ApiModel,
        __doc__="Fund terms of a simulation (every field of the engine's configuration).",
        stage_profiles=(
            dict[str, StageProfileOverride],
            Field(
                default_factory=dict,
                description=(
                    "Per-stage overrides of the default stage profiles, keyed by stage name. Keys go "
                    "through the stage-validation layer (see the mode table): aliases are normalized, "
                    "an unknown key is ignored with a warning in off/warn (the default profile "
                    "applies) and rejected with 400 INVALID_STAGE under enforce; two keys naming the "
                    "same stage are a 422 DUPLICATE_STAGE in every mode."
                ),
            ),
        ),
        **{
            name: (info.annotation, info)
            for name, info in SimulationConfig.model_fields.items()
            if name not in _RAW_FIELDS
        },
    )


class RunOptions(ApiModel):
    iterations: StrictInteger = Field(
        default=DEFAULT_ITERATIONS,
        ge=MIN_ITERATIONS,
        le=2_000_000,
        description=(
            "Simulated funds. The server's limit (default 100,000 per simulate request, and "
            "iterations x alternatives <= 300,000 per compare request) keeps a request to seconds; "
            "beyond it the answer is 422 ITERATIONS_LIMIT."
        ),
    )
    seed: Annotated[int, Strict(), Field(ge=0, le=MAX_SEED), INTEGRAL_FLOAT_AS_INT] | None = Field(
        default=None,
        description="Random seed; the same inputs and seed give identical results. Drawn if omitted.",
    )


class SimulateRequest(RunOptions, FundTerms):
    stage_distribution: RawStageDistribution = Field(
        description=_DISTRIBUTION_DESCRIPTION, examples=[{"seed": 0.6, "series_a": 0.4}]
    )


class Alternative(ApiModel):
    label: Annotated[StorableText, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    stage_distribution: RawStageDistribution = Field(description=_DISTRIBUTION_DESCRIPTION)


class CompareRequest(RunOptions, FundTerms):
    alternatives: list[Alternative] = Field(
        min_length=1,
        max_length=MAX_ALTERNATIVES,
        description="Up to 10 stage distributions for the same fund, run on common random numbers.",
    )


class SimulationResponse(ApiModel):
    result: dict[str, Any] = Field(
        description="The engine's results (netTvpi, dpi, netIrr, grossMoic, probTvpiAtLeast, ...)."
    )
    warnings: StageWarnings = Field(default_factory=list)


class ComparedResult(ApiModel):
    label: str
    result: dict[str, Any]


class CompareResponse(ApiModel):
    results: list[ComparedResult] = Field(description="One per alternative, in request order.")
    warnings: StageWarnings = Field(default_factory=list)
