"""Deprecation signalling: the response headers of validated endpoints and the deprecations catalogue.

* ``Deprecation: @<epoch-seconds>`` (RFC 9745) — when non-canonical stage spellings were deprecated.
* ``Sunset: <IMF-fixdate>`` (RFC 8594) — a fixed, configured date after which aliases stop being accepted.
* ``Link: <…/api/deprecations>; rel="deprecation", <…>; rel="sunset"`` — where to read about both.
* ``X-Stage-Validation-Mode: warn|enforce`` — the mode that applied to this client's request.

In ``off`` no header is sent (legacy behaviour). In ``warn`` and ``enforce`` the mode header is always
sent, and the deprecation headers when the request relied on deprecated stage handling: a deprecated or
unknown stage name, or weights that had to be renormalized (``decision.deprecated_input``). Header values
are built from configuration only, never from client input, and pass through :func:`safe_header_value`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from fundmodel.errors import ConfigurationError
from fundmodel.validation.mode import ModeState, ValidationMode

MAX_HEADER_VALUE_LENGTH = 512
MODE_HEADER = "X-Stage-Validation-Mode"


@dataclass(frozen=True, slots=True)
class DeprecationPolicy:
    deprecated_at: datetime
    sunset_at: datetime

    def __post_init__(self) -> None:
        for name in ("deprecated_at", "sunset_at"):
            if getattr(self, name).tzinfo is None:
                raise ConfigurationError(f"{name} must be timezone-aware")
        if self.sunset_at <= self.deprecated_at:
            raise ConfigurationError("the sunset date must come after the deprecation date")

    def sunset_passed(self, now: datetime) -> bool:
        return now >= self.sunset_at

    @property
    def deprecation_header(self) -> str:
        return f"@{int(self.deprecated_at.timestamp())}"

    @property
    def sunset_header(self) -> str:
        return format_datetime(self.sunset_at.astimezone(UTC), usegmt=True)


def safe_header_value(value: str, *, max_length: int = MAX_HEADER_VALUE_LENGTH) -> str:
    """Printable ASCII only (no CR/LF or other controls), bounded in length; anything else is escaped."""
    escaped = "".join(
        ch if " " <= ch <= "~" else ch.encode("unicode_escape").decode("ascii").replace("\\", "%5C")
        for ch in value[:max_length]
    )
    return escaped[:max_length]


def validation_headers(
    mode: ValidationMode,
    decision_deprecated: bool,
    policy: DeprecationPolicy,
    *,
    deprecations_url: str,
) -> dict[str, str]:
    """The headers for a response to a request validated under ``mode``; see the module docstring."""
    if mode is ValidationMode.OFF:
        return {}
    headers = {MODE_HEADER: mode.value}
    if decision_deprecated:
        link = safe_header_value(deprecations_url)
        headers["Deprecation"] = policy.deprecation_header
        headers["Sunset"] = policy.sunset_header
        headers["Link"] = f'<{link}>; rel="deprecation"; type="application/json", <{link}>; rel="sunset"'
    return headers


def deprecations_catalogue(
    policy: DeprecationPolicy,
    state: ModeState,
    *,
    docs_url: str,
    affected_endpoints: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """The active deprecations, for ``GET /api/deprecations``."""
    common = {
        "docs": docs_url,
        "deprecatedAt": policy.deprecated_at.astimezone(UTC).isoformat(),
        "sunsetAt": policy.sunset_at.astimezone(UTC).isoformat(),
        "currentMode": state.mode.value,
        "canaryPercent": state.canary_percent,
        "affectedEndpoints": list(affected_endpoints),
    }
    return [
        {
            "id": "stage-name-aliases",
            "title": (
                "Non-canonical stage spellings ('Series A', 'seriesA', 'series-c+', ...) are deprecated; "
                "send canonical snake_case names (pre_seed, seed, series_a, ...). They stay accepted, "
                "normalized and flagged until the sunset date."
            ),
            **common,
        },
        {
            "id": "lenient-unknown-stages",
            "title": (
                "Unknown stage names and stage distributions that do not sum to 1 are being rejected "
                "progressively (off -> warn -> enforce by canary percentage) with 400 INVALID_STAGE / "
                "INVALID_STAGE_DISTRIBUTION."
            ),
            **common,
        },
    ]
