"""Public JSON schemas of funds."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from fundmodel.apimodel import ApiModel, RowId, StorableText, StrictInteger, StrictNumber
from fundmodel.engines.montecarlo.config import MAX_FUND_LIFE_YEARS, MIN_INVESTMENT_PERIOD_YEARS

FundName = Annotated[StorableText, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
MIN_COMMITTED_CAPITAL = 0.01
"""One cent: the resolution of the money columns (two decimals), so a positive commitment stays positive."""
MAX_AMOUNT = 1e13

# The engine's terms, with the bounds of engines/montecarlo/config.py SimulationConfig (a test holds the
# two together); null means the engine's default, named in each description.
FeeRate = Annotated[StrictNumber, Field(ge=0, le=0.1)]
ExpenseRatio = Annotated[StrictNumber, Field(ge=0, le=0.2)]
HalfFraction = Annotated[StrictNumber, Field(ge=0, le=0.5)]
FundLifeYears = Annotated[StrictNumber, Field(ge=1, le=MAX_FUND_LIFE_YEARS)]
InvestmentPeriodYears = Annotated[StrictNumber, Field(ge=MIN_INVESTMENT_PERIOD_YEARS, le=MAX_FUND_LIFE_YEARS)]
ReserveRatio = Annotated[StrictNumber, Field(ge=0, le=0.95)]
Amount = Annotated[StrictNumber, Field(ge=0, le=MAX_AMOUNT)]


class FundTerms(ApiModel):
    """The terms a forecast of the fund uses beyond fee and carry; every one optional (null: the default)."""

    management_fee_step_down_rate: FeeRate | None = Field(
        default=None,
        description=(
            "Annual fee on commitments after the investment period. Null: the engine's default, 0.015; "
            "send managementFeeRate to keep the full rate."
        ),
    )
    fund_expense_ratio: ExpenseRatio | None = Field(
        default=None, description="Fund expenses over the whole life, as a share of commitments. Null: 0.01."
    )
    preferred_return: HalfFraction | None = Field(
        default=None,
        description="Annual hurdle (preferred return), compounded quarterly; 0: no hurdle. Null: 0.08.",
    )
    fund_life_years: FundLifeYears | None = Field(
        default=None, description="Fund life in years, from the first close (Jan 1 of vintageYear). Null: 10."
    )
    investment_period_years: InvestmentPeriodYears | None = Field(
        default=None,
        description="Investment period in years (at most fundLifeYears); fees step down after it. Null: 5.",
    )
    reserve_ratio: ReserveRatio | None = Field(
        default=None,
        description="Reserve policy: share of investable capital held back for follow-ons. Null: 0.5.",
    )
    recycling_ratio: HalfFraction | None = Field(
        default=None,
        description=(
            "Exit proceeds received during the investment period that may be reinvested, as a share of "
            "commitments. Null: 0 (no recycling)."
        ),
    )
    strategy_id: RowId | None = Field(
        default=None,
        description=(
            "The portfolio strategy (GET /api/portfolio/strategies) that deploys the not-yet-invested "
            "capital. Null: none chosen yet."
        ),
    )
    paid_in: Amount | None = Field(
        default=None,
        description="Capital called from LPs so far (an actual; at most committedCapital). Null: unknown.",
    )
    distributed: Amount | None = Field(
        default=None, description="Distributions to LPs so far (an actual). Null: unknown."
    )


class FundCreate(FundTerms):
    name: FundName = Field(description="Unique fund name.", examples=["Acme Ventures II"])
    vintage_year: StrictInteger = Field(ge=1950, le=2100, examples=[2025])
    committed_capital: StrictNumber = Field(
        ge=MIN_COMMITTED_CAPITAL, le=MAX_AMOUNT, description="LP commitments, in currency units."
    )
    management_fee_rate: StrictNumber = Field(
        ge=0, le=0.1, description="Annual fee on commitments (during the investment period)."
    )
    carried_interest_rate: StrictNumber = Field(ge=0, le=0.5, description="GP share of profits.")


class Fund(ApiModel):
    id: int
    name: str
    vintage_year: int
    committed_capital: float
    management_fee_rate: float
    carried_interest_rate: float
    management_fee_step_down_rate: float | None
    fund_expense_ratio: float | None
    preferred_return: float | None
    fund_life_years: float | None
    investment_period_years: float | None
    reserve_ratio: float | None
    recycling_ratio: float | None
    strategy_id: int | None
    paid_in: float | None
    distributed: float | None
    created_at: datetime


class FundPage(ApiModel):
    items: list[Fund]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at the end.")
