"""The ``stage_validation_mode_changed`` log event, emitted for every validation-mode change.

Every path that changes the mode (``fundmodel mode set``, ``fundmodel rollout``, the auto-downgrade, the
ops ``PUT``) logs the audited :class:`~fundmodel.db.mode_store.ModeChange` it wrote through this one call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from fundmodel.observability.sanitize import escape_log_text

if TYPE_CHECKING:
    from fundmodel.db.mode_store import ModeChange

__all__ = ["MODE_CHANGED_EVENT", "log_mode_change"]

MODE_CHANGED_EVENT = "stage_validation_mode_changed"
MAX_ACTOR_CHARS = 128
MAX_REASON_CHARS = 1000


def log_mode_change(change: ModeChange) -> None:
    """Log a mode change (old -> new) with who made it, why, and through which path."""
    # Looked up at each call, not cached at import: the CLI configures its stderr logging right before
    # a change, and a logger bound on first use would keep writing to the stream of an earlier setup.
    structlog.get_logger("fundmodel.stages").warning(
        MODE_CHANGED_EVENT,
        old=escape_log_text(change.old.mode.value, MAX_ACTOR_CHARS),
        new=escape_log_text(change.new.mode.value, MAX_ACTOR_CHARS),
        actor=escape_log_text(change.actor, MAX_ACTOR_CHARS),
        reason=escape_log_text(change.reason, MAX_REASON_CHARS),
        source=escape_log_text(change.source, MAX_ACTOR_CHARS),
        old_canary_percent=change.old.canary_percent,
        new_canary_percent=change.new.canary_percent,
    )
