"""log_mode_change: the stage_validation_mode_changed event, from the audited change."""

from __future__ import annotations

from datetime import UTC, datetime

from fundmodel.db.mode_store import ModeChange
from fundmodel.observability.mode_events import MODE_CHANGED_EVENT, log_mode_change
from fundmodel.validation import ModeState, ValidationMode

from .conftest import LogCapture

CHANGED_AT = datetime(2026, 12, 3, tzinfo=UTC)


def change(old: ModeState, new: ModeState, *, actor: str, reason: str, source: str) -> ModeChange:
    return ModeChange(7, old, new, actor, reason, source, CHANGED_AT)


def test_mode_change_event_fields(log_capture: LogCapture) -> None:
    log_mode_change(
        change(
            ModeState(ValidationMode.ENFORCE, 25.0),
            ModeState(ValidationMode.WARN, 25.0),
            actor="alertmanager",
            reason="StageValidationRejectRatioHigh fired",
            source="alertmanager",
        )
    )
    [event] = log_capture.events()
    assert event["event"] == MODE_CHANGED_EVENT == "stage_validation_mode_changed"
    assert event["level"] == "warning"
    assert {k: event[k] for k in ("old", "new", "actor", "reason", "source")} == {
        "old": "enforce",
        "new": "warn",
        "actor": "alertmanager",
        "reason": "StageValidationRejectRatioHigh fired",
        "source": "alertmanager",
    }
    assert (event["old_canary_percent"], event["new_canary_percent"]) == (25.0, 25.0)


def test_operator_text_is_escaped_and_bounded(log_capture: LogCapture) -> None:
    log_mode_change(
        change(
            ModeState(ValidationMode.WARN),
            ModeState(ValidationMode.ENFORCE, 10.0),
            actor="ops\r\nFAKE=1",
            reason="r" * 5000,
            source="manual",
        )
    )
    [event] = log_capture.events()
    assert event["actor"] == "ops\\x0d\\x0aFAKE=1"
    assert len(event["reason"]) <= 1000
    assert (event["old_canary_percent"], event["new_canary_percent"]) == (100.0, 10.0)
