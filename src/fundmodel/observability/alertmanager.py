"""Pure parts of the Alertmanager auto-downgrade webhook: payload model, decision, authentication.

The HTTP route (in the API layer) reads the raw body, calls :func:`verify_webhook_auth`, then
:func:`parse_webhook_payload` and :func:`downgrade_requests`, and applies :func:`downgraded_mode`
to the stored mode. Nothing here does I/O except :func:`load_token`, which reads the token file.

Payload: Alertmanager's webhook message, version "4" (``notify/webhook`` in Alertmanager: the
template data plus ``version``, ``groupKey`` and ``truncatedAlerts``). Unknown fields are allowed so
newer Alertmanager releases keep working.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fundmodel.errors import AuthenticationError, ConfigurationError, WebhookPayloadError

__all__ = [
    "DEFAULT_DOWNGRADE_LABEL",
    "MAX_PAYLOAD_BYTES",
    "MIN_TOKEN_CHARS",
    "SIGNATURE_HEADER",
    "AlertmanagerAlert",
    "AlertmanagerPayload",
    "DowngradePlan",
    "DowngradeRequest",
    "SecretToken",
    "bearer_token_matches",
    "body_signature",
    "downgrade_requests",
    "downgraded_mode",
    "load_token",
    "parse_label_filter",
    "parse_webhook_payload",
    "plan_downgrade",
    "verify_webhook_auth",
]

DEFAULT_DOWNGRADE_LABEL: tuple[str, str] = ("action", "downgrade_stage_validation")
MIN_TOKEN_CHARS = 32
MAX_PAYLOAD_BYTES = 1024 * 1024
SIGNATURE_HEADER = "X-Fundmodel-Signature"
_SIGNATURE_PREFIX = "sha256="


class AlertmanagerAlert(BaseModel):
    """One alert of a notification."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)

    status: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime | None = Field(default=None, alias="endsAt")
    generator_url: str = Field(default="", alias="generatorURL")
    fingerprint: str = Field(min_length=1)


class AlertmanagerPayload(BaseModel):
    """The body Alertmanager POSTs to a ``webhook_config`` URL (version "4")."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)

    version: Literal["4"]
    group_key: str = Field(alias="groupKey")
    status: Literal["firing", "resolved"]
    receiver: str = ""
    alerts: list[AlertmanagerAlert]
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    common_annotations: dict[str, str] = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field(default="", alias="externalURL")
    truncated_alerts: int = Field(default=0, ge=0, alias="truncatedAlerts")


@dataclass(frozen=True)
class DowngradeRequest:
    """A firing alert asking for the downgrade, with what the audit row records."""

    alert_name: str
    fingerprint: str
    group_key: str
    starts_at: datetime
    external_url: str
    generator_url: str

    @property
    def idempotency_key(self) -> str:
        """Stable id of (groupKey, fingerprint, startsAt): a redelivery maps to the same key."""
        parts = [self.group_key, self.fingerprint, self.starts_at.astimezone(UTC).isoformat()]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def parse_webhook_payload(body: bytes, *, max_bytes: int = MAX_PAYLOAD_BYTES) -> AlertmanagerPayload:
    """Validate a raw webhook body; WebhookPayloadError (HTTP 400) says what is wrong."""
    if len(body) > max_bytes:
        raise WebhookPayloadError(f"webhook body exceeds {max_bytes} bytes")
    try:
        return AlertmanagerPayload.model_validate_json(body)
    except ValidationError as exc:
        errors = [
            {"loc": ".".join(str(part) for part in error["loc"]), "msg": error["msg"]}
            for error in exc.errors(include_url=False, include_input=False)
        ]
        summary = "; ".join(f"{e['loc'] or 'body'}: {e['msg']}" for e in errors[:5])
        raise WebhookPayloadError(
            f"not an Alertmanager version-4 webhook payload: {summary}", errors=errors
        ) from None


def downgrade_requests(
    payload: AlertmanagerPayload,
    *,
    label: tuple[str, str] = DEFAULT_DOWNGRADE_LABEL,
) -> list[DowngradeRequest]:
    """Firing alerts of ``payload`` that carry ``label`` (resolved ones never act), deduplicated."""
    name, value = label
    requests: dict[str, DowngradeRequest] = {}
    for alert in payload.alerts:
        if alert.status != "firing" or alert.labels.get(name) != value:
            continue
        request = DowngradeRequest(
            alert_name=alert.labels.get("alertname", ""),
            fingerprint=alert.fingerprint,
            group_key=payload.group_key,
            starts_at=alert.starts_at,
            external_url=payload.external_url,
            generator_url=alert.generator_url,
        )
        requests.setdefault(request.idempotency_key, request)
    return list(requests.values())


def downgraded_mode(current_mode: str) -> str | None:
    """The mode after an auto-downgrade, or None when nothing changes.

    Only ever lowers strictness: enforce (at any canary percentage) becomes warn; warn and off stay.
    """
    return "warn" if current_mode == "enforce" else None


@dataclass(frozen=True)
class DowngradePlan:
    """What the webhook should do with one delivery; ``result`` is the metrics/log result label."""

    result: Literal["downgraded", "unchanged", "duplicate", "ignored"]
    target_mode: str | None
    new_requests: tuple[DowngradeRequest, ...]


def plan_downgrade(
    requests: Sequence[DowngradeRequest], current_mode: str, seen_keys: Collection[str]
) -> DowngradePlan:
    """Decide a delivery: nothing to act on, a redelivery, already lenient, or enforce -> warn.

    ``seen_keys`` are the idempotency keys already applied (from the audit store). Requests not seen
    before are returned so the caller can record them even when the mode does not change.
    """
    if not requests:
        return DowngradePlan("ignored", None, ())
    new = tuple(r for r in requests if r.idempotency_key not in seen_keys)
    if not new:
        return DowngradePlan("duplicate", None, ())
    target = downgraded_mode(current_mode)
    if target is None:
        return DowngradePlan("unchanged", None, new)
    return DowngradePlan("downgraded", target, new)


def parse_label_filter(text: str) -> tuple[str, str]:
    """``name=value`` (as configured) -> (name, value); ConfigurationError when malformed."""
    name, sep, value = text.partition("=")
    name, value = name.strip(), value.strip().strip('"')
    if not sep or not name or not value:
        raise ConfigurationError(f"label filter must look like name=value, got {text!r}")
    return name, value


@dataclass(frozen=True)
class SecretToken:
    """A shared secret; never shown by repr() or str()."""

    value: str = field(repr=False)
    source: str

    def __str__(self) -> str:
        return f"<secret from {self.source}>"


def load_token(env: Mapping[str, str], name: str) -> SecretToken | None:
    """The token from ``<name>_FILE`` (a path) or ``<name>`` (the value); None when neither is set.

    Setting both is refused rather than silently preferring one. Tokens shorter than 32 characters
    are refused. Error messages name the variable or file, never the token.
    """
    file_var = f"{name}_FILE"
    path_text = env.get(file_var, "").strip()
    inline = env.get(name, "")
    if path_text and inline:
        raise ConfigurationError(f"set either {file_var} or {name}, not both")
    if path_text:
        path = Path(path_text)
        try:
            token = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise ConfigurationError(f"{file_var}: cannot read {path}: {reason}") from None
        source = f"{file_var} ({path})"
    elif inline:
        token = inline.strip()
        source = name
    else:
        return None
    if len(token) < MIN_TOKEN_CHARS:
        raise ConfigurationError(
            f"{source}: token must be at least {MIN_TOKEN_CHARS} characters, got {len(token)}"
        )
    if any(char.isspace() for char in token):
        raise ConfigurationError(f"{source}: token must not contain whitespace")
    return SecretToken(value=token, source=source)


def bearer_token_matches(authorization: str | None, token: SecretToken) -> bool:
    """Whether an ``Authorization: Bearer <token>`` header carries ``token`` (constant time)."""
    if authorization is None:
        return False
    scheme, _, presented = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(
        presented.strip().encode("utf-8", "surrogatepass"), token.value.encode("utf-8")
    )


def body_signature(body: bytes, token: SecretToken) -> str:
    """``sha256=<hex>``: the HMAC-SHA256 of the raw body, keyed with the webhook token."""
    digest = hmac.new(token.value.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return _SIGNATURE_PREFIX + digest


def verify_webhook_auth(
    *,
    authorization: str | None,
    signature: str | None,
    body: bytes,
    token: SecretToken,
    require_signature: bool = False,
) -> None:
    """Raise AuthenticationError unless the bearer token (and the signature, if sent) is right.

    Alertmanager cannot sign bodies, so the signature is optional unless ``require_signature``;
    a signature that is sent must always be valid.
    """
    if not bearer_token_matches(authorization, token):
        raise AuthenticationError("missing or invalid bearer token")
    if signature is None:
        if require_signature:
            raise AuthenticationError(f"missing {SIGNATURE_HEADER} body signature")
        return
    expected = body_signature(body, token).encode("ascii")
    if not hmac.compare_digest(signature.strip().encode("utf-8", "surrogatepass"), expected):
        raise AuthenticationError(f"invalid {SIGNATURE_HEADER} body signature")
