"""Public JSON schemas of portfolio companies and allocation updates."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from fundmodel.apimodel import (
    MAX_ROW_ID,
    ApiModel,
    RawStageName,
    StageWarnings,
    StorableText,
    StrictInteger,
    StrictNumber,
)
from fundmodel.stages import Stage

MAX_ALLOCATION_BATCH = 500
Amount = Annotated[StrictNumber, Field(ge=0, le=1e13)]
CompanyName = Annotated[StorableText, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class CompanyCreate(ApiModel):
    name: CompanyName
    stage: RawStageName = Field(
        description=(
            "Investment stage: a canonical name (`series_a`) or, while deprecated spellings are "
            "accepted, an alias (`Series A`). See GET /api/deprecations."
        ),
        examples=["series_a"],
    )
    invested: Amount = Field(description="Capital invested so far.")
    reserve_allocation: Amount = Field(default=0.0, description="Follow-on reserve set aside.")


class Company(ApiModel):
    id: int
    fund_id: int
    name: str
    stage: str = Field(description="The stage as stored (legacy rows may hold an old spelling).")
    canonical_stage: Stage | None = Field(
        description="The canonical stage the stored value normalizes to; null when unknown."
    )
    invested: float
    reserve_allocation: float
    version: int = Field(description="Increases on every change; send it back to update.")
    created_at: datetime
    updated_at: datetime


class CompanyCreated(Company):
    warnings: StageWarnings = Field(default_factory=list)


class CompanyPage(ApiModel):
    items: list[Company]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at the end.")
    warnings: StageWarnings = Field(default_factory=list)


class AllocationChange(ApiModel):
    company_id: StrictInteger = Field(ge=1, le=MAX_ROW_ID)
    reserve_allocation: Amount
    version: StrictInteger = Field(ge=1, le=MAX_ROW_ID, description="The company's version as last read.")


class AllocationBatch(ApiModel):
    allocations: list[AllocationChange] = Field(min_length=1, max_length=MAX_ALLOCATION_BATCH)


class AllocationResult(ApiModel):
    items: list[Company] = Field(description="The updated companies, with their new versions.")
