"""Settings: defaults, one-line errors for bad values, secrets from files."""

from __future__ import annotations

import pytest

from fundmodel.errors import ConfigurationError
from fundmodel.settings import DEFAULT_DATABASE_URL, Settings, load_settings
from fundmodel.validation import ValidationMode


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "STAGE_VALIDATION_MODE", "APP_ENV"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.stage_validation_mode is ValidationMode.WARN
    assert settings.app_env == "development"
    assert settings.stage_mode_cache_ttl_seconds == 2.0
    assert settings.anonymous_dev_client_allowed


def test_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAGE_VALIDATION_MODE", " Enforce ")
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("STAGE_SUNSET_DATE", "2030-01-01")
    settings = load_settings()
    assert settings.stage_validation_mode is ValidationMode.ENFORCE
    assert settings.stage_sunset_date.isoformat() == "2030-01-01T00:00:00+00:00"
    assert not settings.anonymous_dev_client_allowed


def test_invalid_mode_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAGE_VALIDATION_MODE", "strict")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    message = caught.value.detail
    assert "\n" not in message
    assert "STAGE_VALIDATION_MODE" in message
    assert "'strict'" in message
    assert "'enforce'" in message


def test_sunset_must_follow_deprecation() -> None:
    with pytest.raises(ConfigurationError, match="STAGE_SUNSET_DATE"):
        load_settings(stage_deprecation_date="2027-01-01", stage_sunset_date="2026-01-01")
