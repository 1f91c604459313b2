"""The one exception tree of fundmodel.

The core (stages, engines) and the thin layers around it raise only these. Each carries a stable
machine-readable ``code``; the HTTP edge maps them to RFC 9457 problem documents and the CLI to a
one-line message and a non-zero exit code. Nothing here knows about HTTP or terminals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class FundmodelError(Exception):
    """Base of every error fundmodel raises on purpose."""

    code: str = "FUNDMODEL_ERROR"
    title: str = "fundmodel error"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.extra: dict[str, Any] = dict(extra or {})


class InvalidInputError(FundmodelError):
    """The caller sent something that cannot be used as it is (HTTP 422 unless a subclass says otherwise)."""

    code = "INVALID_INPUT"
    title = "Invalid input"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        field: str | None = None,
        errors: Sequence[Mapping[str, Any]] = (),
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail, code=code, extra=extra)
        self.field = field
        self.errors: tuple[Mapping[str, Any], ...] = tuple(errors)


class MalformedStageInputError(InvalidInputError):
    """Stage input that no mode can use: not an object, bad weights, limits exceeded (HTTP 422)."""

    code = "MALFORMED_STAGE_DISTRIBUTION"
    title = "Malformed stage input"


class StageValidationError(InvalidInputError):
    """Well-formed stage input rejected by strict validation (HTTP 400 under enforce)."""

    code = "INVALID_STAGE"
    title = "Invalid investment stage"


class InvalidStageError(StageValidationError):
    """A stage name is not in the taxonomy (no alias matches it)."""

    code = "INVALID_STAGE"
    title = "Invalid investment stage"


class InvalidStageDistributionError(StageValidationError):
    """A stage distribution's weights do not sum to one within tolerance."""

    code = "INVALID_STAGE_DISTRIBUTION"
    title = "Invalid stage distribution"


class SimulationConfigError(InvalidInputError):
    """A Monte Carlo configuration is inconsistent (rates over 1, negative sizes, NaN, ...)."""

    code = "INVALID_SIMULATION_CONFIG"
    title = "Invalid simulation configuration"


class NotFoundError(FundmodelError):
    code = "NOT_FOUND"
    title = "Not found"


class ConflictError(FundmodelError):
    """A write lost a race (optimistic locking) or would violate a uniqueness rule."""

    code = "CONFLICT"
    title = "Conflict"


class TooManyJobsError(FundmodelError):
    """A client already has as many queued and running jobs as it may (HTTP 429 with Retry-After)."""

    code = "TOO_MANY_JOBS"
    title = "Too many jobs"

    def __init__(
        self, detail: str, *, retry_after_seconds: int = 10, extra: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(detail, extra=extra)
        self.retry_after_seconds = retry_after_seconds


class AuthenticationError(FundmodelError):
    code = "UNAUTHENTICATED"
    title = "Authentication required"


class PermissionDeniedError(FundmodelError):
    code = "FORBIDDEN"
    title = "Forbidden"


class ConfigurationError(FundmodelError):
    """The service or a command is configured wrongly (bad environment variable, missing token file)."""

    code = "CONFIGURATION_ERROR"
    title = "Configuration error"


class StoreUnavailableError(FundmodelError):
    """A backing store (database, mode store) could not be reached or written."""

    code = "STORE_UNAVAILABLE"
    title = "Store unavailable"


class OperationRefusedError(FundmodelError):
    """A guarded operation refused to run (stale backup, unknown values, confirmation missing)."""

    code = "OPERATION_REFUSED"
    title = "Operation refused"


class IntegrityCheckError(FundmodelError):
    """A data-operations check failed (a backup's checksum or row counts, a verification report)."""

    code = "INTEGRITY_CHECK_FAILED"
    title = "Integrity check failed"


class ExternalToolError(FundmodelError):
    """An external program a data operation relies on (pg_dump, pg_restore) is missing or failed."""

    code = "EXTERNAL_TOOL_FAILED"
    title = "External tool failed"


class WebhookPayloadError(InvalidInputError):
    """A webhook body is not the expected payload (bad JSON, wrong version, missing fields): HTTP 400."""

    code = "INVALID_WEBHOOK_PAYLOAD"
    title = "Invalid webhook payload"


class MeasurementUnavailableError(FundmodelError):
    """A measurement source (Prometheus' HTTP API) is unreachable, answered with an error or with garbage."""

    code = "MEASUREMENT_UNAVAILABLE"
    title = "Measurement unavailable"


class NotConfiguredError(ConfigurationError):
    """An optional endpoint is switched off because its secret or setting is missing (HTTP 503).

    E.g. the auto-downgrade webhook without ``STAGE_WEBHOOK_TOKEN_FILE``: it never runs unauthenticated.
    """

    code = "NOT_CONFIGURED"
    title = "Not configured"
