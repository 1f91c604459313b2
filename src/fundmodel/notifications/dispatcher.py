"""Posting the outbox: claim a due delivery, send it, record the attempt, schedule the retry.

Any number of dispatchers (every server process, ``fundmodel notifications deliver``) may run against one
database. A delivery is claimed by a conditional ``UPDATE`` that succeeds for exactly one of them on both
SQLite (writers serialized) and PostgreSQL (the row lock re-checks the condition): it sets a lease owner
and a lease end, and only the lease owner records the result. A dispatcher that dies mid-send loses its
lease when it runs out, and the delivery is sent again: delivery is at least once, and bodies carry the
event id (``id``, header ``X-Fundmodel-Event-Id``) for receivers that must deduplicate.

Retries: 2xx is delivered; a 4xx other than 408/425/429 is a permanent refusal (``failed``); anything else
(5xx, 408/425/429, connection error, timeout) is retried after ``base * 2**(attempt-1)`` seconds, capped,
with full jitter (half to all of it), until the attempts are exhausted (``failed``) or the event is older
than the maximum age (``expired``). Every attempt is a row of ``notification_attempts`` with its status
code or error class and its duration.

The target's URL is used for the request only: errors are recorded by exception class, never message.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import structlog
from sqlalchemy import Engine, and_, insert, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from fundmodel.db.notification_tables import (
    MAX_ERROR_CHARS,
    notification_attempts,
    notification_deliveries,
    notification_events,
)
from fundmodel.db.values import as_utc
from fundmodel.notifications.events import StoredEvent, render_body
from fundmodel.notifications.outbox import fan_out
from fundmodel.notifications.targets import WebhookTarget

__all__ = ["ATTEMPT_OUTCOMES", "DispatchReport", "Dispatcher", "RetryPolicy", "make_due_now", "safe_run_once"]

ATTEMPT_OUTCOMES: tuple[str, ...] = ("delivered", "retry", "failed", "expired")
"""What one attempt led to: the ``result`` label of ``fundmodel_notification_deliveries_total``."""
_RETRYABLE_4XX = frozenset({408, 425, 429})
_CANDIDATES_PER_CLAIM = 10
_LEASE_MARGIN_SECONDS = 30.0
_USER_AGENT = "fundmodel-notifications/1"

_log = structlog.get_logger("fundmodel.notifications")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    timeout_seconds: float = 5.0
    max_attempts: int = 12
    max_age: timedelta = timedelta(hours=24)
    base_seconds: float = 2.0
    max_seconds: float = 600.0

    def delay(self, attempt: int, jitter: float) -> float:
        """Seconds before the attempt after ``attempt`` (1-based); ``jitter`` in [0, 1) scales it by 0.5-1."""
        exponential: float = self.base_seconds * 2.0 ** min(attempt - 1, 40)
        return min(self.max_seconds, exponential) * (0.5 + jitter / 2)


@dataclass(frozen=True, slots=True)
class DispatchReport:
    """What one :meth:`Dispatcher.run_once` did."""

    fanned_out: int = 0
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    expired: int = 0

    @property
    def attempts(self) -> int:
        return self.delivered + self.retried + self.failed


@dataclass(frozen=True, slots=True)
class _Claimed:
    delivery_id: int
    target: str
    attempt: int
    event: StoredEvent
    event_created_at: datetime


@dataclass(frozen=True, slots=True)
class _Sent:
    outcome: str
    status_code: int | None
    error: str | None
    duration: float


class Dispatcher:
    """Delivers the outbox of one database to the configured targets."""

    def __init__(
        self,
        engine: Engine,
        targets: Sequence[WebhookTarget],
        policy: RetryPolicy,
        *,
        on_attempt: Callable[[str, str], None] | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._engine = engine
        self._targets = {target.name: target for target in targets}
        self._policy = policy
        self._on_attempt = on_attempt
        self._clock = clock
        self._jitter = jitter
        self._owner = uuid.uuid4().hex
        self._lease = timedelta(seconds=policy.timeout_seconds + _LEASE_MARGIN_SECONDS)
        # follow_redirects off: a redirect could carry the body somewhere the operator did not configure.
        self._http = httpx.Client(
            timeout=httpx.Timeout(policy.timeout_seconds),
            transport=transport,
            follow_redirects=False,
            headers={"User-Agent": _USER_AGENT},
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def run_once(self, *, max_deliveries: int = 100) -> DispatchReport:
        """Fan out new events, then send due deliveries one by one until none is due (or the bound).

        Raises SQLAlchemyError when the database fails (the caller's loop logs it and tries again)."""
        started = self._clock()
        with self._engine.begin() as connection:
            fanned_out = fan_out(connection, sorted(self._targets), now=started)
        counts = dict.fromkeys(ATTEMPT_OUTCOMES, 0)
        for _ in range(max_deliveries):
            # Only what was due when this run started: a retry scheduled meanwhile waits for the next run.
            claimed = self._claim_next(due_by=started)
            if claimed is None:
                break
            counts[self._deliver(claimed)] += 1
        return DispatchReport(
            fanned_out=fanned_out,
            delivered=counts["delivered"],
            retried=counts["retry"],
            failed=counts["failed"],
            expired=counts["expired"],
        )

    def _claim_next(self, *, due_by: datetime) -> _Claimed | None:
        deliveries, events = notification_deliveries, notification_events
        now = self._clock()
        due = and_(
            deliveries.c.status == "pending",
            deliveries.c.next_attempt_at <= due_by,
            or_(deliveries.c.lease_until.is_(None), deliveries.c.lease_until <= now),
        )
        with self._engine.begin() as connection:
            candidates = connection.execute(
                select(deliveries.c.id)
                .where(due)
                .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
                .limit(_CANDIDATES_PER_CLAIM)
            ).scalars()
            for delivery_id in list(candidates):
                won = connection.execute(
                    update(deliveries)
                    .where(deliveries.c.id == delivery_id, due)
                    .values(lease_owner=self._owner, lease_until=now + self._lease)
                )
                if won.rowcount != 1:
                    continue
                row = connection.execute(
                    select(
                        deliveries.c.target,
                        deliveries.c.attempts,
                        events.c.id.label("event_id"),
                        events.c.kind,
                        events.c.summary,
                        events.c.data,
                        events.c.occurred_at,
                        events.c.created_at,
                    )
                    .join(events, events.c.id == deliveries.c.event_id)
                    .where(deliveries.c.id == delivery_id)
                ).one()
                event = StoredEvent(
                    int(row.event_id), row.kind, row.summary, dict(row.data or {}), as_utc(row.occurred_at)
                )
                return _Claimed(
                    int(delivery_id), row.target, int(row.attempts) + 1, event, as_utc(row.created_at)
                )
        return None

    def _deliver(self, claimed: _Claimed) -> str:
        now = self._clock()
        target = self._targets.get(claimed.target)
        if now - claimed.event_created_at > self._policy.max_age or target is None:
            # Too old to be news, or the target was removed from the configuration since.
            reason = "max_age" if target is not None else "target_removed"
            self._finish(claimed, "expired", now=now, sent=None, error=reason)
            return "expired"
        sent = self._send(target, claimed)
        outcome = sent.outcome
        next_at = None
        if outcome == "retry":
            if claimed.attempt >= self._policy.max_attempts:
                outcome = "failed"
            else:
                next_at = now + timedelta(seconds=self._policy.delay(claimed.attempt, self._jitter()))
                if next_at - claimed.event_created_at > self._policy.max_age:
                    outcome = "expired"
                    next_at = None
        self._finish(claimed, outcome, now=now, sent=sent, next_attempt_at=next_at)
        return outcome

    def _send(self, target: WebhookTarget, claimed: _Claimed) -> _Sent:
        body = render_body(claimed.event, target.body_format)
        headers = {
            "X-Fundmodel-Event-Id": str(claimed.event.event_id),
            "X-Fundmodel-Event-Kind": claimed.event.kind,
            "X-Fundmodel-Attempt": str(claimed.attempt),
        }
        started = time.perf_counter()
        try:
            response = self._http.post(target.url.get_secret_value(), json=body, headers=headers)
        except httpx.HTTPError as exc:
            # The class only: httpx messages quote the URL, which is a secret.
            return _Sent("retry", None, type(exc).__name__[:MAX_ERROR_CHARS], time.perf_counter() - started)
        duration = time.perf_counter() - started
        code = response.status_code
        if 200 <= code < 300:
            return _Sent("delivered", code, None, duration)
        if 400 <= code < 500 and code not in _RETRYABLE_4XX:
            return _Sent("failed", code, None, duration)
        return _Sent("retry", code, None, duration)

    def _finish(
        self,
        claimed: _Claimed,
        outcome: str,
        *,
        now: datetime,
        sent: _Sent | None,
        error: str | None = None,
        next_attempt_at: datetime | None = None,
    ) -> None:
        deliveries = notification_deliveries
        values: dict[str, Any] = {"lease_owner": None, "lease_until": None}
        if sent is not None:
            values |= {
                "attempts": claimed.attempt,
                "last_status_code": sent.status_code,
                "last_error": sent.error,
            }
        elif error is not None:
            values["last_error"] = error
        if outcome == "retry" and next_attempt_at is not None:
            values |= {"status": "pending", "next_attempt_at": next_attempt_at}
        else:
            values |= {"status": outcome, "finished_at": now}
        with self._engine.begin() as connection:
            if sent is not None:
                connection.execute(
                    insert(notification_attempts).values(
                        delivery_id=claimed.delivery_id,
                        attempt=claimed.attempt,
                        started_at=now,
                        duration_seconds=sent.duration,
                        status_code=sent.status_code,
                        error=sent.error,
                        outcome=outcome,
                    )
                )
            connection.execute(
                update(deliveries)
                .where(deliveries.c.id == claimed.delivery_id, deliveries.c.lease_owner == self._owner)
                .values(**values)
            )
        if self._on_attempt is not None:
            self._on_attempt(claimed.target, outcome)
        log = _log.info if outcome in {"delivered", "retry"} else _log.warning
        log(
            "notification_attempt",
            target=claimed.target,
            event_id=claimed.event.event_id,
            kind=claimed.event.kind,
            attempt=claimed.attempt,
            outcome=outcome,
            status_code=sent.status_code if sent else None,
            error=sent.error if sent else error,
            duration_ms=round(sent.duration * 1000, 1) if sent else None,
            next_attempt_at=next_attempt_at.isoformat() if next_attempt_at else None,
        )


def make_due_now(engine: Engine, *, now: datetime | None = None) -> int:
    """Bring every pending delivery's next attempt forward to now (an operator retrying at once); how many."""
    moment = now or datetime.now(UTC)
    deliveries = notification_deliveries
    with engine.begin() as connection:
        result = connection.execute(
            update(deliveries)
            .where(deliveries.c.status == "pending", deliveries.c.next_attempt_at > moment)
            .values(next_attempt_at=moment)
        )
    return int(result.rowcount)


def safe_run_once(dispatcher: Dispatcher, *, max_deliveries: int = 100) -> DispatchReport | None:
    """:meth:`Dispatcher.run_once` for a background loop: a database failure is logged, ``None``."""
    try:
        return dispatcher.run_once(max_deliveries=max_deliveries)
    except SQLAlchemyError as exc:
        _log.warning("notification_dispatch_failed", error=type(exc).__name__)
        return None
