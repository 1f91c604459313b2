"""Public JSON schemas of portfolio companies and allocation updates."""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints, WithJsonSchema
from pydantic_core import PydanticCustomError

from fundmodel.apimodel import (
    MAX_ROW_ID,
    NO_NUL_PATTERN,
    ApiModel,
    RawStageName,
    RowId,
    StageWarnings,
    StorableText,
    StrictInteger,
    StrictNumber,
)
from fundmodel.stages import Stage

MAX_ALLOCATION_BATCH = 500
Amount = Annotated[StrictNumber, Field(ge=0, le=1e13)]
CompanyName = Annotated[StorableText, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
EARLIEST_DATE = date(1950, 1, 1)
"""The earliest vintage a fund may have; no company of a fund was financed before it."""
MIN_VALUATION = 1e3
"""$1,000, the engine's smallest round or valuation (engines/montecarlo/profiles.py MIN_DOLLARS)."""


PAST_DATE_RULE = f"must be a date from {EARLIEST_DATE.isoformat()} to today (UTC)"
"""The message of an out-of-range date: it records what has happened, so never a future one."""


def _in_the_past(value: date) -> date:
    if not EARLIEST_DATE <= value <= datetime.now(UTC).date():
        raise PydanticCustomError("date_out_of_range", PAST_DATE_RULE)
    return value


def _not_null(value: object) -> object:
    # Omitting a field keeps it; a required column has no "cleared" state, so null is refused by name.
    if value is None:
        raise PydanticCustomError("not_null", "must not be null (omit the field to keep the stored value)")
    return value


def _iso_date_text(value: object) -> object:
    # FastAPI validates the decoded JSON in Python mode, where a number would pass as a Unix time.
    if not isinstance(value, str | date):
        raise PydanticCustomError("date_type", "must be a date as text, YYYY-MM-DD")
    return value


PastDate = Annotated[
    date,
    BeforeValidator(_iso_date_text),
    AfterValidator(_in_the_past),
    # Like every request text, published as free of NUL and bounded (a date is ten characters).
    WithJsonSchema({"type": "string", "format": "date", "pattern": NO_NUL_PATTERN, "maxLength": 10}),
]
"""A calendar date (``2024-03-31``) from 1950 up to today (UTC)."""
Ownership = Annotated[StrictNumber, Field(gt=0, le=1)]
Valuation = Annotated[StrictNumber, Field(ge=MIN_VALUATION, le=1e13)]


class CompanyStatus(StrEnum):
    """Where the fund's position in a company stands."""

    ACTIVE = "active"
    """Held: the forecast continues it from its stage and valuation."""
    EXITED = "exited"
    """Sold (M&A, IPO, secondary): it contributes its realized proceeds, nothing more."""
    WRITTEN_OFF = "written_off"
    """Failed: it contributes what was recovered (realized proceeds, 0 when null), nothing more."""


class CompanyForecastData(ApiModel):
    """What a forecast needs of a company beyond its stage and the capital invested; all optional."""

    entry_date: PastDate | None = Field(
        default=None,
        description="When the fund first invested. Null: January 1 of the fund's vintage year.",
        examples=["2024-03-31"],
    )
    ownership: Ownership | None = Field(
        default=None,
        description=(
            "The fund's current fully diluted ownership, a fraction (0 < x <= 1). Null: the stage "
            "profile's checkSize / post-money valuation (docs/model.md, Stage profiles)."
        ),
    )
    last_round_post_money: Valuation | None = Field(
        default=None,
        description=(
            "Post-money valuation of the company's last priced round. Null: the stage profile's "
            "post-money (preMoneyValuation + roundSize)."
        ),
    )
    last_round_date: PastDate | None = Field(
        default=None, description="Date of that round. Null: the entry date."
    )
    realized_proceeds: Amount | None = Field(
        default=None,
        description=(
            "What the fund received on exit or write-off; only for an exited or written-off company "
            "(required when exited; null on a written-off one: nothing recovered)."
        ),
    )


class CompanyCreate(CompanyForecastData):
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
    status: CompanyStatus = Field(default=CompanyStatus.ACTIVE, description="Default: active.")


class CompanyUpdate(CompanyForecastData):
    """The fields to change (present and null clears an optional one); the rest are kept."""

    version: RowId = Field(description="The company's version as last read (409 when it changed).")
    invested: Annotated[
        Amount | None,
        BeforeValidator(_not_null),
        WithJsonSchema({"type": "number", "minimum": 0, "maximum": 1e13}),
    ] = Field(default=None, description="Capital invested so far.")
    status: Annotated[
        CompanyStatus | None,
        BeforeValidator(_not_null),
        WithJsonSchema({"type": "string", "enum": [status.value for status in CompanyStatus]}),
    ] = Field(default=None, description="The position's status (`active`, `exited`, `written_off`).")


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
    entry_date: date | None
    ownership: float | None
    last_round_post_money: float | None
    last_round_date: date | None
    status: CompanyStatus
    realized_proceeds: float | None
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
