"""The pure parts: event summaries and dedupe keys, the two bodies, the target configuration, back-off."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fundmodel.errors import ConfigurationError
from fundmodel.notifications.dispatcher import ATTEMPT_OUTCOMES, RetryPolicy
from fundmodel.notifications.events import (
    BODY_SCHEMA,
    BrownoutEdge,
    GateLine,
    StoredEvent,
    Verdict,
    brownout_event,
    gate_verdict_event,
    json_body,
    mode_change_event,
    render_body,
    slack_body,
)
from fundmodel.notifications.targets import BodyFormat, parse_webhook_targets
from fundmodel.observability.metrics import NOTIFICATION_RESULTS
from fundmodel.settings import load_settings
from fundmodel.validation import ModeState, ValidationMode

AT = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)
SECRET_URL = "https://hooks.slack.example/services/T000/B000/sekrit-token-in-path"


def stored(event_id: int, event: object) -> StoredEvent:
    return StoredEvent(event_id, event.kind.value, event.summary, event.data, event.occurred_at)  # type: ignore[attr-defined]


def test_a_mode_change_names_both_states_who_and_why_and_is_keyed_by_its_audit_row() -> None:
    event = mode_change_event(
        audit_id=42,
        old=ModeState(ValidationMode.WARN),
        new=ModeState(ValidationMode.ENFORCE, 10.0),
        actor="alice",
        reason="gates passed",
        source="rollout",
        changed_at=AT,
        action="advance",
    )
    assert event.summary == "Stage validation: warn → enforce 10% (rollout advance, by alice): gates passed"
    assert event.dedupe_key == "mode:42"
    assert event.data["old"]["mode"] == "warn"
    assert event.data["new"] == {
        "mode": "enforce",
        "canaryPercent": 10.0,
        "canaryClients": [],
        "aliasesRejected": False,
        "label": "enforce 10%",
    }


def test_a_refused_verdict_lists_the_gates_that_do_not_pass() -> None:
    event = gate_verdict_event(
        verdict=Verdict.REFUSED,
        current="warn",
        target="enforce 10%",
        gates=[GateLine("reject_ratio", "fail", 0.03, 0.01), GateLine("warn_observed", "pass", 8, 7)],
        actor="bob",
        reason=None,
        evaluated_at=AT,
        audit_id=None,
    )
    assert event.summary == (
        "Rollout advance refused: refused warn → enforce 10%; not passing: reject_ratio fail (by bob)"
    )
    assert event.dedupe_key is None
    slack = slack_body(stored(7, event))
    assert "reject_ratio" in slack["blocks"][1]["text"]["text"]


def test_brownout_edges_are_deduplicated_per_window_and_edge() -> None:
    started = brownout_event(
        BrownoutEdge.STARTED,
        brownout_id=3,
        starts_at=AT,
        ends_at=AT + timedelta(hours=12),
        canary_percent=100.0,
        actor="brownout schedule",
        reason="12h brownout",
    )
    ended = brownout_event(
        BrownoutEdge.ENDED,
        brownout_id=3,
        starts_at=AT,
        ends_at=AT + timedelta(hours=12),
        canary_percent=100.0,
        actor="brownout schedule",
        reason="12h brownout",
        ended_by="elapsed",
    )
    assert (started.dedupe_key, ended.dedupe_key) == ("brownout:3:started", "brownout:3:ended")
    assert ended.summary.startswith(
        "Brownout #3 ended (elapsed): 2026-12-03 15:00 UTC - 2026-12-04 03:00 UTC"
    )


def test_the_generic_body_carries_the_whole_event_and_survives_json() -> None:
    event = mode_change_event(
        audit_id=1,
        old=ModeState(ValidationMode.ENFORCE),
        new=ModeState(ValidationMode.WARN),
        actor="alertmanager",
        reason="reject ratio high",
        source="alertmanager",
        changed_at=AT,
    )
    body = json.loads(json.dumps(json_body(stored(9, event))))
    assert body["schema"] == BODY_SCHEMA
    assert (body["id"], body["kind"], body["occurredAt"]) == (9, "mode_change", AT.isoformat())
    assert body["data"]["source"] == "alertmanager"
    assert render_body(stored(9, event), BodyFormat.JSON) == json_body(stored(9, event))


def test_the_slack_body_escapes_what_slack_would_interpret() -> None:
    event = mode_change_event(
        audit_id=1,
        old=ModeState(ValidationMode.WARN),
        new=ModeState(ValidationMode.OFF),
        actor="eve",
        reason="<!channel> & <https://evil.example|click>",
        source="manual",
        changed_at=AT,
    )
    body = render_body(stored(1, event), BodyFormat.SLACK)
    assert set(body) == {"text", "blocks"}
    assert "<!channel>" not in body["text"]
    assert "&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;" in body["text"]
    assert body["blocks"][0]["text"]["type"] == "mrkdwn"
    assert body["blocks"][-1]["type"] == "context"


def test_targets_parse_with_json_as_the_default_format() -> None:
    targets = parse_webhook_targets(
        json.dumps(
            [
                {"name": "ops", "url": "http://127.0.0.1:9/x"},
                {"name": "chat", "url": SECRET_URL, "format": "slack"},
            ]
        )
    )
    assert [(t.name, t.body_format) for t in targets] == [
        ("ops", BodyFormat.JSON),
        ("chat", BodyFormat.SLACK),
    ]
    assert targets[1].url.get_secret_value() == SECRET_URL
    assert SECRET_URL not in repr(targets)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("not json", "not valid JSON"),
        (json.dumps({"name": "x"}), "must be a JSON list"),
        (json.dumps([{"name": "Bad Name", "url": SECRET_URL}]), "name must be"),
        (json.dumps([{"name": "chat", "url": SECRET_URL.replace("https", "ftp")}]), "url must be"),
        (json.dumps([{"name": "chat", "url": SECRET_URL, "format": "xml"}]), "format must be"),
        (json.dumps([{"name": "chat", "url": SECRET_URL}, {"name": "chat", "url": SECRET_URL}]), "duplicate"),
    ],
)
def test_a_bad_configuration_is_one_line_that_never_quotes_the_url(raw: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(notify_webhooks=raw)
    assert message in caught.value.detail
    assert "sekrit" not in caught.value.detail
    assert "NOTIFY_WEBHOOKS" in caught.value.detail


@given(attempt=st.integers(1, 200), jitter=st.floats(0, 1, exclude_max=True))
def test_back_off_doubles_is_capped_and_jittered_between_half_and_all(attempt: int, jitter: float) -> None:
    policy = RetryPolicy(base_seconds=2.0, max_seconds=600.0)
    full = min(600.0, 2.0 * 2 ** min(attempt - 1, 40))
    assert full / 2 <= policy.delay(attempt, jitter) <= full


def test_the_metric_labels_mirror_the_dispatcher_outcomes() -> None:
    assert NOTIFICATION_RESULTS == ATTEMPT_OUTCOMES
