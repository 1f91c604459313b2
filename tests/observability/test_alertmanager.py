"""Alertmanager webhook: payload parsing, downgrade selection, idempotency keys, authentication."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fundmodel.errors import AuthenticationError, ConfigurationError, WebhookPayloadError
from fundmodel.observability.alertmanager import (
    DEFAULT_DOWNGRADE_LABEL,
    SIGNATURE_HEADER,
    SecretToken,
    bearer_token_matches,
    body_signature,
    downgrade_requests,
    downgraded_mode,
    load_token,
    parse_label_filter,
    parse_webhook_payload,
    plan_downgrade,
    verify_webhook_auth,
)
from fundmodel.observability.metrics import WEBHOOK_RESULTS

TOKEN = SecretToken(value="t" * 40, source="test")
GROUP_KEY = '{}/{action="downgrade_stage_validation"}:{alertname="StageValidationRejectRatioHigh"}'


def alert(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "status": "firing",
        "labels": {
            "alertname": "StageValidationRejectRatioHigh",
            "action": "downgrade_stage_validation",
            "severity": "critical",
            "job": "fundmodel",
        },
        "annotations": {"summary": "reject ratio 3.2%", "runbook": "docs/runbooks/x.md#y"},
        "startsAt": "2026-11-28T10:00:03.123456789Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=...&g0.tab=1",
        "fingerprint": "1a30ba71cca2921f",
    }
    base.update(overrides)
    return base


def payload(*alerts: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    alerts = alerts or (alert(),)
    base: dict[str, Any] = {
        "receiver": "stage-validation-auto-downgrade",
        "status": "firing",
        "alerts": list(alerts),
        "groupLabels": {"alertname": "StageValidationRejectRatioHigh"},
        "commonLabels": {"alertname": "StageValidationRejectRatioHigh"},
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "version": "4",
        "groupKey": GROUP_KEY,
        "truncatedAlerts": 0,
    }
    base.update(overrides)
    return base


def body(data: dict[str, Any]) -> bytes:
    return json.dumps(data).encode()


def test_parses_a_real_shaped_payload_and_allows_unknown_fields() -> None:
    data = payload(alert(silenceURL="http://am/silence", valueString="x"), orgId=1)
    parsed = parse_webhook_payload(body(data))
    assert parsed.version == "4"
    assert parsed.group_key == GROUP_KEY
    assert parsed.external_url == "http://127.0.0.1:9093"
    assert parsed.alerts[0].fingerprint == "1a30ba71cca2921f"
    assert parsed.alerts[0].ends_at is not None
    assert parsed.alerts[0].ends_at.year == 1  # Go's zero time: "still firing"


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"not json", "body"),
        (b"[]", "body"),
        (body(payload(version="3")), "version"),
        (body({k: v for k, v in payload().items() if k != "groupKey"}), "groupKey"),
        (body(payload(alert(status="pending"))), "alerts.0.status"),
        (body(payload(alert(fingerprint=""))), "fingerprint"),
        (body(payload(alert(startsAt="yesterday"))), "startsAt"),
        (body(payload(truncatedAlerts=-1)), "truncatedAlerts"),
    ],
)
def test_malformed_payloads_are_rejected_with_the_reason(raw: bytes, fragment: str) -> None:
    with pytest.raises(WebhookPayloadError, match=fragment) as info:
        parse_webhook_payload(raw)
    assert info.value.code == "INVALID_WEBHOOK_PAYLOAD"


def test_oversized_payload_is_rejected_before_parsing() -> None:
    with pytest.raises(WebhookPayloadError, match="exceeds 100 bytes"):
        parse_webhook_payload(b" " * 101, max_bytes=100)


def test_selects_firing_alerts_with_the_label_only() -> None:
    unlabeled = alert(fingerprint="aaaa", labels={"alertname": "StageValidationP99High"})
    other_value = alert(fingerprint="bbbb", labels={"action": "page"})
    resolved = alert(fingerprint="cccc", status="resolved", endsAt="2026-11-28T10:05:00Z")
    parsed = parse_webhook_payload(body(payload(alert(), unlabeled, other_value, resolved)))
    [request] = downgrade_requests(parsed)
    assert request.alert_name == "StageValidationRejectRatioHigh"
    assert request.fingerprint == "1a30ba71cca2921f"
    assert request.group_key == GROUP_KEY
    assert request.external_url == "http://127.0.0.1:9093"
    assert request.generator_url.startswith("http://127.0.0.1:9090/graph")


def test_resolved_notifications_never_act() -> None:
    resolved = payload(alert(status="resolved"), status="resolved")
    assert downgrade_requests(parse_webhook_payload(body(resolved))) == []


def test_custom_label_filter() -> None:
    labeled = alert(labels={"alertname": "X", "team": "stages"})
    parsed = parse_webhook_payload(body(payload(labeled)))
    assert downgrade_requests(parsed) == []
    assert len(downgrade_requests(parsed, label=("team", "stages"))) == 1


def test_idempotency_key_is_stable_across_redeliveries_and_distinguishes_alerts() -> None:
    first = downgrade_requests(parse_webhook_payload(body(payload())))[0]
    again = downgrade_requests(parse_webhook_payload(body(payload())))[0]
    assert first.idempotency_key == again.idempotency_key
    same_instant = alert(startsAt="2026-11-28T11:00:03.123456+01:00")
    shifted = downgrade_requests(parse_webhook_payload(body(payload(same_instant))))[0]
    assert shifted.idempotency_key == first.idempotency_key
    variants = [
        payload(alert(startsAt="2026-11-28T10:30:00Z")),  # a new firing of the same alert
        payload(alert(fingerprint="ffff")),
        payload(groupKey="{}:{}"),
    ]
    keys = {downgrade_requests(parse_webhook_payload(body(v)))[0].idempotency_key for v in variants}
    assert len(keys) == 3
    assert first.idempotency_key not in keys


def test_duplicate_alerts_in_one_payload_collapse() -> None:
    parsed = parse_webhook_payload(body(payload(alert(), copy.deepcopy(alert()))))
    assert len(downgrade_requests(parsed)) == 1


@pytest.mark.parametrize(("current", "expected"), [("enforce", "warn"), ("warn", None), ("off", None)])
def test_downgrade_only_lowers_strictness(current: str, expected: str | None) -> None:
    assert downgraded_mode(current) == expected


def test_parse_label_filter() -> None:
    assert parse_label_filter('action="downgrade_stage_validation"') == DEFAULT_DOWNGRADE_LABEL
    assert parse_label_filter(" team = stages ") == ("team", "stages")
    for bad in ("action", "=x", "action="):
        with pytest.raises(ConfigurationError, match="name=value"):
            parse_label_filter(bad)


def test_load_token_from_file_strips_the_trailing_newline(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("s" * 32 + "\n")
    token = load_token({"STAGE_WEBHOOK_TOKEN_FILE": str(path)}, "STAGE_WEBHOOK_TOKEN")
    assert token is not None
    assert token.value == "s" * 32
    assert "s" * 32 not in repr(token)
    assert "s" * 32 not in str(token)


def test_load_token_from_env_and_absent() -> None:
    token = load_token({"ADMIN_TOKEN": "a" * 48}, "ADMIN_TOKEN")
    assert token is not None
    assert token.value == "a" * 48
    assert load_token({}, "ADMIN_TOKEN") is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"STAGE_WEBHOOK_TOKEN": "short-secret"}, "at least 32 characters, got 12"),
        ({"STAGE_WEBHOOK_TOKEN": "x" * 20 + " " + "y" * 20}, "whitespace"),
        ({"STAGE_WEBHOOK_TOKEN": "x" * 40, "STAGE_WEBHOOK_TOKEN_FILE": "/x"}, "not both"),
        ({"STAGE_WEBHOOK_TOKEN_FILE": "/nonexistent/token"}, "cannot read /nonexistent/token"),
    ],
)
def test_load_token_refuses_bad_configuration(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as info:
        load_token(env, "STAGE_WEBHOOK_TOKEN")
    assert "short-secret" not in str(info.value)


def test_short_token_file_is_refused_without_echoing_it(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("tooshort")
    with pytest.raises(ConfigurationError) as info:
        load_token({"STAGE_WEBHOOK_TOKEN_FILE": str(path)}, "STAGE_WEBHOOK_TOKEN")
    assert "tooshort" not in str(info.value)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        (f"Bearer {TOKEN.value}", True),
        (f"bearer   {TOKEN.value} ", True),
        (f"Bearer {TOKEN.value}x", False),
        (f"Basic {TOKEN.value}", False),
        ("Bearer ", False),
        (TOKEN.value, False),
        (None, False),
        ("Bearer tëst\udcff", False),
    ],
)
def test_bearer_token_matches(header: str | None, ok: bool) -> None:
    assert bearer_token_matches(header, TOKEN) is ok


@given(header=st.text())
def test_bearer_check_never_raises(header: str) -> None:
    assert bearer_token_matches(header, TOKEN) is False


def test_verify_webhook_auth_bearer_and_optional_signature() -> None:
    raw = body(payload())
    good = f"Bearer {TOKEN.value}"
    verify_webhook_auth(authorization=good, signature=None, body=raw, token=TOKEN)
    signature = body_signature(raw, TOKEN)
    assert signature.startswith("sha256=")
    assert len(signature) == len("sha256=") + 64
    verify_webhook_auth(authorization=good, signature=signature, body=raw, token=TOKEN)
    with pytest.raises(AuthenticationError, match="bearer") as info:
        verify_webhook_auth(authorization="Bearer nope", signature=None, body=raw, token=TOKEN)
    assert TOKEN.value not in str(info.value)
    with pytest.raises(AuthenticationError, match=f"invalid {SIGNATURE_HEADER}"):
        verify_webhook_auth(authorization=good, signature=signature, body=raw + b" ", token=TOKEN)
    with pytest.raises(AuthenticationError, match=f"missing {SIGNATURE_HEADER}"):
        verify_webhook_auth(authorization=good, signature=None, body=raw, token=TOKEN, require_signature=True)


def test_plan_downgrade_covers_every_delivery_kind() -> None:
    [request] = downgrade_requests(parse_webhook_payload(body(payload())))
    ignored = plan_downgrade([], "enforce", set())
    assert (ignored.result, ignored.target_mode, ignored.new_requests) == ("ignored", None, ())
    downgraded = plan_downgrade([request], "enforce", set())
    assert downgraded.result == "downgraded"
    assert downgraded.target_mode == "warn"
    assert downgraded.new_requests == (request,)
    duplicate = plan_downgrade([request], "enforce", {request.idempotency_key})
    assert (duplicate.result, duplicate.target_mode) == ("duplicate", None)
    for lenient in ("warn", "off"):
        unchanged = plan_downgrade([request], lenient, set())
        assert (unchanged.result, unchanged.target_mode) == ("unchanged", None)
        assert unchanged.new_requests == (request,)  # still recorded, so a later replay is a duplicate
    results = {p.result for p in (ignored, downgraded, duplicate, unchanged)}
    assert results <= set(WEBHOOK_RESULTS)
