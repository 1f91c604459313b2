"""The shared secrets of the ops API (webhook and admin bearer tokens), read from the settings.

Tokens are read on every use, so rotating a token file needs no restart. ``load_token`` enforces the
rules (file or variable, not both; at least 32 characters; no whitespace) and never puts a token in
an error message.
"""

from __future__ import annotations

from pathlib import Path

import structlog
from pydantic import SecretStr

from fundmodel.errors import AuthenticationError, ConfigurationError, NotConfiguredError
from fundmodel.observability.alertmanager import SecretToken, bearer_token_matches, load_token
from fundmodel.settings import Settings

__all__ = [
    "ADMIN_TOKEN_ENV",
    "WEBHOOK_TOKEN_ENV",
    "admin_token",
    "require_admin",
    "require_token",
    "webhook_token",
]

WEBHOOK_TOKEN_ENV = "STAGE_WEBHOOK_TOKEN"  # noqa: S105 - a variable name, not a secret
ADMIN_TOKEN_ENV = "ADMIN_TOKEN"  # noqa: S105 - a variable name, not a secret

_log = structlog.get_logger("fundmodel.ops")


def _as_environment(name: str, path: Path | None, value: SecretStr | None) -> dict[str, str]:
    environment: dict[str, str] = {}
    if path is not None:
        environment[f"{name}_FILE"] = str(path)
    if value is not None:
        environment[name] = value.get_secret_value()
    return environment


def webhook_token(settings: Settings) -> SecretToken | None:
    """The Alertmanager webhook token (``STAGE_WEBHOOK_TOKEN_FILE`` / ``STAGE_WEBHOOK_TOKEN``), or None."""
    environment = _as_environment(
        WEBHOOK_TOKEN_ENV, settings.stage_webhook_token_file, settings.stage_webhook_token
    )
    return load_token(environment, WEBHOOK_TOKEN_ENV)


def admin_token(settings: Settings) -> SecretToken | None:
    """The operators' token (``ADMIN_TOKEN_FILE`` / ``ADMIN_TOKEN``), or None."""
    environment = _as_environment(ADMIN_TOKEN_ENV, settings.admin_token_file, settings.admin_token)
    return load_token(environment, ADMIN_TOKEN_ENV)


def require_token(
    loaded: SecretToken | None,
    *,
    variable: str,
    feature: str,
) -> SecretToken:
    """``loaded`` or :class:`NotConfiguredError` (HTTP 503), logging why: never run unauthenticated."""
    if loaded is None:
        _log.error(
            "ops_token_not_configured",
            feature=feature,
            detail=f"set {variable}_FILE (or {variable}) to a secret of at least 32 characters; "
            f"until then {feature} answers 503",
        )
        raise NotConfiguredError(f"{feature} is not configured on this server")
    return loaded


def require_admin(settings: Settings, authorization: str | None) -> None:
    """Check an ``Authorization: Bearer`` header against the admin token (constant time)."""
    try:
        loaded = admin_token(settings)
    except ConfigurationError as exc:
        _log.error("ops_token_invalid", feature="the ops mode API", detail=exc.detail)
        raise NotConfiguredError("the ops mode API is not configured on this server") from None
    token = require_token(loaded, variable=ADMIN_TOKEN_ENV, feature="the ops mode API")
    if not bearer_token_matches(authorization, token):
        _log.warning("ops_admin_unauthorized", detail="missing or invalid admin bearer token")
        raise AuthenticationError("missing or invalid admin bearer token")
