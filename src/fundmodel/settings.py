"""Service configuration: one pydantic-settings class read from the environment, once per process.

Nothing reads ``os.environ`` elsewhere. The API gets its settings through :func:`get_settings` (a FastAPI
dependency that tests override) or explicitly via ``create_app(settings)``; the CLI calls
:func:`get_settings` and turns a :class:`~fundmodel.errors.ConfigurationError` into a one-line message.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fundmodel.errors import ConfigurationError
from fundmodel.validation import ValidationMode

DEFAULT_DATABASE_URL = "sqlite:///var/fundmodel.sqlite3"
"""The embedded default: a SQLite file under ``var/`` relative to the working directory."""


class Settings(BaseSettings):
    """Every environment variable fundmodel reads, with its default."""

    model_config = SettingsConfigDict(
        env_prefix="", case_sensitive=False, extra="ignore", frozen=True, validate_default=True
    )

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL: sqlite:///path or postgresql+psycopg://user@host/db.",
    )
    app_env: Literal["development", "production"] = "development"
    stage_validation_mode: ValidationMode = Field(
        default=ValidationMode.WARN,
        description="Mode used until the mode store holds one, and whenever the store is unreachable.",
    )
    stage_deprecation_date: datetime = Field(
        default=datetime(2026, 12, 1, tzinfo=UTC),
        description="When non-canonical stage spellings became deprecated (Deprecation header).",
    )
    stage_sunset_date: datetime = Field(
        default=datetime(2027, 6, 1, tzinfo=UTC),
        description="Fixed date after which deprecated spellings stop being accepted (Sunset header).",
    )
    stage_canary_salt: str = Field(
        default="stage-validation-v1",
        min_length=1,
        max_length=200,
        description="Rule salt hashed with the client id to place clients in the enforce canary cohort.",
    )
    stage_mode_cache_ttl_seconds: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="How stale each process's view of the mode store may become.",
    )
    stage_offender_log_per_minute: int = Field(
        default=60,
        ge=0,
        le=1_000_000,
        description="Offender log events (`stage_validation_offender`) logged per endpoint and minute "
        "before sampling starts; 0 samples from the first one.",
    )
    stage_offender_log_sample_fraction: float = Field(
        default=0.01,
        ge=0.0,
        le=1.0,
        allow_inf_nan=False,
        description="Share of the offender events beyond the per-minute limit that are still logged "
        "(0 drops them all, 1 keeps them all); the dropped ones are counted.",
    )
    stage_docs_url: str = Field(
        default="/docs",
        description="Where the stage-validation deprecation is documented (GET /api/deprecations).",
    )
    montecarlo_max_iterations: int = Field(
        default=100_000,
        ge=1,
        le=1_000_000,
        description="Largest `iterations` one simulate request may ask for.",
    )
    montecarlo_max_compare_work: int = Field(
        default=300_000,
        ge=1,
        le=10_000_000,
        description="Largest iterations x configurations one compare request may ask for.",
    )
    montecarlo_max_concurrency: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Simulations running at once per process; more wait (they are CPU-bound).",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # Issue 5 (observability and auto-downgrade) reads these; defined here so there is one settings class.
    stage_webhook_token_file: Path | None = None
    stage_webhook_token: SecretStr | None = None
    stage_webhook_label_filter: str = 'action="downgrade_stage_validation"'
    admin_token_file: Path | None = None
    admin_token: SecretStr | None = None
    allow_production_mode_put: bool = False
    prometheus_multiproc_dir: Path | None = None
    prometheus_url: str | None = None

    # Issue 7 (rollout controller): `fundmodel rollout` reads these.
    prometheus_timeout_seconds: float = Field(
        default=5.0, gt=0, le=120, description="Timeout of each Prometheus HTTP API query."
    )
    max_warn_duration: timedelta = Field(
        default=timedelta(days=30),
        description="MAX_WARN_DURATION: how long warn may last before `rollout status` turns red "
        "(e.g. 30d, 720h, P30D).",
    )
    rollout_gates_file: Path | None = Field(
        default=None, description="TOML file overriding the rollout gates' thresholds."
    )

    @field_validator("stage_deprecation_date", "stage_sunset_date")
    @classmethod
    def _assume_utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @field_validator("max_warn_duration", mode="before")
    @classmethod
    def _short_duration(cls, value: Any) -> Any:
        # "30d", "12h", "90m", "45s", "2w" besides pydantic's ISO 8601 / seconds.
        if isinstance(value, str):
            match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", value, re.IGNORECASE)
            if match:
                unit = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[match.group(2).lower()]
                return timedelta(seconds=float(match.group(1)) * unit)
        return value

    @field_validator("stage_validation_mode", mode="before")
    @classmethod
    def _case_insensitive_mode(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("app_env", mode="before")
    @classmethod
    def _case_insensitive_env(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _sunset_after_deprecation(self) -> Settings:
        if self.stage_sunset_date <= self.stage_deprecation_date:
            raise ValueError("STAGE_SUNSET_DATE must be later than STAGE_DEPRECATION_DATE")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def anonymous_dev_client_allowed(self) -> bool:
        """Only the embedded default (development on SQLite) lets requests in without an API key."""
        return self.app_env == "development" and self.is_sqlite


def load_settings(**overrides: Any) -> Settings:
    """Read the environment (plus explicit overrides); invalid values become one clear message."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigurationError(_describe(exc)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings (cached; tests use ``dependency_overrides`` or pass Settings explicitly)."""
    return load_settings()


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False):
        location = "_".join(str(part) for part in error["loc"]).upper() or "settings"
        message = str(error["msg"]).removeprefix("Value error, ")
        raw = error.get("input")
        shown = f" (got {raw!r:.60})" if isinstance(raw, str | int | float) else ""
        parts.append(f"{location}: {message}{shown}")
    return "invalid configuration: " + "; ".join(parts)
