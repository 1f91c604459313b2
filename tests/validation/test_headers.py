from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fundmodel.errors import ConfigurationError
from fundmodel.validation import (
    DeprecationPolicy,
    ModeState,
    ValidationMode,
    deprecations_catalogue,
    safe_header_value,
    validation_headers,
)

POLICY = DeprecationPolicy(
    deprecated_at=datetime(2026, 11, 1, tzinfo=UTC),
    sunset_at=datetime(2027, 5, 1, 12, 30, tzinfo=timezone(timedelta(hours=2))),
)
URL = "https://api.example.test/api/deprecations"


def test_off_sends_no_headers() -> None:
    assert validation_headers(ValidationMode.OFF, True, POLICY, deprecations_url=URL) == {}


def test_mode_header_without_deprecated_input() -> None:
    headers = validation_headers(ValidationMode.WARN, False, POLICY, deprecations_url=URL)
    assert headers == {"X-Stage-Validation-Mode": "warn"}


def test_deprecation_headers_follow_the_rfcs() -> None:
    headers = validation_headers(ValidationMode.ENFORCE, True, POLICY, deprecations_url=URL)
    assert headers["X-Stage-Validation-Mode"] == "enforce"
    assert headers["Deprecation"] == f"@{int(datetime(2026, 11, 1, tzinfo=UTC).timestamp())}"
    assert headers["Sunset"] == "Sat, 01 May 2027 10:30:00 GMT"  # IMF-fixdate, converted to GMT
    assert headers["Link"] == (f'<{URL}>; rel="deprecation"; type="application/json", <{URL}>; rel="sunset"')


@given(st.text(max_size=2000))
def test_safe_header_values_are_printable_ascii_and_bounded(value: str) -> None:
    safe = safe_header_value(value)
    assert len(safe) <= 512
    assert all(" " <= ch <= "~" for ch in safe)
    assert "\r" not in safe
    assert "\n" not in safe


def test_policy_is_checked() -> None:
    with pytest.raises(ConfigurationError, match="after"):
        DeprecationPolicy(POLICY.sunset_at, POLICY.deprecated_at)
    with pytest.raises(ConfigurationError, match="timezone"):
        DeprecationPolicy(datetime(2026, 1, 1), POLICY.sunset_at)
    assert POLICY.sunset_passed(datetime(2027, 6, 1, tzinfo=UTC))
    assert not POLICY.sunset_passed(datetime(2027, 1, 1, tzinfo=UTC))


def test_catalogue_lists_both_deprecations_with_the_current_mode() -> None:
    entries = deprecations_catalogue(
        POLICY,
        ModeState(ValidationMode.ENFORCE, 10),
        docs_url="/docs/stages",
        affected_endpoints=["POST /api/portfolio/strategies"],
    )
    assert [e["id"] for e in entries] == ["stage-name-aliases", "lenient-unknown-stages"]
    for entry in entries:
        assert entry["currentMode"] == "enforce"
        assert entry["canaryPercent"] == 10
        assert entry["sunsetAt"] == "2027-05-01T10:30:00+00:00"
        assert entry["affectedEndpoints"] == ["POST /api/portfolio/strategies"]
