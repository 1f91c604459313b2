"""Operators' mode changes over HTTP (``PUT /_ops/stage-validation/mode``): audited, refused in production.

In production the CLI (``fundmodel mode set``) or the rollout controller change the mode; the HTTP
route is for development and staging unless ``ALLOW_PRODUCTION_MODE_PUT=true`` opts in.
"""

from __future__ import annotations

from collections.abc import Sequence

from fundmodel.db.mode_store import ModeChange, ModeChangeSource, ModeStore
from fundmodel.errors import PermissionDeniedError
from fundmodel.observability.metrics import ServiceMetrics
from fundmodel.observability.mode_events import log_mode_change
from fundmodel.settings import Settings
from fundmodel.validation import ValidationMode

__all__ = ["MANUAL_SOURCE", "set_mode_over_http"]

MANUAL_SOURCE = ModeChangeSource.MANUAL


def set_mode_over_http(
    store: ModeStore,
    metrics: ServiceMetrics,
    settings: Settings,
    *,
    mode: ValidationMode,
    canary_percent: float,
    actor: str,
    reason: str,
    canary_clients: Sequence[str] = (),
    aliases_rejected: bool = False,
) -> ModeChange:
    """Write the mode with its audit row; this worker applies it at once, the others within the TTL."""
    if settings.app_env == "production" and not settings.allow_production_mode_put:
        raise PermissionDeniedError(
            "changing the stage-validation mode over HTTP is disabled when APP_ENV=production; "
            "use `fundmodel mode set` (or set ALLOW_PRODUCTION_MODE_PUT=true)",
            code="MODE_CHANGE_FORBIDDEN",
        )
    change = store.set(
        mode,
        canary_percent,
        actor=actor,
        reason=reason,
        source=MANUAL_SOURCE,
        extra={"via": "http"},
        canary_clients=canary_clients,
        aliases_rejected=aliases_rejected,
    )
    metrics.refresh_mode_change_counts()
    metrics.set_mode(change.new.mode.value, change.new.canary_percent)
    log_mode_change(change)
    return change
