"""The outbox: events written in the transaction of what they report, read back by the dispatcher.

:func:`enqueue` takes the caller's connection, so an event exists exactly when the change it reports
committed (a rolled-back mode change leaves no notification behind). It never sends anything and never
needs the webhook configuration: a dispatcher gives each new event its deliveries, one per target configured
where it runs. :func:`publish` is the best-effort form for callers without a transaction of their own (a
refresh loop noticing a brownout edge): its failure is logged, never raised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from fundmodel.db.notification_tables import (
    MAX_TARGET_NAME_CHARS,
    notification_deliveries,
    notification_events,
)
from fundmodel.db.values import as_utc
from fundmodel.errors import StoreUnavailableError
from fundmodel.notifications.events import NotificationEvent

__all__ = [
    "DeliveryRow",
    "enqueue",
    "fan_out",
    "publish",
    "recent_deliveries",
]

_log = structlog.get_logger("fundmodel.notifications")


def enqueue(connection: Connection, event: NotificationEvent) -> bool:
    """Add ``event`` to the outbox in the caller's transaction; False when its dedupe key is there already."""
    values = {
        "kind": event.kind.value,
        "dedupe_key": event.dedupe_key,
        "occurred_at": event.occurred_at,
        "created_at": datetime.now(UTC),
        "summary": event.summary,
        "data": dict(event.data),
        "fanned_out_at": None,
    }
    if event.dedupe_key is None:
        connection.execute(insert(notification_events).values(**values))
        return True
    # ON CONFLICT DO NOTHING (both backends): a duplicate never aborts the caller's transaction.
    dialect = connection.dialect.name
    statement = (
        postgresql.insert(notification_events)
        if dialect == "postgresql"
        else sqlite.insert(notification_events)
    )
    inserted = connection.execute(
        statement.values(**values)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(notification_events.c.id)
    ).scalar_one_or_none()
    return inserted is not None


def publish(engine: Engine, event: NotificationEvent) -> bool:
    """Enqueue ``event`` in a transaction of its own, best effort: a database failure is logged, and False."""
    try:
        with engine.begin() as connection:
            return enqueue(connection, event)
    except SQLAlchemyError as exc:
        _log.warning("notification_not_enqueued", kind=event.kind.value, error=type(exc).__name__)
        return False


def fan_out(connection: Connection, targets: Sequence[str], *, now: datetime, limit: int = 100) -> int:
    """Give events without deliveries one pending delivery per target (possibly none); the number of events.

    Each event is claimed by a conditional update of its ``fanned_out_at``, so concurrent dispatchers
    never create its deliveries twice (the unique (event, target) key would refuse it anyway)."""
    events = notification_events
    pending = connection.execute(
        select(events.c.id).where(events.c.fanned_out_at.is_(None)).order_by(events.c.id).limit(limit)
    ).scalars()
    claimed = 0
    for event_id in list(pending):
        result = connection.execute(
            update(events)
            .where(events.c.id == event_id, events.c.fanned_out_at.is_(None))
            .values(fanned_out_at=now)
        )
        if result.rowcount != 1:
            continue
        claimed += 1
        if targets:
            connection.execute(
                insert(notification_deliveries),
                [
                    {
                        "event_id": event_id,
                        "target": name[:MAX_TARGET_NAME_CHARS],
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                    }
                    for name in targets
                ],
            )
    return claimed


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """One delivery as ``notifications list`` shows it (the target by name only)."""

    delivery_id: int
    event_id: int
    kind: str
    summary: str
    target: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    occurred_at: datetime
    finished_at: datetime | None


def recent_deliveries(
    engine: Engine, *, limit: int = 50, status: str | None = None, since: timedelta | None = None
) -> list[DeliveryRow]:
    """The most recent deliveries, newest event first. Raises :class:`StoreUnavailableError`."""
    deliveries, events = notification_deliveries, notification_events
    query = (
        select(
            deliveries.c.id,
            deliveries.c.event_id,
            events.c.kind,
            events.c.summary,
            deliveries.c.target,
            deliveries.c.status,
            deliveries.c.attempts,
            deliveries.c.last_status_code,
            deliveries.c.last_error,
            deliveries.c.next_attempt_at,
            events.c.occurred_at,
            deliveries.c.finished_at,
        )
        .join(events, events.c.id == deliveries.c.event_id)
        .order_by(deliveries.c.event_id.desc(), deliveries.c.target)
        .limit(limit)
    )
    if status is not None:
        query = query.where(deliveries.c.status == status)
    if since is not None:
        query = query.where(events.c.created_at >= datetime.now(UTC) - since)
    try:
        with engine.connect() as connection:
            rows = connection.execute(query).all()
    except SQLAlchemyError as exc:
        raise StoreUnavailableError(f"notification deliveries unreadable: {type(exc).__name__}") from exc
    return [
        DeliveryRow(
            delivery_id=int(row.id),
            event_id=int(row.event_id),
            kind=row.kind,
            summary=row.summary,
            target=row.target,
            status=row.status,
            attempts=int(row.attempts),
            last_status_code=row.last_status_code,
            last_error=row.last_error,
            next_attempt_at=as_utc(row.next_attempt_at) if row.status == "pending" else None,
            occurred_at=as_utc(row.occurred_at),
            finished_at=as_utc(row.finished_at) if row.finished_at is not None else None,
        )
        for row in rows
    ]
