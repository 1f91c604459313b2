"""Per-stage company behaviour: the stage profile, its public-data defaults and per-request overrides.

Every default below is documented, with its public source, in docs/model.md ("Stage profiles").
Money is in US dollars; times are years; rates are per round (the chance a company at this stage raises
its next round, or exits, before it fails).
"""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import Field, model_validator

from fundmodel.engines.montecarlo.schema import CamelModel, Number
from fundmodel.stages import STAGE_ORDER, Stage

MIN_YEARS = 0.25
"""One quarter: times are rounded to whole quarters (at least one), so a shorter mean means nothing."""
MAX_YEARS = 20.0
MIN_DOLLARS = 1e3
"""$1,000: a smaller round, valuation or check is no venture deal, and a denormal one would make the
number of companies (budget / check size) infinite."""
MAX_DOLLARS = 1e13
MIN_MULTIPLE = 0.01
"""An exit at 1 % of the post-money valuation; anything smaller is a failure, modelled by the rates."""
MAX_MULTIPLE = 1e4

Rate = Annotated[Number, Field(ge=0.0, le=1.0)]
Years = Annotated[Number, Field(ge=MIN_YEARS, le=MAX_YEARS)]
TimingSigma = Annotated[Number, Field(ge=0.0, le=2.0)]
Dollars = Annotated[Number, Field(ge=MIN_DOLLARS, le=MAX_DOLLARS)]
Multiple = Annotated[Number, Field(ge=MIN_MULTIPLE, le=MAX_MULTIPLE)]
Sigma = Annotated[Number, Field(ge=0.0, le=5.0)]

LAST_STAGE = STAGE_ORDER[-1]


class StageProfile(CamelModel):
    """How a company behaves while at one stage, and what the fund pays to enter at it."""

    graduation_rate: Rate
    """Probability of raising the next stage's round (must be 0 for the last stage)."""
    exit_rate: Rate
    """Probability of an exit (M&A or IPO) from this stage; failure is 1 - graduation - exit."""
    years_to_graduate: Years
    """Median time from this stage's round to the next round."""
    years_to_exit: Years
    """Median time from this stage's round to an exit."""
    years_to_fail: Years
    """Median time from this stage's round to a failure (failures run on their own clock)."""
    timing_sigma: TimingSigma = 0.7
    """Log-space spread of every delay (lognormal around the medians, rounded to whole quarters, at least
    one); 0 makes them fixed. 0.7 puts the 75th percentile at 1.6x the median (Carta: seed to Series A
    median 2.1 years, 75th percentile 3.4)."""
    failure_recovery_rate: Rate = 0.2
    """Share of failures that end in a distressed sale returning something, rather than nothing."""
    failure_recovery_max: Rate = 0.3
    """A distressed sale returns a uniform share, up to this, of the capital invested (the preferred
    shares' 1x liquidation preference is paid first)."""
    round_size: Dollars
    """Size of this stage's priced round (new money from all investors)."""
    pre_money_valuation: Dollars
    """Pre-money valuation of this stage's round; post-money = pre-money + round size."""
    check_size: Dollars
    """The fund's initial check when it enters a company at this stage (at most the round size)."""
    exit_multiple_median: Multiple
    """Median exit value as a multiple of this stage's post-money valuation (lognormal)."""
    exit_multiple_sigma: Sigma
    """Log-space standard deviation of the exit multiple: the heaviness of the tail."""
    exit_multiple_cap: Multiple | None = None
    """Optional cap on the exit multiple (a truncated tail); ``None`` leaves the lognormal uncapped."""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        total = self.graduation_rate + self.exit_rate
        if total > 1.0 + 1e-12:
            raise ValueError(
                f"exitRate: graduationRate + exitRate = {total:.6g} exceeds 1 "
                "(the failure rate would be negative)"
            )
        if self.check_size > self.round_size:
            raise ValueError(
                f"checkSize: {self.check_size:.6g} exceeds roundSize {self.round_size:.6g} "
                "(the fund cannot buy more than the whole round)"
            )
        if self.exit_multiple_cap is not None and self.exit_multiple_cap < self.exit_multiple_median:
            raise ValueError("exitMultipleCap: must be at least exitMultipleMedian")
        return self

    @property
    def post_money_valuation(self) -> float:
        return self.pre_money_valuation + self.round_size

    @property
    def failure_rate(self) -> float:
        return max(0.0, 1.0 - self.graduation_rate - self.exit_rate)


class StageProfileOverride(CamelModel):
    """A partial stage profile: the fields given replace the defaults, the rest are kept."""

    graduation_rate: Rate | None = None
    exit_rate: Rate | None = None
    years_to_graduate: Years | None = None
    years_to_exit: Years | None = None
    years_to_fail: Years | None = None
    timing_sigma: TimingSigma | None = None
    failure_recovery_rate: Rate | None = None
    failure_recovery_max: Rate | None = None
    round_size: Dollars | None = None
    pre_money_valuation: Dollars | None = None
    check_size: Dollars | None = None
    exit_multiple_median: Multiple | None = None
    exit_multiple_sigma: Sigma | None = None
    exit_multiple_cap: Multiple | None = None


def _profile(
    graduation: float,
    exit_rate: float,
    years: tuple[float, float, float],
    round_size_m: float,
    pre_money_m: float,
    check_m: float,
    median: float,
    sigma: float,
    recovery: tuple[float, float],
) -> StageProfile:
    years_to_graduate, years_to_exit, years_to_fail = years
    recovery_rate, recovery_max = recovery
    return StageProfile(
        graduation_rate=graduation,
        exit_rate=exit_rate,
        years_to_graduate=years_to_graduate,
        years_to_exit=years_to_exit,
        years_to_fail=years_to_fail,
        failure_recovery_rate=recovery_rate,
        failure_recovery_max=recovery_max,
        round_size=round_size_m * 1e6,
        pre_money_valuation=pre_money_m * 1e6,
        check_size=check_m * 1e6,
        exit_multiple_median=median,
        exit_multiple_sigma=sigma,
        exit_multiple_cap=100.0,
    )


def default_stage_profiles() -> dict[Stage, StageProfile]:
    """The documented defaults (docs/model.md, "Stage profiles"), built fresh on each call."""
    return {
        Stage.PRE_SEED: _profile(0.50, 0.04, (1.5, 3.0, 2.0), 1.0, 9.0, 0.5, 1.5, 1.4, (0.15, 0.3)),
        Stage.SEED: _profile(0.40, 0.10, (2.1, 3.5, 2.5), 3.5, 14.0, 1.25, 1.4, 1.4, (0.2, 0.3)),
        Stage.SERIES_A: _profile(0.42, 0.14, (2.5, 3.5, 3.0), 12.0, 45.0, 3.0, 1.2, 1.4, (0.25, 0.4)),
        Stage.SERIES_B: _profile(0.30, 0.35, (2.5, 3.0, 3.0), 25.0, 110.0, 5.0, 1.4, 1.5, (0.6, 0.5)),
        Stage.SERIES_C: _profile(0.30, 0.40, (2.5, 3.0, 3.0), 40.0, 220.0, 8.0, 1.4, 1.15, (0.65, 0.6)),
        Stage.SERIES_D: _profile(0.30, 0.45, (2.5, 2.5, 3.0), 60.0, 400.0, 10.0, 1.4, 1.0, (0.7, 0.6)),
        Stage.GROWTH: _profile(0.25, 0.60, (2.5, 2.5, 3.0), 100.0, 800.0, 15.0, 1.6, 1.05, (0.7, 0.7)),
        Stage.LATE_STAGE: _profile(0.0, 0.80, (2.0, 2.0, 3.0), 150.0, 1500.0, 20.0, 1.6, 0.9, (0.7, 0.7)),
    }


def resolve_stage_profiles(
    overrides: dict[Stage, StageProfileOverride],
) -> dict[Stage, StageProfile]:
    """Defaults with ``overrides`` applied; ``ValueError`` names the stage of an inconsistent one."""
    profiles = default_stage_profiles()
    for stage, override in overrides.items():
        changes = override.model_dump(exclude_none=True)
        if not changes and "exit_multiple_cap" not in override.model_fields_set:
            continue
        merged = profiles[stage].model_dump()
        merged.update(changes)
        if "exit_multiple_cap" in override.model_fields_set:
            merged["exit_multiple_cap"] = override.exit_multiple_cap
        try:
            profiles[stage] = StageProfile.model_validate(merged)
        except ValueError as error:
            raise ValueError(f"stageProfiles.{stage.value}.{_first_message(error)}") from None
    last = profiles[LAST_STAGE]
    if last.graduation_rate != 0.0:
        raise ValueError(
            f"stageProfiles.{LAST_STAGE.value}.graduationRate: must be 0, there is no stage after it"
        )
    return profiles


def _first_message(error: ValueError) -> str:
    errors = getattr(error, "errors", None)
    if callable(errors):
        details = errors()
        if details:
            first = details[0]
            location = ".".join(str(part) for part in first.get("loc", ()))
            message = str(first.get("msg", error)).removeprefix("Value error, ")
            return f"{location}: {message}" if location else message
    return str(error)
