"""log_mode_change: the stage_validation_mode_changed event."""

from __future__ import annotations

from fundmodel.observability.mode_events import MODE_CHANGED_EVENT, log_mode_change

from .conftest import LogCapture


def test_mode_change_event_fields(log_capture: LogCapture) -> None:
    log_mode_change(
        "enforce",
        "warn",
        "alertmanager",
        "StageValidationRejectRatioHigh fired",
        "alertmanager",
        old_canary_percent=25.0,
        new_canary_percent=25.0,
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
    assert event["old_canary_percent"] == 25.0


def test_operator_text_is_escaped_and_bounded(log_capture: LogCapture) -> None:
    log_mode_change("warn", "enforce", "ops\r\nFAKE=1", "r" * 5000, "manual")
    [event] = log_capture.events()
    assert event["actor"] == "ops\\x0d\\x0aFAKE=1"
    assert len(event["reason"]) <= 1000
    assert "old_canary_percent" not in event
