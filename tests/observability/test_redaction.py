"""The logging safety net: no credential reaches a line, no traceback carries locals, lines stay small."""

from __future__ import annotations

import json
import logging
import secrets
import string
import time
from typing import Any

import pytest
import structlog
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fundmodel.observability.redaction import (
    MAX_LINE_BYTES,
    MAX_VALUE_CHARS,
    REDACTED,
    BoundedJSONRenderer,
    is_sensitive_key,
    redact_event,
    redact_text,
)

from .conftest import LogCapture

_TOKEN68 = string.ascii_letters + string.digits + "-._~+/"
api_keys = st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=8, max_size=43).map(
    lambda tail: "fmk_" + tail
)
bearer_tokens = st.text(alphabet=_TOKEN68, min_size=8, max_size=64)
passwords = st.text(alphabet=string.ascii_letters + string.digits + "!#$%^*()-_+", min_size=6, max_size=30)
surrounding_text = st.text(max_size=60)


def _render(event: dict[str, Any]) -> str:
    return BoundedJSONRenderer()(None, "info", redact_event(None, "info", event))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abc.DEF-123", "Authorization: Bearer " + REDACTED),
        ("key fmk_Zx9-_abcdefgh used", f"key fmk_{REDACTED} used"),
        ("postgresql+psycopg://app:s3cr3t@db:5432/fm", f"postgresql+psycopg://app:{REDACTED}@db:5432/fm"),
        ("host=db user=app password=hunter2 dbname=fm", f"host=db user=app password={REDACTED} dbname=fm"),
        ("GET /x?api_key=abc&page=2&token=zz", f"GET /x?api_key={REDACTED}&page=2&token={REDACTED}"),
        ('{"db_password": "two words", "n": 1}', f'{{"db_password": "{REDACTED}", "n": 1}}'),
        ("{'x-api-key': 'k-123', 'accept': '*/*'}", f"{{'x-api-key': '{REDACTED}', 'accept': '*/*'}}"),
        ("Basic dXNlcjpwYXNz", "Basic " + REDACTED),
    ],
)
def test_credentials_in_text_are_redacted(text: str, expected: str) -> None:
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "ops_token_not_configured",
        "set STAGE_WEBHOOK_TOKEN_FILE (or STAGE_WEBHOOK_TOKEN) to a secret of at least 32 characters",
        "GET /api/funds/12/companies?stage=seed&limit=50",
        'connection to server at "127.0.0.1", port 5432 failed: Connection refused',
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact_text(text) == text


@pytest.mark.parametrize(
    ("key", "sensitive"),
    [
        ("Authorization", True),
        ("x-api-key", True),
        (b"x-api-key", True),
        ("admin_token", True),
        ("DATABASE_PASSWORD", True),
        ("client_secret", True),
        ("Set-Cookie", True),
        ("pwd", True),
        ("group_key", False),
        ("request_id", False),
        ("path", False),
        ("event", False),
        (3, False),
    ],
)
def test_sensitive_keys(key: object, sensitive: bool) -> None:
    assert is_sensitive_key(key) is sensitive


def test_values_under_sensitive_keys_are_redacted_at_any_depth() -> None:
    key = "fmk_" + secrets.token_urlsafe(32)
    event = {
        "event": "request",
        "headers": {"Authorization": "opaque-value-1", "accept": "application/json"},
        "scope": {"headers": [(b"authorization", b"opaque-value-2"), (b"host", b"example")]},
        "context": [{"cookie": "opaque-value-3"}, {"note": f"presented {key}"}],
        "admin_token": "opaque-value-4",
        "token_configured": True,
        "password": None,
    }
    redacted = redact_event(None, "info", event)
    line = json.dumps(redacted)
    for secret in ("opaque-value-1", "opaque-value-2", "opaque-value-3", "opaque-value-4", key):
        assert secret not in line
    assert redacted["headers"]["accept"] == "application/json"
    assert redacted["scope"]["headers"][1] == ["host", "example"]
    assert redacted["token_configured"] is True  # booleans and None say nothing secret
    assert redacted["password"] is None


class _LeakyObject:
    def __init__(self, secret: str) -> None:
        self.secret = secret

    def __repr__(self) -> str:
        return f"_LeakyObject(url='postgresql://app:{self.secret}@db/fm')"


class _BrokenRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def test_objects_are_represented_then_redacted() -> None:
    redacted = redact_event(
        None, "info", {"event": "x", "thing": _LeakyObject("pw-123456"), "bad": _BrokenRepr()}
    )
    assert "pw-123456" not in redacted["thing"]
    assert redacted["bad"] == "<unrepresentable _BrokenRepr: RuntimeError>"


def _texts_with(key: str, token: str, password: str, before: str, after: str) -> list[str]:
    return [
        f"{before} {key}{after}",
        f"{before} Authorization: Bearer {token} {after}",
        f"{before} postgresql+psycopg://app:{password}@db:5432/fm {after}",
        f"{before} password={password} {after}",
    ]


@settings(max_examples=200, deadline=None)
@given(key=api_keys, token=bearer_tokens, password=passwords, before=surrounding_text, after=surrounding_text)
def test_no_credential_survives_in_any_text(
    key: str, token: str, password: str, before: str, after: str
) -> None:
    # Only secrets that the surrounding text does not spell by itself can be looked for in the line.
    # No secret alphabet has "[", so none can span the redaction marker.
    baseline = _render({"event": "e", "items": _texts_with("[R]", "[R]", "[R]", before, after)})
    assume(all(secret not in baseline for secret in (key, token, password)))
    texts = _texts_with(key, token, password, before, after)
    line = _render({"event": "e", "items": texts, "nested": {"message": " | ".join(texts)}})
    for secret in (key, token, password):
        assert secret not in line


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=3000),
    lambda children: (
        st.lists(children, max_size=40) | st.dictionaries(st.text(max_size=20), children, max_size=40)
    ),
    max_leaves=400,
)


@settings(max_examples=100, deadline=None)
@given(payload=json_values, event=st.text(max_size=50))
def test_every_line_is_one_json_object_within_the_limit(payload: Any, event: str) -> None:
    line = _render({"event": event, "level": "error", "payload": payload})
    assert "\n" not in line
    assert len(line.encode("utf-8")) <= MAX_LINE_BYTES
    parsed = json.loads(line)
    assert parsed["event"] == event[:128] or parsed["event"].startswith(event[:64])


def test_a_small_event_is_rendered_unchanged() -> None:
    event = {"event": "fund_created", "level": "info", "fund_id": 7, "name": "Fund I"}
    assert json.loads(_render(dict(event))) == event


def test_redaction_caps_values_and_lists_keeping_their_ends() -> None:
    event = {"event": "e", "detail": "x" * 100_000, "items": list(range(1000))}
    redacted = redact_event(None, "info", event)
    assert redacted["detail"].startswith("x" * 4096)
    assert redacted["detail"].endswith("...[truncated 95904 chars]")
    assert redacted["items"][:2] == [0, 1]
    assert redacted["items"][-1] == 999
    assert "[900 items omitted]" in redacted["items"]


def test_an_oversized_event_is_cut_with_markers_keeping_the_essentials() -> None:
    frames = [{"filename": f"/src/module_{i}.py", "lineno": i, "name": f"f{i}"} for i in range(400)]
    event = {"event": "unhandled_error", "request_id": "r-1", "detail": "x" * 100_000, "frames": frames}
    line = BoundedJSONRenderer()(None, "error", event)
    assert len(line.encode("utf-8")) <= MAX_LINE_BYTES
    parsed = json.loads(line)
    assert parsed["log_truncated"] is True
    assert parsed["request_id"] == "r-1"
    assert "[truncated" in parsed["detail"]
    assert parsed["frames"][-1]["name"] == "f399"  # the frames nearest to the error are kept
    assert any(isinstance(item, str) and "omitted" in item for item in parsed["frames"])


def test_only_the_essentials_remain_when_nothing_else_fits() -> None:
    # Keys are never cut: six of these do not fit in 1 KiB, whatever happens to the values.
    event = {"event": "e", "level": "error", **{f"{i}{'k' * 300}": "v" for i in range(1000)}}
    parsed = json.loads(BoundedJSONRenderer(1024)(None, "error", event))
    assert parsed == {
        "event": "e",
        "level": "error",
        "log_truncated": True,
        "original_bytes": len(json.dumps(event)),
    }


def test_the_renderer_refuses_a_limit_without_room() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        BoundedJSONRenderer(100)


def _fail_holding_a_key(key: str) -> None:
    headers = [(b"authorization", f"Bearer {key}".encode()), (b"x-api-key", key.encode())]
    raise RuntimeError(f"lookup failed after {len(headers)} headers")


def test_structlog_tracebacks_have_frames_without_locals(log_capture: LogCapture) -> None:
    key = "fmk_" + secrets.token_urlsafe(32)
    try:
        _fail_holding_a_key(key)
    except RuntimeError:
        structlog.get_logger("fundmodel.test").exception("unhandled_error", path="/boom")
    [line] = log_capture.lines()
    assert key not in line
    [event] = log_capture.events()
    [exception] = event["exception"]
    assert exception["exc_type"] == "RuntimeError"
    frame = exception["frames"][-1]
    assert frame["name"] == "_fail_holding_a_key"
    assert {"filename", "lineno", "name"} <= frame.keys()
    assert "locals" not in frame


def test_stdlib_records_are_redacted_and_bounded_too(log_capture: LogCapture) -> None:
    key = "fmk_" + secrets.token_urlsafe(32)
    try:
        raise ConnectionError(f"could not reach postgresql://app:pw-{key[-6:]}@db/fm")
    except ConnectionError:
        logging.getLogger("uvicorn.error").exception(
            "Exception in ASGI application %s", f"Authorization: Bearer {key}", extra={"api_key": key}
        )
    logging.getLogger("alembic").warning("big: %s", "y" * 50_000)
    lines = log_capture.lines()
    assert len(lines) == 2
    assert all(len(line.encode("utf-8")) <= MAX_LINE_BYTES for line in lines)
    assert key not in lines[0]
    assert f"pw-{key[-6:]}" not in lines[0]
    first, second = log_capture.events()
    assert first["logger"] == "uvicorn.error"
    assert first["api_key"] == REDACTED
    assert "locals" not in first["exception"][0]["frames"][-1]
    assert "[truncated" in second["event"]


def test_long_and_pathological_strings_are_redacted_in_linear_time() -> None:
    # Unbounded patterns made one 100 KB value take 30 s; cut first and never backtrack.
    shapes = ["x" * 1_000_000, "a:" * 500_000, "a=" * 500_000, "ab://" * 200_000, 'a="' * 300_000]
    started = time.perf_counter()
    for text in shapes:
        assert len(redact_text(text)) < MAX_VALUE_CHARS + 100
    assert time.perf_counter() - started < 2.0
