"""Public JSON schemas of portfolio strategies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from fundmodel.apimodel import (
    ApiModel,
    RawStageDistribution,
    RowId,
    StageWarnings,
    StorableText,
)

StrategyName = Annotated[StorableText, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]

_ALLOCATION_DESCRIPTION = (
    "Stage name -> weight (fractions summing to 1 within 1e-3). Canonical names are snake_case "
    "(`seed`, `series_a`, ...); deprecated spellings are normalized and flagged. Stored canonical."
)


class StrategyCreate(ApiModel):
    name: StrategyName
    stage_allocation: RawStageDistribution = Field(
        description=_ALLOCATION_DESCRIPTION, examples=[{"seed": 0.5, "series_a": 0.5}]
    )


class StrategyReplace(StrategyCreate):
    version: RowId | None = Field(
        default=None,
        description="If given, the update applies only when the stored version still matches (409).",
    )


class Strategy(ApiModel):
    id: int
    name: str
    stage_allocation: dict[str, float] = Field(
        description="Canonical stage -> weight, in canonical stage order."
    )
    version: int
    created_at: datetime
    updated_at: datetime


class StrategyWritten(Strategy):
    warnings: StageWarnings = Field(default_factory=list)


class StrategyPage(ApiModel):
    items: list[Strategy]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at the end.")
