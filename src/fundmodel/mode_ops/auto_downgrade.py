"""The auto-downgrade: an Alertmanager notification lowers ``enforce`` to ``warn``, never anything else.

Decision rules live in :mod:`fundmodel.observability.alertmanager` (pure); this module reads and writes
the mode store. Idempotency on (groupKey, fingerprint, startsAt) survives restarts and spans workers
and replicas: every matching delivery's keys are recorded in ``stage_webhook_deliveries``
(:mod:`fundmodel.mode_ops.deliveries`), whether it downgraded or found the mode already lenient, so a
repeat never acts again, even after an operator raised the mode back to ``enforce``.

The keys are claimed in the same transaction as the conditional mode write (``only_if`` enforce): the
first copy of a delivery to claim them decides (``downgraded``, or ``unchanged`` when the mode is already
lenient), and every concurrent or later copy is answered ``duplicate``, across workers and replicas, so
the ``result`` metric counts each delivery once. Should that transaction fail, nothing is recorded and
the webhook answers 503; Alertmanager's retry then acts as if it were the first delivery.

A brownout window in force (:mod:`fundmodel.validation.brownout`) enforces whatever the stored mode, so the
decision is taken on the *effective* state: a delivery during a brownout ends the window (audited on its
row, announced to the notification webhooks) in the same transaction, and lowers a stored ``enforce`` too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import Engine

from fundmodel.db.brownout_store import (
    ALERTMANAGER_END,
    BrownoutSchedule,
    StoredBrownout,
    end_active_brownouts,
    pending_windows,
)
from fundmodel.db.mode_store import (
    ModeChange,
    ModeChangeSource,
    ModeStore,
    ModeTransaction,
    ModeWriteRefused,
    ModeWriteRequest,
)
from fundmodel.errors import (
    AuthenticationError,
    ConfigurationError,
    NotConfiguredError,
    StoreUnavailableError,
    WebhookPayloadError,
)
from fundmodel.mode_ops.deliveries import claim_deliveries, mark_downgraded, seen_deliveries
from fundmodel.mode_ops.tokens import WEBHOOK_TOKEN_ENV, require_token, webhook_token
from fundmodel.observability.alertmanager import (
    AlertmanagerPayload,
    DowngradeRequest,
    SecretToken,
    downgrade_requests,
    parse_label_filter,
    parse_webhook_payload,
    plan_downgrade,
    verify_webhook_auth,
)
from fundmodel.observability.metrics import ServiceMetrics
from fundmodel.observability.mode_events import log_mode_change
from fundmodel.observability.sanitize import escape_log_text
from fundmodel.settings import Settings
from fundmodel.validation import ModeState, ValidationMode
from fundmodel.validation.brownout import effective_state

__all__ = [
    "AUDIT_SOURCE",
    "AUTO_DOWNGRADE_ACTOR",
    "AutoDowngrade",
    "WebhookOutcome",
]

AUDIT_SOURCE = ModeChangeSource.ALERTMANAGER
AUTO_DOWNGRADE_ACTOR = "alertmanager"
_MAX_LABEL_CHARS = 200
_MAX_URL_CHARS = 500
_MAX_ALERTS_AUDITED = 20
_FEATURE = "the auto-downgrade webhook"

_log = structlog.get_logger("fundmodel.ops")


@dataclass(frozen=True, slots=True)
class WebhookOutcome:
    """What one delivery did; ``result`` is the ``WEBHOOK_RESULTS`` metric label."""

    result: str
    previous: ModeState | None
    current: ModeState | None
    matching_alerts: int
    audit_id: int | None
    ended_brownouts: tuple[int, ...] = ()
    """The brownout windows this delivery ended (ids)."""


@dataclass(frozen=True, slots=True)
class _Applied:
    """What a delivery wrote: the mode change (when the stored mode was enforce), the windows it ended."""

    change: ModeChange | None
    ended: tuple[StoredBrownout, ...]


class AutoDowngrade:
    """Applies Alertmanager notifications to the mode store of one app."""

    def __init__(
        self,
        *,
        engine: Engine,
        store: ModeStore,
        brownouts: BrownoutSchedule,
        metrics: ServiceMetrics,
        settings: Settings,
    ) -> None:
        self._engine = engine
        self._store = store
        self._brownouts = brownouts
        self._metrics = metrics
        self._settings = settings

    def receive(self, body: bytes, *, authorization: str | None, signature: str | None) -> WebhookOutcome:
        """Authenticate, parse and apply one raw delivery, counting its result.

        Raises NotConfiguredError (503), AuthenticationError (401), WebhookPayloadError (400) or
        StoreUnavailableError (503, so Alertmanager retries). The token never reaches a log line.
        """
        token, label = self._configuration()
        try:
            verify_webhook_auth(authorization=authorization, signature=signature, body=body, token=token)
        except AuthenticationError as exc:
            self._metrics.count_webhook("unauthorized")
            _log.warning("stage_webhook_unauthorized", detail=exc.detail)
            raise
        try:
            payload = parse_webhook_payload(body)
        except WebhookPayloadError as exc:
            self._metrics.count_webhook("malformed")
            _log.warning("stage_webhook_malformed", detail=exc.detail)
            raise
        try:
            outcome = self.handle(payload, label=label)
        except StoreUnavailableError as exc:
            self._metrics.count_webhook("store_error")
            _log.error("stage_webhook_store_error", detail=exc.detail, group_key=_group_key(payload))
            raise
        self._metrics.count_webhook(outcome.result)
        _log.info(
            "stage_webhook_handled",
            result=outcome.result,
            status=payload.status,
            alerts=len(payload.alerts),
            matching_alerts=outcome.matching_alerts,
            group_key=_group_key(payload),
            audit_id=outcome.audit_id,
        )
        return outcome

    def _configuration(self) -> tuple[SecretToken, tuple[str, str]]:
        try:
            loaded = webhook_token(self._settings)
            label = parse_label_filter(self._settings.stage_webhook_label_filter)
        except ConfigurationError as exc:
            self._metrics.count_webhook("unconfigured")
            _log.error("ops_token_invalid", feature=_FEATURE, detail=exc.detail)
            raise NotConfiguredError(f"{_FEATURE} is not configured on this server") from None
        try:
            token = require_token(loaded, variable=WEBHOOK_TOKEN_ENV, feature=_FEATURE)
        except NotConfiguredError:
            self._metrics.count_webhook("unconfigured")
            raise
        return token, label

    def handle(self, payload: AlertmanagerPayload, *, label: tuple[str, str]) -> WebhookOutcome:
        """Apply one parsed delivery. Raises :class:`StoreUnavailableError` when the store fails."""
        requests = downgrade_requests(payload, label=label)
        if not requests:
            return WebhookOutcome("ignored", None, None, 0, None)
        keys = [r.idempotency_key for r in requests]
        if seen_deliveries(self._engine, keys) >= frozenset(keys):
            # A repeat of a delivery already committed: answered without a write transaction. The
            # store, not this worker's cache: the cache may be up to one TTL behind a manual change.
            stored = self._store.read().state
            return WebhookOutcome("duplicate", stored, stored, len(requests), None)
        outcome, applied = self._store.transact(
            lambda transaction: self._decide(transaction, payload, requests)
        )
        if applied is not None:
            self._applied(applied)
        return outcome

    def _decide(
        self,
        transaction: ModeTransaction,
        payload: AlertmanagerPayload,
        requests: Sequence[DowngradeRequest],
    ) -> tuple[WebhookOutcome, _Applied | None]:
        """Claim the delivery's keys, then end a brownout in force and lower a stored enforce: all in one
        transaction."""
        keys = [r.idempotency_key for r in requests]
        # Claimed as "unchanged"; a downgrade below marks them before the transaction commits.
        claimed = claim_deliveries(transaction.connection, keys, result="unchanged")
        current = transaction.read_locked().state
        now = datetime.now(UTC)
        # The store's windows, not this worker's cache: a window scheduled a moment ago counts too.
        effective = effective_state(current, pending_windows(transaction.connection, now), now)
        plan = plan_downgrade(requests, effective.mode.value, frozenset(keys) - claimed)
        if plan.target_mode is None:
            # "duplicate": every key belonged to another copy; "unchanged": already lenient, but the
            # delivery is remembered so a repeat after an operator re-enables enforce stays a duplicate.
            return WebhookOutcome(plan.result, effective, effective, len(requests), None), None
        ended = tuple(
            end_active_brownouts(
                transaction.connection,
                now,
                actor=AUTO_DOWNGRADE_ACTOR,
                reason=_reason(plan.new_requests),
                source=ALERTMANAGER_END,
            )
        )
        ended_ids = tuple(window.window_id for window in ended)
        if current.mode is not ValidationMode.ENFORCE:
            # Only the brownout enforced: ending it is the whole downgrade (the stored mode stays).
            mark_downgraded(transaction.connection, sorted(claimed), audit_id=None)
            outcome = WebhookOutcome("downgraded", effective, current, len(requests), None, ended_ids)
            return outcome, _Applied(None, ended)
        written = transaction.write(
            ModeWriteRequest.checked(
                ValidationMode(plan.target_mode),
                current.canary_percent,
                actor=AUTO_DOWNGRADE_ACTOR,
                reason=_reason(plan.new_requests),
                source=AUDIT_SOURCE,
                extra=_audit_extra(payload, plan.new_requests),
            ),
            only_if=lambda state: state.mode is ValidationMode.ENFORCE,
        )
        if isinstance(written, ModeWriteRefused):
            # Unreachable while the row stays locked; never mark a non-change as a downgrade.
            unchanged = written.current
            return WebhookOutcome("unchanged", unchanged, unchanged, len(requests), None), None
        mark_downgraded(transaction.connection, sorted(claimed), audit_id=written.audit_id)
        return (
            WebhookOutcome("downgraded", effective, written.new, len(requests), written.audit_id, ended_ids),
            _Applied(written, ended),
        )

    def _applied(self, applied: _Applied) -> None:
        """This worker applies the downgrade at once, counts and logs it (the others within the TTL)."""
        for window in applied.ended:
            _log.warning(
                "brownout_ended_by_auto_downgrade",
                brownout_id=window.window_id,
                starts_at=window.window.starts_at.isoformat(),
                scheduled_ends_at=window.scheduled_ends_at.isoformat(),
            )
        if applied.ended:
            # Best effort: should the read fail, the refresh loop drops the window within the TTL.
            self._brownouts.refresh()
        change = applied.change
        if change is None:
            current = self._store.current()
            self._metrics.set_mode(current.mode.value, current.canary_percent)
            return
        self._metrics.refresh_mode_change_counts()
        self._metrics.set_mode(change.new.mode.value, change.new.canary_percent)
        log_mode_change(change)


def _group_key(payload: AlertmanagerPayload) -> str:
    return escape_log_text(payload.group_key, _MAX_URL_CHARS)


def _clean(value: str, limit: int) -> str:
    return escape_log_text(value, limit)


def _reason(requests: Sequence[DowngradeRequest]) -> str:
    first = requests[0]
    names = sorted({_clean(r.alert_name or "(unnamed)", _MAX_LABEL_CHARS) for r in requests})
    text = (
        f"Alertmanager alert {', '.join(names)} firing since {first.starts_at.isoformat()} "
        f"(fingerprint {_clean(first.fingerprint, _MAX_LABEL_CHARS)}): automatic enforce -> warn"
    )
    return text[:1000]


def _audit_extra(payload: AlertmanagerPayload, requests: Sequence[DowngradeRequest]) -> dict[str, Any]:
    first = requests[0]
    return {
        "alertName": _clean(first.alert_name, _MAX_LABEL_CHARS),
        "fingerprint": _clean(first.fingerprint, _MAX_LABEL_CHARS),
        "groupKey": _clean(first.group_key, _MAX_URL_CHARS),
        "alertmanagerUrl": _clean(payload.external_url, _MAX_URL_CHARS),
        "receiver": _clean(payload.receiver, _MAX_LABEL_CHARS),
        "alerts": [
            {
                "alertName": _clean(r.alert_name, _MAX_LABEL_CHARS),
                "fingerprint": _clean(r.fingerprint, _MAX_LABEL_CHARS),
                "startsAt": r.starts_at.isoformat(),
                "generatorUrl": _clean(r.generator_url, _MAX_URL_CHARS),
            }
            for r in requests[:_MAX_ALERTS_AUDITED]
        ],
        # Every key, even beyond the audited alert details: a redelivery must match all of them.
        "idempotencyKeys": [r.idempotency_key for r in requests],
    }
