"""Notifications reach a real HTTP receiver, on SQLite and PostgreSQL.

Every test posts to a threaded ``http.server`` on a loopback port (``receiver.py``): the bodies of a manual
mode change in both formats, a receiver that refuses connections or answers 500 and then comes back (retried
with back-off, every attempt recorded), a permanent refusal, the maximum age, a rolled-back change (no
event), deduplicated enqueues, and two dispatchers racing over the same outbox (each delivery sent once).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from fundmodel.db.mode_store import ModeStore
from fundmodel.db.notification_tables import (
    notification_attempts,
    notification_deliveries,
    notification_events,
)
from fundmodel.errors import InvalidInputError
from fundmodel.notifications.dispatcher import Dispatcher, RetryPolicy
from fundmodel.notifications.events import BrownoutEdge, brownout_event
from fundmodel.notifications.outbox import enqueue, publish, recent_deliveries
from fundmodel.notifications.targets import parse_webhook_targets
from fundmodel.validation import ModeState, ValidationMode
from tests.notifications.receiver import Receiver, free_port, receiver_on_free_port, running

FAST = RetryPolicy(timeout_seconds=2.0, max_attempts=5, base_seconds=0.05, max_seconds=0.2)


def targets_for(*entries: tuple[str, str, str]) -> list[object]:
    return list(
        parse_webhook_targets(json.dumps([{"name": n, "url": u, "format": f} for n, u, f in entries]))
    )


def dispatcher(engine: Engine, *entries: tuple[str, str, str], policy: RetryPolicy = FAST) -> Dispatcher:
    return Dispatcher(engine, targets_for(*entries), policy)  # type: ignore[arg-type]


def deliver_until_settled(sender: Dispatcher, engine: Engine, *, timeout: float = 20.0) -> None:
    """Run the dispatcher until no delivery is pending (retries come due after their back-off)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sender.run_once()
        with engine.connect() as connection:
            pending = connection.execute(
                select(func.count())
                .select_from(notification_deliveries)
                .where(notification_deliveries.c.status == "pending")
            ).scalar_one()
            unfanned = connection.execute(
                select(func.count())
                .select_from(notification_events)
                .where(notification_events.c.fanned_out_at.is_(None))
            ).scalar_one()
        if pending == 0 and unfanned == 0:
            return
        time.sleep(0.02)
    raise AssertionError("deliveries still pending")


def attempts_of(engine: Engine) -> list[tuple[int, int | None, str | None, str]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                notification_attempts.c.attempt,
                notification_attempts.c.status_code,
                notification_attempts.c.error,
                notification_attempts.c.outcome,
            ).order_by(notification_attempts.c.id)
        ).all()
    return [tuple(row) for row in rows]  # type: ignore[misc]


@pytest.fixture
def store(engine: Engine) -> ModeStore:
    return ModeStore(engine, default=ModeState(ValidationMode.WARN))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiver_on_free_port() as started:
        yield started


def test_a_manual_change_reaches_a_json_and_a_slack_target(
    engine: Engine, store: ModeStore, receiver: Receiver
) -> None:
    change = store.set(ValidationMode.ENFORCE, 10.0, actor="alice", reason="canary start")
    with dispatcher(
        engine, ("ops", receiver.url("/json"), "json"), ("chat", receiver.url("/slack"), "slack")
    ) as d:
        report = d.run_once()
    assert (report.fanned_out, report.delivered) == (1, 2)
    [generic] = receiver.bodies("/json")
    assert generic["kind"] == "mode_change"
    assert generic["data"]["auditId"] == change.audit_id
    assert generic["data"]["old"]["mode"] == "warn"
    assert generic["data"]["new"]["label"] == "enforce 10%"
    assert generic["data"]["actor"] == "alice"
    [slack] = receiver.bodies("/slack")
    assert slack["text"].startswith("Stage validation: warn → enforce 10% (manual, by alice)")
    assert slack["blocks"][0]["type"] == "section"
    headers = receiver.received[0].headers
    assert headers["X-Fundmodel-Event-Id"] == str(generic["id"])
    assert [row.status for row in recent_deliveries(engine)] == ["delivered", "delivered"]
    assert [a[1:] for a in attempts_of(engine)] == [(200, None, "delivered")] * 2


def test_a_rolled_back_change_leaves_no_notification(engine: Engine, store: ModeStore) -> None:
    with pytest.raises(InvalidInputError):
        store.set(ValidationMode.ENFORCE, 10.0, actor="a", reason="r", canary_clients=["no-such-key"])
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(notification_events)).scalar_one() == 0


def test_a_receiver_that_is_down_then_back_gets_the_notification_after_retries(
    engine: Engine, store: ModeStore
) -> None:
    port = free_port()
    down = Receiver(port, responses=[500])
    store.set(ValidationMode.OFF, actor="bob", reason="incident")
    with dispatcher(engine, ("ops", down.url(), "json")) as d:
        before = datetime.now(UTC)
        first = d.run_once()  # nothing listens yet: connection refused
        assert (first.delivered, first.retried) == (0, 1)
        [row] = recent_deliveries(engine)
        assert (row.status, row.attempts, row.last_error) == ("pending", 1, "ConnectError")
        assert row.next_attempt_at is not None
        assert row.next_attempt_at > before  # scheduled with back-off, not at once
        with running(down):  # back, but answering 500 once
            deliver_until_settled(d, engine)
    [body] = down.bodies()
    assert body["data"]["reason"] == "incident"
    assert down.answered == [500, 200]
    assert attempts_of(engine) == [
        (1, None, "ConnectError", "retry"),
        (2, 500, None, "retry"),
        (3, 200, None, "delivered"),
    ]
    [row] = recent_deliveries(engine)
    assert (row.status, row.attempts, row.last_status_code) == ("delivered", 3, 200)


def test_a_permanent_refusal_is_not_retried_and_exhausted_attempts_fail(
    engine: Engine, store: ModeStore, receiver: Receiver
) -> None:
    receiver.responses = [404] + [503] * 10
    store.set(ValidationMode.OFF, actor="a", reason="one")
    with dispatcher(engine, ("gone", receiver.url("/gone"), "json")) as d:
        deliver_until_settled(d, engine)
        store.set(ValidationMode.WARN, actor="a", reason="two")
        deliver_until_settled(d, engine)
    statuses = {
        row.summary.rsplit(": ", 1)[1]: (row.status, row.attempts) for row in recent_deliveries(engine)
    }
    assert statuses == {"one": ("failed", 1), "two": ("failed", FAST.max_attempts)}


def test_an_event_older_than_the_maximum_age_expires_unsent(
    engine: Engine, store: ModeStore, receiver: Receiver
) -> None:
    store.set(ValidationMode.OFF, actor="a", reason="long ago")
    later = datetime.now(UTC) + timedelta(hours=25)
    with Dispatcher(engine, targets_for(("ops", receiver.url(), "json")), FAST, clock=lambda: later) as d:  # type: ignore[arg-type]
        report = d.run_once()
    assert (report.expired, report.delivered) == (1, 0)
    assert receiver.received == []
    [row] = recent_deliveries(engine)
    assert (row.status, row.last_error) == ("expired", "max_age")


def test_the_same_brownout_edge_is_enqueued_once(engine: Engine, receiver: Receiver) -> None:
    now = datetime.now(UTC)
    event = brownout_event(
        BrownoutEdge.STARTED,
        brownout_id=5,
        starts_at=now,
        ends_at=now + timedelta(hours=1),
        canary_percent=100.0,
        actor="brownout schedule",
        reason="1h brownout",
    )
    assert publish(engine, event) is True
    assert publish(engine, event) is False  # another worker noticed the same edge
    with engine.begin() as connection:
        assert enqueue(connection, event) is False
    with dispatcher(engine, ("ops", receiver.url(), "json")) as d:
        d.run_once()
    [body] = receiver.bodies()
    assert body["kind"] == "brownout"
    assert body["data"]["brownoutId"] == 5


def test_two_dispatchers_never_send_the_same_delivery_twice(
    engine: Engine, store: ModeStore, receiver: Receiver
) -> None:
    receiver.delay = 0.01  # long enough for both dispatchers to be mid-claim at once
    changes = 15
    for number in range(changes):
        store.set(
            ValidationMode.OFF if number % 2 else ValidationMode.WARN, actor="a", reason=f"change {number}"
        )
    senders = [dispatcher(engine, ("ops", receiver.url(), "json")) for _ in range(2)]
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def work(sender: Dispatcher) -> None:
        try:
            start.wait()
            for _ in range(50):
                sender.run_once(max_deliveries=3)
        except BaseException as exc:  # re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(sender,)) for sender in senders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for sender in senders:
        sender.close()
    assert errors == []
    sent = Counter(body["id"] for body in receiver.bodies())
    assert len(sent) == changes
    assert set(sent.values()) == {1}
    assert len(attempts_of(engine)) == changes


def test_a_delivery_is_shown_by_target_name_never_by_url(
    engine: Engine, store: ModeStore, tmp_path: Path
) -> None:
    secret = f"http://127.0.0.1:{free_port()}/services/T0/B0/sekrit-{tmp_path.name}"
    store.set(ValidationMode.OFF, actor="a", reason="r")
    with dispatcher(engine, ("chat", secret, "slack")) as d:
        d.run_once()
    [row] = recent_deliveries(engine)
    assert row.target == "chat"
    with engine.connect() as connection:
        for table in (notification_events, notification_deliveries, notification_attempts):
            for stored_row in connection.execute(select(table)).all():
                assert "sekrit" not in repr(tuple(stored_row))
