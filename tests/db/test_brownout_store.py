"""Brownout windows in a real database (SQLite and PostgreSQL): schedule, refuse, cancel, end, cache."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select, text

from fundmodel.db.brownout_store import (
    BrownoutSchedule,
    BrownoutStore,
    end_active_brownouts,
    list_brownouts,
)
from fundmodel.db.brownout_tables import stage_brownouts
from fundmodel.db.notification_tables import notification_events
from fundmodel.errors import ConflictError, InvalidInputError, NotFoundError, StoreUnavailableError
from fundmodel.validation.brownout import BrownoutWindow

SUNSET = datetime(2099, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(engine: Engine, clock: Clock) -> BrownoutStore:
    return BrownoutStore(engine, sunset_at=SUNSET, clock=clock)


def _events(engine: Engine) -> list[tuple[str, dict[str, object]]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(notification_events.c.dedupe_key, notification_events.c.data).order_by(
                notification_events.c.id
            )
        ).all()
    return [(str(row.dedupe_key), dict(row.data)) for row in rows]


def test_a_scheduled_window_is_stored_with_who_when_and_why(store: BrownoutStore, clock: Clock) -> None:
    stored = store.schedule(
        starts_at=clock.now + HOUR, duration=12 * HOUR, canary_percent=50, actor="ops", reason="12h brownout"
    )
    assert stored.window == BrownoutWindow(stored.window_id, clock.now + HOUR, clock.now + 13 * HOUR, 50.0)
    assert (stored.created_by, stored.reason, stored.created_at) == ("ops", "12h brownout", clock.now)
    assert store.pending() == (stored.window,)
    [listed] = store.list()
    assert listed == stored
    assert listed.status(clock.now) == "scheduled"
    assert listed.status(clock.now + HOUR) == "active"
    assert listed.status(clock.now + 13 * HOUR) == "finished"
    [(key, data)] = _events(store.engine)
    assert key == f"brownout:{stored.window_id}:scheduled"
    assert (data["edge"], data["actor"], data["reason"]) == ("scheduled", "ops", "12h brownout")


def test_start_now_begins_at_the_moment_of_writing(store: BrownoutStore, clock: Clock) -> None:
    stored = store.schedule(starts_at=None, duration=HOUR, canary_percent=100, actor="ops", reason="drill")
    assert stored.window.starts_at == clock.now
    assert stored.status(clock.now) == "active"


@pytest.mark.parametrize(
    ("offset", "duration", "error", "message"),
    [
        (-HOUR, HOUR, InvalidInputError, "in the past"),
        (HOUR, timedelta(0), InvalidInputError, "lasts between"),
        (HOUR, 100 * HOUR, InvalidInputError, "lasts between"),
        (HOUR / 2, HOUR, ConflictError, "overlaps brownout"),
    ],
)
def test_refused_windows_write_nothing(
    store: BrownoutStore,
    clock: Clock,
    offset: timedelta,
    duration: timedelta,
    error: type[Exception],
    message: str,
) -> None:
    first = store.schedule(
        starts_at=clock.now + HOUR, duration=HOUR, canary_percent=100, actor="o", reason="r"
    )
    with pytest.raises(error, match=message):
        store.schedule(
            starts_at=clock.now + offset, duration=duration, canary_percent=100, actor="o", reason="r"
        )
    assert [stored.window_id for stored in store.list(include_past=True)] == [first.window_id]


def test_a_window_ending_after_the_sunset_is_refused(engine: Engine, clock: Clock) -> None:
    store = BrownoutStore(engine, sunset_at=clock.now + 2 * HOUR, clock=clock)
    with pytest.raises(InvalidInputError, match="after the Sunset"):
        store.schedule(
            starts_at=clock.now + HOUR, duration=2 * HOUR, canary_percent=100, actor="o", reason="r"
        )


def test_actor_and_reason_are_required(store: BrownoutStore, clock: Clock) -> None:
    with pytest.raises(InvalidInputError, match="reason"):
        store.schedule(starts_at=None, duration=HOUR, canary_percent=100, actor="ops", reason="  ")


def test_concurrent_overlapping_schedules_store_one_window(engine: Engine, clock: Clock) -> None:
    start = clock.now + HOUR
    results: list[object] = []

    def schedule() -> None:
        store = BrownoutStore(engine, sunset_at=SUNSET, clock=clock)
        try:
            results.append(
                store.schedule(starts_at=start, duration=HOUR, canary_percent=100, actor="o", reason="race")
            )
        except (ConflictError, StoreUnavailableError) as exc:
            results.append(exc)

    threads = [threading.Thread(target=schedule) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(list_brownouts(engine, clock.now)) == 1
    assert sum(isinstance(result, ConflictError) for result in results) >= 1


def test_cancelling_a_window_to_come_means_it_never_applies(store: BrownoutStore, clock: Clock) -> None:
    stored = store.schedule(
        starts_at=clock.now + HOUR, duration=HOUR, canary_percent=100, actor="o", reason="r"
    )
    cancelled = store.cancel(stored.window_id, actor="lead", reason="client asked for a week")
    assert cancelled.status(clock.now) == "cancelled"
    assert (cancelled.ended_by, cancelled.end_reason, cancelled.end_source) == (
        "lead",
        "client asked for a week",
        "manual",
    )
    assert store.pending() == ()
    assert not cancelled.window.active_at(clock.now + HOUR)
    [past] = store.list(include_past=True)
    assert past.status(clock.now + 5 * HOUR) == "cancelled"
    assert [key for key, _ in _events(store.engine)][-1] == f"brownout:{stored.window_id}:cancelled"
    with pytest.raises(ConflictError, match="already over"):
        store.cancel(stored.window_id, actor="lead", reason="again")
    with pytest.raises(NotFoundError):
        store.cancel(stored.window_id + 100, actor="lead", reason="unknown")


def test_cancelling_a_window_in_force_ends_it_now(store: BrownoutStore, clock: Clock) -> None:
    stored = store.schedule(starts_at=None, duration=HOUR, canary_percent=100, actor="o", reason="r")
    clock.now += timedelta(minutes=10)
    ended = store.cancel(stored.window_id, actor="lead", reason="incident")
    assert ended.window.ends_at == clock.now
    assert ended.status(clock.now) == "ended"
    key, data = _events(store.engine)[-1]
    assert key == f"brownout:{stored.window_id}:ended"
    assert data["endedBy"] == "cancelled"
    # The time it ran for stays free for another window; the rest of the slot is free again.
    store.schedule(
        starts_at=clock.now + timedelta(minutes=1), duration=HOUR, canary_percent=100, actor="o", reason="r"
    )


def test_the_auto_downgrade_ends_only_the_window_in_force(
    engine: Engine, store: BrownoutStore, clock: Clock
) -> None:
    now_on = store.schedule(starts_at=None, duration=HOUR, canary_percent=100, actor="o", reason="r")
    later = store.schedule(
        starts_at=clock.now + 2 * HOUR, duration=HOUR, canary_percent=100, actor="o", reason="r"
    )
    with engine.begin() as connection:
        ended = end_active_brownouts(
            connection, clock.now, actor="alertmanager", reason="reject ratio high", source="alertmanager"
        )
    assert [window.window_id for window in ended] == [now_on.window_id]
    with engine.connect() as connection:
        row = connection.execute(
            select(stage_brownouts).where(stage_brownouts.c.id == now_on.window_id)
        ).one()
    assert (row.ended_by, row.end_source, row.end_reason) == (
        "alertmanager",
        "alertmanager",
        "reject ratio high",
    )
    assert store.pending() == (later.window,)
    assert _events(engine)[-1][1]["endedBy"] == "auto_downgrade"


def test_the_cache_keeps_the_last_windows_when_the_store_fails(store: BrownoutStore, clock: Clock) -> None:
    schedule = BrownoutSchedule(store)
    assert schedule.cache_age() == float("inf")
    stored = store.schedule(
        starts_at=clock.now + HOUR, duration=HOUR, canary_percent=100, actor="o", reason="r"
    )
    assert schedule.windows() == ()
    assert schedule.refresh()
    assert schedule.windows() == (stored.window,)
    assert schedule.cache_age() < 5
    with store.engine.begin() as connection:
        connection.execute(text("ALTER TABLE stage_brownouts RENAME TO stage_brownouts_away"))
    try:
        assert not schedule.refresh()
        assert schedule.windows() == (stored.window,)
    finally:
        with store.engine.begin() as connection:
            connection.execute(text("ALTER TABLE stage_brownouts_away RENAME TO stage_brownouts"))
