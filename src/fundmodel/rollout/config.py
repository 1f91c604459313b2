"""The rollout gates' thresholds: the plan's defaults, overridable from a TOML file.

Durations are written ``"2h"``, ``"30m"``, ``"7d"``, ``"90s"`` (or ISO 8601 such as ``"PT2H"``).
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from fundmodel.errors import ConfigurationError
from fundmodel.observability.metrics import DEFAULT_VALIDATED_ENDPOINTS

_SHORT_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_LABEL_FILTER = re.compile(r'^(\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=|!=|=~|!~)\s*"(?:[^"\\]|\\.)*"\s*,?)*$')


def parse_duration(value: Any) -> Any:
    """``"2h"`` -> 2 hours; other values are left to pydantic (ISO 8601, seconds)."""
    if isinstance(value, str):
        match = _SHORT_DURATION.match(value)
        if match:
            return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()])
    return value


def format_duration(value: timedelta) -> str:
    """Compact human form: ``"2h"``, ``"4h 30m"``, ``"30d"``."""
    seconds = int(value.total_seconds())
    if seconds < 60:
        return f"{max(seconds, 0)}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts[:2])


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be a positive duration such as 2h or 7d")
    return value


Duration = Annotated[timedelta, BeforeValidator(parse_duration), AfterValidator(_positive)]


STEP_GATE_NAMES: tuple[str, ...] = (
    # warn -> enforce 10 %
    "warn_observed",
    "would_reject_ratio",
    "would_reject_worst_hour",
    "stored_stages_canonical",
    "db_verify",
    "backup_fresh",
    # each canary step
    "canary_sample",
    "canary_vs_baseline",
    "soak_time",
    "canary_reject_ratio",
    "validation_p99",
    "no_auto_downgrade",
    # enforce 100 % and the Sunset step: the usage ledger's clients
    "clients_rejected",
    "clients_alias",
    # enforce 100 % -> Sunset
    "sunset_traffic",
    "alias_traffic",
)
"""Every gate name the catalogue can report, but the per-endpoint traffic gates (``validations <endpoint>``);
``tests/rollout/test_gate_catalogue.py`` holds the catalogue to this list."""


def gate_names(endpoints: tuple[str, ...]) -> frozenset[str]:
    """The names a gate of the catalogue can have with these validated ``endpoints``."""
    return frozenset(STEP_GATE_NAMES) | {traffic_gate_name(endpoint) for endpoint in endpoints}


def traffic_gate_name(endpoint: str) -> str:
    """The ``off -> warn`` gate on one endpoint's validated requests."""
    return f"validations {endpoint}"


class GateConfig(BaseModel):
    """Every gate threshold; the defaults are the rollout plan's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # off -> warn
    min_validations_per_endpoint: int = Field(default=1000, ge=1)
    traffic_window: Duration = timedelta(days=7)
    endpoints: tuple[str, ...] = DEFAULT_VALIDATED_ENDPOINTS
    # warn -> enforce 10 %
    warn_window: Duration = timedelta(days=7)
    max_would_reject_ratio: float = Field(default=0.005, gt=0, lt=1)
    max_hourly_would_reject_ratio: float = Field(default=0.01, gt=0, lt=1)
    max_backup_age: Duration = timedelta(hours=24)
    # each canary step
    soak_enforce_10: Duration = timedelta(hours=2)
    soak_enforce_50: Duration = timedelta(hours=4)
    max_canary_reject_ratio: float = Field(default=0.005, gt=0, lt=1)
    max_canary_vs_baseline: float = Field(default=1.2, gt=0)
    canary_vs_baseline_floor: float = Field(default=0.001, ge=0, lt=1)
    """The canary-vs-baseline bound is max(max_canary_vs_baseline x baseline, this): a clean baseline
    (ratio 0) does not make one stray canary rejection fail the step."""
    min_canary_validations: int = Field(default=1000, ge=1)
    """Validations each compared cohort (enforced canary; warn baseline) needs since the step began before
    its ratios count; fewer makes those gates no_data. With no rejection among 1,000, the reject ratio
    is below 0.3 % at 95 % confidence (rule of three), under the 0.5 % threshold."""
    max_validation_p99_seconds: float = Field(default=0.001, gt=0)
    # the cap on warn (MAX_WARN_DURATION)
    max_warn_duration: Duration = timedelta(days=30)
    # enforce 100 % -> sunset (aliases rejected)
    sunset_window: Duration = timedelta(days=7)
    max_alias_validations: int = Field(default=0, ge=0)
    """Validations carrying a deprecated alias allowed in ``sunset_window`` before aliases are rejected:
    0, because every one of them would be a 400 under the Sunset step."""
    # clients named from the usage ledger (enforce 100 %, sunset) and the cohort preview's traffic share
    client_usage_window: Duration = timedelta(days=7)
    """How far back the client gates and the cohort preview read the usage ledger (whole UTC days)."""
    max_exemption: Duration = timedelta(days=90)
    """The longest a `rollout exempt` may run: an exemption is a deadline, not a permanent waiver."""
    dry_run_gates: tuple[str, ...] = ()
    """Gate names evaluated and reported but never blocking (Argo Rollouts' dryRun): watch a new gate
    before trusting it. A name that is not a gate is refused, so a typo cannot leave a gate blocking
    unnoticed (or, worse, make a later gate of that name non-blocking by accident)."""
    # extra PromQL label matchers for every query, e.g. 'job="fundmodel",env="prod"'
    label_filter: str = Field(default="", max_length=500, pattern=_LABEL_FILTER.pattern)

    @model_validator(mode="after")
    def _dry_run_gates_name_gates(self) -> GateConfig:
        known = gate_names(self.endpoints)
        unknown = [name for name in self.dry_run_gates if name not in known]
        if unknown:
            raise ValueError(
                f"dry_run_gates names no gate: {', '.join(map(repr, unknown))}; "
                f"the gates are {', '.join(sorted(known))}"
            )
        return self

    def soak_for(self, canary_percent: float) -> timedelta:
        """Minimum time at a canary percentage before the next step."""
        return self.soak_enforce_10 if canary_percent < 50 else self.soak_enforce_50


PRODUCTION_BACKUP_AGE = timedelta(hours=1)
"""The backup gate's limit under ``APP_ENV=production``: the RPO target (under 1 hour of lost work)."""


def environment_defaults(*, production: bool, backup_max_age_hours: str | None) -> dict[str, Any]:
    """Gate defaults from the environment, below the gates file: ``max_backup_age`` is 1 h in production,
    and ``FUNDMODEL_BACKUP_MAX_AGE_HOURS`` (the limit of ``normalize-stages --apply``'s backup gate) sets
    it everywhere, so both backup gates apply the same limit."""
    defaults: dict[str, Any] = {"max_backup_age": PRODUCTION_BACKUP_AGE} if production else {}
    if backup_max_age_hours is not None and backup_max_age_hours.strip():
        try:
            hours = float(backup_max_age_hours)
        except ValueError:
            hours = math.nan
        if not (math.isfinite(hours) and hours > 0):
            raise ConfigurationError(
                "FUNDMODEL_BACKUP_MAX_AGE_HOURS must be a positive number of hours, "
                f"got {backup_max_age_hours!r}"
            )
        defaults["max_backup_age"] = timedelta(hours=hours)
    return defaults


def load_gate_config(
    path: Path | None = None, *, defaults: Mapping[str, Any] | None = None, **overrides: Any
) -> GateConfig:
    """``defaults`` (e.g. :func:`environment_defaults`) over the built-in ones, then the TOML file's
    values (table ``[gates]`` or top level), then ``overrides``."""
    values: dict[str, Any] = dict(defaults or {})
    if path is not None:
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigurationError(f"rollout gates file {path}: cannot read ({exc.strerror})") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"rollout gates file {path}: not valid TOML ({exc})") from exc
        table = document.get("gates", document)
        if not isinstance(table, dict):
            raise ConfigurationError(f"rollout gates file {path}: [gates] must be a table")
        values.update(table)
    values.update({key: value for key, value in overrides.items() if value is not None})
    try:
        return GateConfig(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'gates'}: {error['msg']}"
            for error in exc.errors(include_url=False)
        )
        where = f" in {path}" if path is not None else ""
        raise ConfigurationError(f"invalid rollout gate settings{where}: {problems}") from None
