"""Ops endpoints of stage validation: the Alertmanager auto-downgrade webhook and the operators' mode API.

Thin: authentication, parsing and the store writes live in :mod:`fundmodel.mode_ops`.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import Field

from fundmodel.api.dependencies import AppStateDep
from fundmodel.api.openapi_docs import body_responses
from fundmodel.api.problems import problem_responses
from fundmodel.apimodel import ApiModel, StorableText, StrictNumber
from fundmodel.db.mode_store import ModeChange
from fundmodel.mode_ops.auto_downgrade import AutoDowngrade, WebhookOutcome
from fundmodel.mode_ops.manual import set_mode_over_http
from fundmodel.mode_ops.tokens import require_admin
from fundmodel.observability.alertmanager import MAX_PAYLOAD_BYTES, SIGNATURE_HEADER
from fundmodel.validation import ModeState, ValidationMode
from fundmodel.validation.brownout import effective_state
from fundmodel.validation.mode import MAX_CANARY_CLIENTS

router = APIRouter(prefix="/_ops/stage-validation", tags=["operations"])

MAX_RECENT_CHANGES = 100
# Never report an infinite age (before the first read) as JSON.
_MAX_REPORTED_AGE_SECONDS = 1e9

# The raw body is read (and HMAC-checked) by the route, so its schema is documented by hand.
_LABELS_SCHEMA: dict[str, Any] = {"type": "object", "additionalProperties": {"type": "string"}}
_PAYLOAD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["version", "groupKey", "status", "alerts"],
    "properties": {
        "version": {"type": "string", "enum": ["4"]},
        "groupKey": {"type": "string"},
        "status": {"type": "string", "enum": ["firing", "resolved"]},
        "receiver": {"type": "string"},
        "externalURL": {"type": "string"},
        "truncatedAlerts": {"type": "integer", "minimum": 0},
        "groupLabels": _LABELS_SCHEMA,
        "commonLabels": _LABELS_SCHEMA,
        "commonAnnotations": _LABELS_SCHEMA,
        "alerts": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["status", "startsAt", "fingerprint"],
                "properties": {
                    "status": {"type": "string", "enum": ["firing", "resolved"]},
                    "labels": _LABELS_SCHEMA,
                    "annotations": _LABELS_SCHEMA,
                    "startsAt": {"type": "string", "format": "date-time"},
                    "endsAt": {"type": "string", "format": "date-time"},
                    "generatorURL": {"type": "string"},
                    "fingerprint": {"type": "string", "minLength": 1},
                },
            },
        },
    },
}

_webhook_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="StageWebhookToken",
    description="`Authorization: Bearer <STAGE_WEBHOOK_TOKEN>` (Alertmanager http_config.authorization).",
)
_admin_bearer = HTTPBearer(
    auto_error=False, scheme_name="AdminToken", description="`Authorization: Bearer <ADMIN_TOKEN>`."
)


class ModeValue(ApiModel):
    mode: ValidationMode
    canary_percent: float = Field(description="Percent of clients enforced (only meaningful in enforce).")
    canary_clients: list[str] = Field(
        description="API key names always enforced, whatever the percentage (only meaningful in enforce)."
    )
    aliases_rejected: bool = Field(
        description="The Sunset step: enforced clients' deprecated aliases are rejected (enforce only)."
    )

    @classmethod
    def of(cls, state: ModeState) -> ModeValue:
        return cls(
            mode=state.mode,
            canary_percent=state.canary_percent,
            canary_clients=state.sorted_clients,
            aliases_rejected=state.aliases_rejected,
        )


class WebhookResult(ApiModel):
    result: str = Field(
        description="downgraded, unchanged (already warn/off), duplicate (delivery seen before) or "
        "ignored (no firing alert with the downgrade label)."
    )
    matching_alerts: int = Field(description="Firing alerts of this delivery carrying the downgrade label.")
    previous: ModeValue | None = Field(
        description="The mode in force before this delivery: the stored mode, raised by a brownout window "
        "in force (None: not read)."
    )
    current: ModeValue | None = Field(description="The stored mode after this delivery (None: not read).")
    audit_id: int | None = Field(
        description="Audit row of the downgrade, when one was written (none when only a brownout ended)."
    )
    ended_brownouts: list[int] = Field(
        default_factory=list, description="The brownout windows this delivery ended (their ids)."
    )

    @classmethod
    def of(cls, outcome: WebhookOutcome) -> WebhookResult:
        return cls(
            result=outcome.result,
            matching_alerts=outcome.matching_alerts,
            previous=ModeValue.of(outcome.previous) if outcome.previous else None,
            current=ModeValue.of(outcome.current) if outcome.current else None,
            audit_id=outcome.audit_id,
            ended_brownouts=list(outcome.ended_brownouts),
        )


class WorkerMode(ApiModel):
    pid: int = Field(description="The worker process that answered.")
    mode: ValidationMode = Field(
        description="The mode this worker applies now (its cached view, a brownout window in force included)."
    )
    canary_percent: float
    canary_clients: list[str] = Field(description="The named canary clients this worker applies.")
    aliases_rejected: bool
    cache_age_seconds: float = Field(description="Seconds since this worker last read the store.")


class AuditEntry(ApiModel):
    id: int
    changed_at: datetime
    previous: ModeValue
    current: ModeValue
    actor: str
    reason: str
    source: str = Field(description="manual, alertmanager or rollout.")
    extra: dict[str, Any] = Field(description="Source details (alert name, fingerprint, groupKey, ...).")

    @classmethod
    def of(cls, change: ModeChange) -> AuditEntry:
        return cls(
            id=change.audit_id,
            changed_at=change.changed_at,
            previous=ModeValue.of(change.old),
            current=ModeValue.of(change.new),
            actor=change.actor,
            reason=change.reason,
            source=change.source,
            extra=change.extra,
        )


class ModeStatus(ApiModel):
    mode: ValidationMode = Field(description="The stored mode every worker converges to within the TTL.")
    canary_percent: float
    canary_clients: list[str] = Field(description="Named canary clients (API key names).")
    aliases_rejected: bool = Field(description="The Sunset step is on (enforce only).")
    source: str = Field(description="store, or default (STAGE_VALIDATION_MODE: nothing stored yet).")
    version: int
    updated_at: datetime | None
    updated_by: str | None
    worker: WorkerMode
    recent_changes: list[AuditEntry] = Field(description="The latest audited changes, newest first.")


class ModeUpdate(ApiModel):
    mode: ValidationMode
    canary_percent: StrictNumber = Field(
        default=100.0, ge=0, le=100, description="Percent of clients enforced."
    )
    actor: StorableText = Field(min_length=1, max_length=100, description="Who makes the change (audited).")
    reason: StorableText = Field(min_length=1, max_length=1000, description="Why (audited).")
    canary_clients: list[Annotated[StorableText, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list,
        max_length=MAX_CANARY_CLIENTS,
        description="API key names always enforced, whatever the percentage (unknown names: 422 "
        "`INVALID_INPUT`). The whole state is given: names not repeated are cleared.",
    )
    aliases_rejected: bool = Field(
        default=False,
        description="The Sunset step: enforced clients' deprecated aliases are rejected before the "
        "Sunset date.",
    )


def require_admin_token(
    state: AppStateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_admin_bearer)],
) -> None:
    presented = f"Bearer {credentials.credentials}" if credentials is not None else None
    require_admin(state.settings, presented)


AdminDep = Depends(require_admin_token)


@router.post(
    "/auto-downgrade",
    response_model=WebhookResult,
    summary="Alertmanager webhook: lower enforce to warn",
    description=(
        "Accepts Alertmanager's version-4 webhook payload. Acts only on firing alerts carrying the "
        'configured label (default `action="downgrade_stage_validation"`) and only ever lowers '
        "strictness (enforce -> warn). Idempotent on (groupKey, fingerprint, startsAt). 5xx only when "
        "the mode store could not be read or written, so Alertmanager retries. Optional "
        f"`{SIGNATURE_HEADER}: sha256=<hex>` (HMAC-SHA256 of the raw body keyed with the token)."
    ),
    responses=problem_responses(
        400,
        401,
        422,
        503,
        descriptions={
            400: "Not a valid Alertmanager webhook payload, unreadable JSON included "
            "(`INVALID_WEBHOOK_PAYLOAD`).",
            401: "Missing or wrong webhook token, or a wrong signature.",
            503: "The webhook token is not configured, or the mode store is unavailable (retry).",
        },
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "Alertmanager's webhook payload (version 4); unknown fields are allowed.",
            "content": {"application/json": {"schema": _PAYLOAD_SCHEMA}},
        }
    },
)
async def auto_downgrade(
    request: Request,
    state: AppStateDep,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_webhook_bearer)],
    signature: Annotated[str | None, Header(alias=SIGNATURE_HEADER)] = None,
) -> WebhookResult:
    body = await _read_body(request, limit=MAX_PAYLOAD_BYTES)
    service = AutoDowngrade(
        engine=state.engine,
        store=state.mode_store,
        brownouts=state.brownouts,
        metrics=state.metrics,
        settings=state.settings,
    )
    outcome = await anyio.to_thread.run_sync(
        lambda: service.receive(body, authorization=request.headers.get("authorization"), signature=signature)
    )
    return WebhookResult.of(outcome)


@router.get(
    "/mode",
    response_model=ModeStatus,
    summary="The stored mode, this worker's applied mode and the latest audited changes",
    dependencies=[AdminDep],
    responses=problem_responses(
        401,
        422,
        503,
        descriptions={
            401: "Missing or wrong admin token.",
            503: "The admin token is not configured, or the mode store is unavailable.",
        },
    ),
)
def get_mode(
    state: AppStateDep,
    limit: Annotated[
        int, Query(ge=0, le=MAX_RECENT_CHANGES, description="How many audited changes to list.")
    ] = 10,
) -> ModeStatus:
    store = state.mode_store
    stored = store.read()
    # What this worker's requests get now: its cached mode, raised by a brownout window in force.
    applied = effective_state(store.current(), state.brownouts.windows(), datetime.now(UTC))
    age = min(store.cache_age(), _MAX_REPORTED_AGE_SECONDS)
    state.metrics.set_mode_cache_age(age)
    return ModeStatus(
        mode=stored.state.mode,
        canary_percent=stored.state.canary_percent,
        canary_clients=stored.state.sorted_clients,
        aliases_rejected=stored.state.aliases_rejected,
        source="store" if stored.version else "default",
        version=stored.version,
        updated_at=stored.updated_at,
        updated_by=stored.updated_by,
        worker=WorkerMode(
            pid=os.getpid(),
            mode=applied.mode,
            canary_percent=applied.canary_percent,
            canary_clients=applied.sorted_clients,
            aliases_rejected=applied.aliases_rejected,
            cache_age_seconds=age,
        ),
        recent_changes=[AuditEntry.of(change) for change in store.audit_log(limit)] if limit else [],
    )


@router.put(
    "/mode",
    response_model=AuditEntry,
    summary="Change the mode (audited, source manual); refused when APP_ENV=production",
    dependencies=[AdminDep],
    responses={
        **problem_responses(
            401,
            403,
            422,
            503,
            descriptions={
                401: "Missing or wrong admin token.",
                503: "The admin token is not configured, or the mode store is unavailable.",
            },
        ),
        **body_responses(),
    },
)
def put_mode(state: AppStateDep, update: ModeUpdate) -> AuditEntry:
    change = set_mode_over_http(
        state.mode_store,
        state.metrics,
        state.settings,
        mode=update.mode,
        canary_percent=update.canary_percent,
        actor=update.actor,
        reason=update.reason,
        canary_clients=update.canary_clients,
        aliases_rejected=update.aliases_rejected,
    )
    return AuditEntry.of(change)


async def _read_body(request: Request, *, limit: int) -> bytes:
    """The raw body, cut one byte past ``limit`` so an oversized one is refused without buffering it all."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            break
    return b"".join(chunks)[: limit + 1]
