"""The ``stage_validation_mode_changed`` log event, emitted for every validation-mode change."""

from __future__ import annotations

from typing import Any

import structlog

from fundmodel.observability.sanitize import escape_log_text

__all__ = ["MODE_CHANGED_EVENT", "log_mode_change"]

MODE_CHANGED_EVENT = "stage_validation_mode_changed"
MAX_ACTOR_CHARS = 128
MAX_REASON_CHARS = 1000


def log_mode_change(
    old: str,
    new: str,
    actor: str,
    reason: str,
    source: str,
    *,
    old_canary_percent: float | None = None,
    new_canary_percent: float | None = None,
    logger: Any = None,
) -> None:
    """Log a mode change (old -> new) with who made it, why, and through which path."""
    log = logger if logger is not None else structlog.get_logger("fundmodel.stages")
    fields: dict[str, Any] = {
        "old": escape_log_text(old, MAX_ACTOR_CHARS),
        "new": escape_log_text(new, MAX_ACTOR_CHARS),
        "actor": escape_log_text(actor, MAX_ACTOR_CHARS),
        "reason": escape_log_text(reason, MAX_REASON_CHARS),
        "source": escape_log_text(source, MAX_ACTOR_CHARS),
    }
    if old_canary_percent is not None:
        fields["old_canary_percent"] = old_canary_percent
    if new_canary_percent is not None:
        fields["new_canary_percent"] = new_canary_percent
    log.warning(MODE_CHANGED_EVENT, **fields)
