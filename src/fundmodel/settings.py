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
from fundmodel.notifications.targets import WebhookTarget, parse_webhook_targets
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
    sweep_max_active_jobs_per_client: int = Field(
        default=3,
        ge=1,
        le=1000,
        description="Queued + running sweep jobs one client may have; one more is a 429 TOO_MANY_JOBS.",
    )
    sweep_max_work: int = Field(
        default=5_000_000,
        ge=1,
        le=1_000_000_000,
        description="Largest points x iterations one sweep, sensitivity or backsolve job may ask for.",
    )
    sweep_workers: int = Field(
        default=1,
        ge=0,
        le=64,
        description="Sweep jobs each server process runs at once (0: this process runs none).",
    )
    sweep_lease_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="A running job's lease; renewed while its process lives, re-queued once it runs out.",
    )
    sweep_max_attempts: int = Field(
        default=3,
        ge=1,
        le=100,
        description="Times a job is started before one whose process keeps dying is failed (JOB_ABANDONED).",
    )
    sweep_poll_interval_seconds: float = Field(
        default=1.0, gt=0, le=60, description="How often an idle sweep worker looks for a queued job."
    )
    dask_scheduler_address: str | None = Field(
        default=None,
        min_length=1,
        description="Dask scheduler (tcp://host:8786) that runs sweep jobs' points; unset: local threads.",
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

    # Issue 12 (usage ledger, recording side): fundmodel.usage.ledger / flusher and `db prune-usage`.
    stage_usage_flush_seconds: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="How often each worker adds its in-memory usage counts to stage_usage (and at exit); "
        "a worker killed without a graceful stop loses at most this interval's counts.",
    )
    stage_usage_retention_days: int = Field(
        default=90,
        ge=1,
        le=3650,
        description="Days of stage_usage rows `fundmodel db prune-usage` keeps (besides today).",
    )
    stage_usage_max_spellings: int = Field(
        default=50,
        ge=1,
        le=10_000,
        description="Distinct spellings counted per client and day (per worker); further ones are "
        "counted under '(other)'.",
    )
    stage_usage_max_held_keys: int = Field(
        default=100_000,
        ge=100,
        le=10_000_000,
        description="Usage keys a worker holds in memory while the database cannot be written; "
        "validations of further keys are dropped and counted (fundmodel_stage_usage_dropped_total).",
    )

    # Issue 12 (notifications): outgoing webhooks told of mode changes, gate verdicts and brownouts.
    notify_webhooks: SecretStr | None = Field(
        default=None,
        description='JSON list of {"name", "url", "format": "json"|"slack"}; the URLs are secrets.',
    )
    notify_timeout_seconds: float = Field(
        default=5.0, gt=0, le=60, description="Timeout of one webhook delivery attempt."
    )
    notify_max_attempts: int = Field(
        default=12, ge=1, le=100, description="Attempts per delivery before it is given up as failed."
    )
    notify_max_age: timedelta = Field(
        default=timedelta(hours=24),
        description="A notification not delivered this long after its event is given up as expired.",
    )
    notify_retry_base_seconds: float = Field(
        default=2.0, gt=0, le=3600, description="First retry delay; it doubles per attempt (with jitter)."
    )
    notify_retry_max_seconds: float = Field(
        default=600.0, gt=0, le=86400, description="Longest delay between two attempts."
    )
    notify_poll_interval_seconds: float = Field(
        default=1.0, gt=0, le=60, description="How often each server process looks for due deliveries."
    )

    @field_validator("stage_deprecation_date", "stage_sunset_date")
    @classmethod
    def _assume_utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @field_validator("max_warn_duration", "notify_max_age", mode="before")
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
    def _webhooks_parse(self) -> Settings:
        # Checked at start-up like every variable; the message never quotes a URL (a secret).
        raw = self.notify_webhooks.get_secret_value() if self.notify_webhooks is not None else None
        parse_webhook_targets(raw)
        return self

    @property
    def notify_targets(self) -> tuple[WebhookTarget, ...]:
        """The configured webhook targets (``NOTIFY_WEBHOOKS``, already checked)."""
        raw = self.notify_webhooks.get_secret_value() if self.notify_webhooks is not None else None
        return parse_webhook_targets(raw)

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
