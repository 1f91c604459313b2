"""Brownout windows in the database (:class:`BrownoutStore`), cached per process (:class:`BrownoutSchedule`).

The rows (:mod:`fundmodel.db.brownout_tables`) are shared by every worker and replica. Requests never read
them: each process keeps the windows not yet over in a :class:`BrownoutSchedule`, refreshed by the same
background loop as the mode cache (:mod:`fundmodel.api.mode_refresh`), and the effective mode of a
request is computed from the cached windows and the current time
(:func:`fundmodel.validation.brownout.effective_state`).
So a window starts and ends on every worker at the same instant, and a schedule or a cancel reaches every
worker within the mode cache's staleness bound (the TTL).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Row, and_, insert, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from fundmodel.db.brownout_tables import stage_brownouts
from fundmodel.db.mode_request import MAX_ACTOR_LENGTH, MAX_REASON_LENGTH
from fundmodel.db.values import as_utc
from fundmodel.errors import ConflictError, InvalidInputError, NotFoundError, StoreUnavailableError
from fundmodel.notifications.events import BrownoutEdge, brownout_event
from fundmodel.notifications.outbox import enqueue
from fundmodel.validation.brownout import BrownoutWindow, check_new_window

MANUAL_END = "manual"
ALERTMANAGER_END = "alertmanager"
LIST_LIMIT = 200


@dataclass(frozen=True, slots=True)
class StoredBrownout:
    """One window as stored, with its audit fields (who scheduled it and why; who ended it, how, why)."""

    window: BrownoutWindow
    """The window as it applies: its end cut to ``ended_at`` when it was ended early."""
    scheduled_ends_at: datetime
    created_at: datetime
    created_by: str
    reason: str
    ended_at: datetime | None = None
    ended_by: str | None = None
    end_reason: str | None = None
    end_source: str | None = None

    @property
    def window_id(self) -> int:
        return self.window.window_id

    def status(self, now: datetime) -> str:
        """``scheduled``, ``active``, ``finished`` (ran its course), ``cancelled`` (before its start) or
        ``ended`` (cut short while in force)."""
        if self.ended_at is not None and self.ended_at < self.scheduled_ends_at and self.ended_at <= now:
            return "cancelled" if self.ended_at <= self.window.starts_at else "ended"
        if now < self.window.starts_at:
            return "scheduled"
        return "active" if now < self.window.ends_at else "finished"

    def to_json(self, now: datetime) -> dict[str, Any]:
        return {
            "id": self.window_id,
            "status": self.status(now),
            "starts_at": self.window.starts_at.isoformat(),
            "ends_at": self.window.ends_at.isoformat(),
            "scheduled_ends_at": self.scheduled_ends_at.isoformat(),
            "duration_seconds": max(self.window.duration.total_seconds(), 0.0),
            "canary_percent": self.window.canary_percent,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "reason": self.reason,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "ended_by": self.ended_by,
            "end_reason": self.end_reason,
            "end_source": self.end_source,
        }


class BrownoutStore:
    """Schedules, cancels and lists the windows; every write is one transaction with its audit fields."""

    def __init__(
        self, engine: Engine, *, sunset_at: datetime, clock: Callable[[], datetime] | None = None
    ) -> None:
        self._engine = engine
        self._sunset_at = sunset_at
        self._now = clock or _utc_now

    @property
    def engine(self) -> Engine:
        return self._engine

    def pending(self) -> tuple[BrownoutWindow, ...]:
        """The windows not over yet (in force or to come), earliest first. Raises StoreUnavailableError."""
        try:
            with self._engine.connect() as connection:
                return pending_windows(connection, self._now())
        except SQLAlchemyError as exc:
            raise StoreUnavailableError(f"brownouts unreadable: {type(exc).__name__}") from exc

    def list(self, *, include_past: bool = False, limit: int = LIST_LIMIT) -> list[StoredBrownout]:
        """Windows, earliest start first: those not over yet, or (``include_past``) the latest ``limit``."""
        return list_brownouts(self._engine, self._now(), include_past=include_past, limit=limit)

    def schedule(
        self,
        *,
        starts_at: datetime | None,
        duration: timedelta,
        canary_percent: float,
        actor: str,
        reason: str,
    ) -> StoredBrownout:
        """Schedule a window (``starts_at`` None: now). Refused when it is in the past, too short or long,
        after the Sunset or overlapping another window; serialized so two schedules cannot both pass."""
        actor, reason = _checked_actor_reason(actor, reason)
        try:
            with self._engine.begin() as connection:
                _lock_windows(connection)
                now = self._now()
                window = check_new_window(
                    pending_windows(connection, now),
                    starts_at=now if starts_at is None else starts_at.astimezone(UTC),
                    duration=duration,
                    canary_percent=canary_percent,
                    now=now,
                    sunset_at=self._sunset_at,
                )
                window_id = connection.execute(
                    insert(stage_brownouts)
                    .values(
                        starts_at=window.starts_at,
                        ends_at=window.ends_at,
                        canary_percent=window.canary_percent,
                        created_at=now,
                        created_by=actor,
                        reason=reason,
                    )
                    .returning(stage_brownouts.c.id)
                ).scalar_one()
                stored = StoredBrownout(
                    BrownoutWindow(int(window_id), window.starts_at, window.ends_at, window.canary_percent),
                    window.ends_at,
                    now,
                    actor,
                    reason,
                )
                _announce(connection, stored, "scheduled", actor=actor, reason=reason)
        except SQLAlchemyError as exc:
            raise StoreUnavailableError(f"brownout not scheduled: {type(exc).__name__}") from exc
        return stored

    def cancel(self, window_id: int, *, actor: str, reason: str) -> StoredBrownout:
        """End a window now: one to come never applies; one in force stops at once (on every worker
        within the TTL). Refused for an unknown window or one already over."""
        actor, reason = _checked_actor_reason(actor, reason)
        table = stage_brownouts
        try:
            with self._engine.begin() as connection:
                _lock_windows(connection)
                now = self._now()
                row = connection.execute(select(table).where(table.c.id == window_id)).first()
                if row is None:
                    raise NotFoundError(f"no brownout {window_id} (see `fundmodel rollout brownout list`)")
                current = _stored(row)
                if current.window.ends_at <= now:
                    raise ConflictError(
                        f"brownout {window_id} is already over ({current.status(now)} at "
                        f"{current.window.ends_at.isoformat()})"
                    )
                ended = _end(connection, current, now, actor=actor, reason=reason, source=MANUAL_END)
        except SQLAlchemyError as exc:
            raise StoreUnavailableError(f"brownout not cancelled: {type(exc).__name__}") from exc
        return ended


def list_brownouts(
    engine: Engine, now: datetime, *, include_past: bool = False, limit: int = LIST_LIMIT
) -> list[StoredBrownout]:
    """Windows, earliest start first: those not over at ``now``, or (``include_past``) the latest ``limit``.
    Raises :class:`StoreUnavailableError` when they cannot be read."""
    table = stage_brownouts
    query = select(table)
    if include_past:
        query = query.order_by(table.c.starts_at.desc(), table.c.id.desc()).limit(limit)
    else:
        query = query.where(_not_over(now)).order_by(table.c.starts_at, table.c.id)
    try:
        with engine.connect() as connection:
            rows = connection.execute(query).all()
    except SQLAlchemyError as exc:
        raise StoreUnavailableError(f"brownouts unreadable: {type(exc).__name__}") from exc
    stored = [_stored(row) for row in rows]
    return sorted(stored, key=lambda s: (s.window.starts_at, s.window_id))


def end_active_brownouts(
    connection: Connection, now: datetime, *, actor: str, reason: str, source: str
) -> list[StoredBrownout]:
    """End the windows in force at ``now`` inside the caller's transaction (the auto-downgrade's), audited."""
    table = stage_brownouts
    rows = connection.execute(
        select(table).where(table.c.starts_at <= now, _not_over(now)).order_by(table.c.id)
    ).all()
    return [
        _end(connection, _stored(row), now, actor=actor, reason=reason[:MAX_REASON_LENGTH], source=source)
        for row in rows
    ]


def pending_windows(connection: Connection, now: datetime) -> tuple[BrownoutWindow, ...]:
    """The windows not over at ``now``, earliest first, read on ``connection``."""
    table = stage_brownouts
    rows = connection.execute(
        select(table).where(_not_over(now)).order_by(table.c.starts_at, table.c.id)
    ).all()
    return tuple(_stored(row).window for row in rows)


class BrownoutSchedule:
    """This process's copy of the windows not yet over: what requests use, never blocking on I/O.

    When the store cannot be read the last known windows stay in force, as the mode cache does: a window
    already known still starts and ends on time.
    """

    def __init__(self, store: BrownoutStore, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: tuple[BrownoutWindow, ...] = ()
        self._read_at = -math.inf
        # When the cached read began: a slower read that began earlier (the refresh loop racing the
        # auto-downgrade's refresh) must not put back windows a later read no longer saw.
        self._read_started = -math.inf

    @property
    def store(self) -> BrownoutStore:
        return self._store

    def windows(self) -> tuple[BrownoutWindow, ...]:
        """The cached windows (in force or to come when last read)."""
        return self._windows

    def cache_age(self) -> float:
        return self._clock() - self._read_at

    def refresh(self) -> bool:
        """Re-read the windows; on failure keep the last known ones and return False."""
        started = self._clock()
        try:
            windows = self._store.pending()
        except StoreUnavailableError:
            return False
        with self._lock:
            if started >= self._read_started:
                self._windows, self._read_at, self._read_started = windows, self._clock(), started
        return True


def _announce(
    connection: Connection,
    stored: StoredBrownout,
    edge: str,
    *,
    actor: str,
    reason: str,
    ended_by: str | None = None,
) -> None:
    """Queue the edge's notification in the same transaction (it exists iff the change committed)."""
    enqueue(
        connection,
        brownout_event(
            BrownoutEdge(edge),
            brownout_id=stored.window_id,
            starts_at=stored.window.starts_at,
            ends_at=stored.window.ends_at,
            canary_percent=stored.window.canary_percent,
            actor=actor,
            reason=reason,
            ended_by=ended_by,
        ),
    )


def _end(
    connection: Connection, current: StoredBrownout, now: datetime, *, actor: str, reason: str, source: str
) -> StoredBrownout:
    table = stage_brownouts
    connection.execute(
        update(table)
        .where(table.c.id == current.window_id)
        .values(ended_at=now, ended_by=actor, end_reason=reason, end_source=source)
    )
    window = current.window
    was_active = window.active_at(now)
    ended = StoredBrownout(
        BrownoutWindow(window.window_id, window.starts_at, now, window.canary_percent),
        current.scheduled_ends_at,
        current.created_at,
        current.created_by,
        current.reason,
        now,
        actor,
        reason,
        source,
    )
    if was_active:
        how = "auto_downgrade" if source == ALERTMANAGER_END else "cancelled"
        _announce(connection, ended, "ended", actor=actor, reason=reason, ended_by=how)
    else:
        _announce(connection, ended, "cancelled", actor=actor, reason=reason)
    return ended


def _lock_windows(connection: Connection) -> None:
    """Serialize the writers of windows: an overlap check and its insert never interleave with another's."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("LOCK TABLE stage_brownouts IN SHARE ROW EXCLUSIVE MODE")
    else:
        # SQLite: any write statement takes the database's write lock (held to the commit), even when it
        # changes no row; reads after it see a database no other writer can change.
        connection.execute(update(stage_brownouts).where(stage_brownouts.c.id == -1).values(id=-1))


def _not_over(now: datetime) -> Any:
    table = stage_brownouts
    return and_(table.c.ends_at > now, or_(table.c.ended_at.is_(None), table.c.ended_at > now))


def _checked_actor_reason(actor: str, reason: str) -> tuple[str, str]:
    """Who and why, with the same limits as a mode change's audit row (both required)."""
    return _checked_text("actor", actor, MAX_ACTOR_LENGTH), _checked_text("reason", reason, MAX_REASON_LENGTH)


def _checked_text(name: str, value: str, limit: int) -> str:
    text = value.strip()
    if not text or len(text) > limit or any(ord(ch) < 32 and ch != "\t" for ch in text):
        raise InvalidInputError(
            f"{name} is required: 1-{limit} characters without control characters", field=name
        )
    return text


def _stored(row: Row[Any]) -> StoredBrownout:
    starts_at, scheduled_end = as_utc(row.starts_at), as_utc(row.ends_at)
    ended_at = as_utc(row.ended_at) if row.ended_at is not None else None
    ends_at = scheduled_end if ended_at is None else min(scheduled_end, ended_at)
    return StoredBrownout(
        BrownoutWindow(int(row.id), starts_at, ends_at, float(row.canary_percent)),
        scheduled_end,
        as_utc(row.created_at),
        str(row.created_by),
        str(row.reason),
        ended_at,
        row.ended_by,
        row.end_reason,
        row.end_source,
    )


def _utc_now() -> datetime:
    return datetime.now(UTC)
