"""Public JSON schemas of funds."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from fundmodel.apimodel import ApiModel, StorableText, StrictInteger, StrictNumber

FundName = Annotated[StorableText, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
MIN_COMMITTED_CAPITAL = 0.01
"""One cent: the resolution of the money columns (two decimals), so a positive commitment stays positive."""


class FundCreate(ApiModel):
    name: FundName = Field(description="Unique fund name.", examples=["Acme Ventures II"])
    vintage_year: StrictInteger = Field(ge=1950, le=2100, examples=[2025])
    committed_capital: StrictNumber = Field(
        ge=MIN_COMMITTED_CAPITAL, le=1e13, description="LP commitments, in currency units."
    )
    management_fee_rate: StrictNumber = Field(ge=0, le=0.1, description="Annual fee on commitments.")
    carried_interest_rate: StrictNumber = Field(ge=0, le=0.5, description="GP share of profits.")


class Fund(ApiModel):
    id: int
    name: str
    vintage_year: int
    committed_capital: float
    management_fee_rate: float
    carried_interest_rate: float
    created_at: datetime


class FundPage(ApiModel):
    items: list[Fund]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at the end.")
