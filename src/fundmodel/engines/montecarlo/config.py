"""The simulation configuration: fund terms, allocation and stage-profile overrides (the API's request body).

Its JSON form is camelCase. Validation is strict and specific: every number must be finite and in range,
the stage distribution goes through :func:`fundmodel.stages.parse_stage_distribution` (aliases normalized,
unknown stages and sum mismatches rejected with their problem codes), and cross-field rules (fund terms
that leave nothing to invest, inconsistent stage profiles) name the fields involved.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import Field, ValidationError, field_validator, model_validator

from fundmodel.engines.montecarlo.profiles import (
    StageProfile,
    StageProfileOverride,
    resolve_stage_profiles,
)
from fundmodel.engines.montecarlo.risk import RiskModel
from fundmodel.engines.montecarlo.schema import CamelModel, Number
from fundmodel.errors import SimulationConfigError
from fundmodel.stages import MatchKind, Stage, normalize_stage, parse_stage_distribution

QUARTERS_PER_YEAR = 4
MAX_FUND_LIFE_YEARS = 25.0
MIN_FUND_SIZE = 1e5
"""$100,000, a fifth of the smallest default check: nothing smaller is a venture fund (and a denormal size
made every ratio of the results infinite or NaN)."""
MAX_FUND_SIZE = 1e13
MIN_INVESTMENT_PERIOD_YEARS = 0.25
"""One quarter: periods are rounded to whole quarters."""

Fraction = Annotated[Number, Field(ge=0.0, le=1.0)]


class FollowOnPolicy(StrEnum):
    """Which graduates get follow-on checks."""

    PRO_RATA = "proRata"
    """Every graduate, at ``followOnParticipation`` x pro-rata (while the reserve lasts)."""
    TOP_QUANTILE = "topQuantile"
    """Only graduates whose observed (noisy) quality is in the top ``followOnTopShare`` of graduates."""
    NONE = "none"
    """No follow-ons: the reserve is never called."""


class SimulationConfig(CamelModel):
    """One fund to simulate. Money in US dollars, rates as fractions (0.02 = 2 %), times in years."""

    fund_size: Annotated[Number, Field(ge=MIN_FUND_SIZE, le=MAX_FUND_SIZE)]
    """Total LP commitments."""
    stage_distribution: dict[Stage, float]
    """Share of the initial-check budget per entry stage (canonical stage -> fraction summing to 1)."""
    fund_life_years: Annotated[Number, Field(ge=1.0, le=MAX_FUND_LIFE_YEARS)] = 10.0
    """Horizon: fees run until it, unrealized companies are valued (NAV) at it."""
    investment_period_years: Annotated[
        Number, Field(ge=MIN_INVESTMENT_PERIOD_YEARS, le=MAX_FUND_LIFE_YEARS)
    ] = 5.0
    """After it the management fee steps down and recycling stops."""
    initial_deployment_years: Annotated[Number, Field(ge=0.0, le=MAX_FUND_LIFE_YEARS)] = 3.0
    """Initial checks are dated uniformly over this many years from the first close (0: all at once)."""
    management_fee_rate: Annotated[Number, Field(ge=0.0, le=0.1)] = 0.02
    """Annual fee on commitments during the investment period."""
    management_fee_step_down_rate: Annotated[Number, Field(ge=0.0, le=0.1)] | None = 0.015
    """Annual fee on commitments after the investment period; ``None`` keeps the full rate."""
    fund_expense_ratio: Annotated[Number, Field(ge=0.0, le=0.2)] = 0.01
    """Fund expenses over the whole life as a fraction of commitments, called evenly each quarter."""
    reserve_ratio: Annotated[Number, Field(ge=0.0, le=0.95)] = 0.5
    """Share of investable capital held back for follow-ons; the rest funds initial checks."""
    follow_on_participation: Annotated[Number, Field(ge=0.0, le=2.0)] = 1.0
    """Follow-on check as a multiple of the fund's pro-rata share of each new round (1 = full pro-rata)."""
    follow_on_policy: FollowOnPolicy = FollowOnPolicy.PRO_RATA
    """Which graduates get follow-on checks (see :class:`FollowOnPolicy`)."""
    follow_on_top_share: Annotated[Number, Field(gt=0.0, le=1.0)] = 0.5
    """For ``topQuantile``: the share of graduates (by observed quality, per stage reached) followed on."""
    risk_model: RiskModel = Field(default_factory=RiskModel)
    """The shared market state and persistent company quality (see :mod:`.risk`)."""
    recycling_ratio: Annotated[Number, Field(ge=0.0, le=0.5)] = 0.0
    """Exit proceeds received during the investment period that may be reinvested, up to this share of
    commitments; recycled cash funds follow-ons before any reserve is called."""
    carry_rate: Annotated[Number, Field(ge=0.0, le=0.5)] = 0.2
    preferred_return: Annotated[Number, Field(ge=0.0, le=0.5)] | None = 0.08
    """Annual hurdle, compounded quarterly; ``None`` or 0 means no preferred return."""
    catch_up: Fraction = 1.0
    """GP share of distributions in the catch-up tier (1 = full catch-up, 0 = no catch-up tier)."""
    stage_profiles: dict[Stage, StageProfileOverride] = Field(default_factory=dict)
    """Per-stage overrides of the default profiles (canonical or alias stage names as keys)."""

    @field_validator("stage_distribution", mode="before")
    @classmethod
    def _parse_distribution(cls, value: object) -> dict[Stage, float]:
        if isinstance(value, Mapping):
            value = {(key.value if isinstance(key, Stage) else key): weight for key, weight in value.items()}
        result = parse_stage_distribution(value)
        if not result.ok:
            errors = [problem for problem in result.problems if problem.code.severity == "error"]
            codes = ", ".join(sorted({problem.code.value for problem in errors}))
            details = "; ".join(problem.message for problem in errors)
            raise ValueError(f"{codes}: {details}")
        if result.total <= 0.0:
            raise ValueError("SUM_MISMATCH: stage distribution weights sum to zero")
        return dict(result.weights)

    @field_validator("stage_profiles", mode="before")
    @classmethod
    def _normalize_profile_keys(cls, value: object) -> object:
        if not isinstance(value, Mapping):
            return value
        normalized: dict[str, object] = {}
        for key, override in value.items():
            match = normalize_stage(key.value if isinstance(key, Stage) else key)
            if match.canonical is None or match.kind is MatchKind.UNKNOWN:
                hint = ", ".join(stage.value for stage in match.suggestions)
                suffix = f" (did you mean: {hint})" if hint else ""
                raise ValueError(f"UNKNOWN_STAGE: {key!r} is not a known stage{suffix}")
            name = match.canonical.value
            if name in normalized:
                raise ValueError(f"stage {name!r} is given more than once")
            normalized[name] = override
        return normalized

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.investment_period_years > self.fund_life_years:
            raise ValueError("investmentPeriodYears: must not exceed fundLifeYears")
        if self.initial_deployment_years > self.investment_period_years:
            raise ValueError("initialDeploymentYears: must not exceed investmentPeriodYears")
        if 0.0 < self.catch_up <= self.carry_rate:
            raise ValueError(
                "catchUp: must be 0 (no catch-up) or greater than carryRate, "
                "otherwise the GP could never catch up"
            )
        if self.investable_capital <= 0.0:
            raise ValueError(
                "managementFeeRate: together with managementFeeStepDownRate and fundExpenseRatio, "
                "the fees leave no capital to invest over fundLifeYears"
            )
        loadings_problem = self.risk_model.loadings_problem()
        if loadings_problem is not None:
            raise ValueError(f"riskModel.{loadings_problem}")
        resolve_stage_profiles(self.stage_profiles)
        return self

    @property
    def horizon_quarters(self) -> int:
        return round(self.fund_life_years * QUARTERS_PER_YEAR)

    @property
    def investment_period_quarters(self) -> int:
        return min(round(self.investment_period_years * QUARTERS_PER_YEAR), self.horizon_quarters)

    @property
    def deployment_quarters(self) -> int:
        return min(
            round(self.initial_deployment_years * QUARTERS_PER_YEAR),
            self.investment_period_quarters,
        )

    def quarterly_fee_rates(self) -> list[float]:
        """Management fee rate (annual) in force in each quarter 0 .. horizon - 1."""
        step_down = self.management_fee_step_down_rate
        after = self.management_fee_rate if step_down is None else step_down
        return [
            self.management_fee_rate if quarter < self.investment_period_quarters else after
            for quarter in range(self.horizon_quarters)
        ]

    @property
    def total_management_fees(self) -> float:
        return sum(self.quarterly_fee_rates()) / QUARTERS_PER_YEAR * self.fund_size

    @property
    def total_expenses(self) -> float:
        return self.fund_expense_ratio * self.fund_size

    @property
    def investable_capital(self) -> float:
        """Commitments less lifetime fees and expenses (recycled proceeds come on top, per fund)."""
        return self.fund_size - self.total_management_fees - self.total_expenses

    def resolved_stage_profiles(self) -> dict[Stage, StageProfile]:
        """Default stage profiles with this config's overrides applied."""
        return resolve_stage_profiles(self.stage_profiles)


def load_config(data: object) -> SimulationConfig:
    """Validate a JSON value as a :class:`SimulationConfig`; raise :class:`SimulationConfigError` if invalid.

    The error's ``errors`` list has one entry per problem with its camelCase ``field`` and ``message``.
    """
    try:
        return SimulationConfig.model_validate(data)
    except ValidationError as error:
        problems = validation_problems(error)
        summary = "; ".join(f"{item['field']}: {item['message']}" for item in problems[:5])
        raise SimulationConfigError(
            f"invalid simulation config: {summary}",
            field=problems[0]["field"] if problems else None,
            errors=problems,
        ) from None


def validation_problems(error: ValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors as ``{"field": "a.b", "message": ...}`` with camelCase field paths."""
    problems: list[dict[str, Any]] = []
    for detail in error.errors(include_url=False):
        location = ".".join(str(part) for part in detail["loc"])
        message = str(detail["msg"]).removeprefix("Value error, ")
        if not location:
            # Cross-field rules say which field they are about as "field.path: reason".
            field, separator, reason = message.partition(": ")
            location, message = (field, reason) if separator and " " not in field else ("", message)
        problems.append({"field": location or "(config)", "message": message, "type": detail["type"]})
    return problems
