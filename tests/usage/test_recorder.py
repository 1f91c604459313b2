"""Writing the ledger to SQLite and PostgreSQL: counts add up exactly across flushes, ledgers, failures."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, delete, func, insert, select

from fundmodel.db.engine import create_db_engine
from fundmodel.db.usage_tables import stage_usage, stage_usage_flushes
from fundmodel.observability.metrics import USAGE_FLUSH_RESULTS, ServiceMetrics
from fundmodel.usage.flusher import UsageFlusher
from fundmodel.usage.ledger import VALID_USE, UsageLedger
from fundmodel.usage.recorder import FlushOutcome, forget_old_flushes, write_batch
from fundmodel.validation.decision_types import StageUse, UsageKind

ENDPOINT = "/api/portfolio/strategies"
FIELD = "stageAllocation"

# One recording: (client, use); the use's spelling is empty for valid and sum.
_USES = st.sampled_from(
    [
        VALID_USE[0],
        (UsageKind.ALIAS, "Seed"),
        (UsageKind.ALIAS, "Series A"),
        (UsageKind.UNKNOWN, "moonshot"),
        (UsageKind.SUM, ""),
        (UsageKind.REJECTED, "moonshot"),
        (UsageKind.REJECTED, ""),
    ]
)
_STEPS = st.lists(
    st.one_of(st.tuples(st.sampled_from(["key-1", "key-2"]), _USES), st.just("flush")), max_size=60
)


def _metrics(registry: CollectorRegistry | None = None) -> ServiceMetrics:
    return ServiceMetrics(registry if registry is not None else CollectorRegistry())


def _ledger() -> UsageLedger:
    return UsageLedger(max_spellings=50, max_held_keys=10_000)


def _stored(engine: Engine) -> Counter[tuple[str, str, str]]:
    """(client_id, kind, spelling) -> count, over all days, endpoints and fields."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(stage_usage.c.client_id, stage_usage.c.kind, stage_usage.c.spelling, stage_usage.c.count)
        ).all()
    return Counter({(row.client_id, row.kind, row.spelling): int(row.count) for row in rows})


def _record(ledger: UsageLedger, client: str, use: StageUse) -> None:
    ledger.record(client, f"name of {client}", ENDPOINT, FIELD, (use,))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=_STEPS)
def test_any_recordings_flushed_in_any_split_add_up_exactly(engine: Engine, steps: list[object]) -> None:
    with engine.begin() as connection:
        connection.execute(delete(stage_usage))
    ledger = _ledger()
    flusher = UsageFlusher(ledger, engine, _metrics())
    expected: Counter[tuple[str, str, str]] = Counter()
    for step in steps:
        if step == "flush":
            assert flusher.flush().left == 0
        else:
            assert isinstance(step, tuple)
            client, use = step
            _record(ledger, client, use)
            kind, spelling = use
            expected[(client, kind.value, spelling)] += 1
    flusher.flush_at_exit()
    assert _stored(engine) == expected
    assert ledger.held_keys() == 0


def test_two_ledgers_flushing_concurrently_add_up(engine: Engine) -> None:
    ledgers = [_ledger(), _ledger()]
    per_ledger = 400
    errors: list[BaseException] = []

    def work(ledger: UsageLedger) -> None:
        flusher = UsageFlusher(ledger, engine, _metrics())
        try:
            for number in range(per_ledger):
                _record(ledger, "key-1", (UsageKind.ALIAS, "Seed"))
                _record(ledger, f"key-{number % 4}", VALID_USE[0])
                if number % 25 == 0:
                    assert flusher.flush().left == 0
            assert flusher.flush().left == 0
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=work, args=(ledger,)) for ledger in ledgers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    stored = _stored(engine)
    assert stored[("key-1", "alias", "Seed")] == 2 * per_ledger
    assert sum(count for (_, kind, _), count in stored.items() if kind == "valid") == 2 * per_ledger


def test_the_row_keeps_the_earliest_first_and_latest_last_sighting(engine: Engine) -> None:
    clock = _Clock(datetime(2026, 12, 3, 10, 0, tzinfo=UTC).timestamp())
    ledger = UsageLedger(max_spellings=50, max_held_keys=100, clock=clock)
    flusher = UsageFlusher(ledger, engine, _metrics())
    _record(ledger, "key-1", VALID_USE[0])
    flusher.flush()
    clock.now += 3600
    _record(ledger, "key-1", VALID_USE[0])
    flusher.flush()
    with engine.connect() as connection:
        row = connection.execute(select(stage_usage)).one()
    assert row.count == 2
    assert row.day == date(2026, 12, 3)
    assert _utc(row.first_seen_at) == datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    assert _utc(row.last_seen_at) == datetime(2026, 12, 3, 11, 0, tzinfo=UTC)


def test_a_retried_batch_whose_commit_had_succeeded_is_not_added_twice(engine: Engine) -> None:
    ledger = _ledger()
    registry = CollectorRegistry()
    metrics = _metrics(registry)
    _record(ledger, "key-1", (UsageKind.UNKNOWN, "moonshot"))
    (batch,) = ledger.take()
    # The commit reached the database, but the worker saw the connection fail while committing.
    assert write_batch(engine, batch).outcome is FlushOutcome.WRITTEN
    ledger.keep_uncertain(batch)
    _record(ledger, "key-1", (UsageKind.UNKNOWN, "moonshot"))
    report = UsageFlusher(ledger, engine, metrics).flush()
    assert (report.written, report.left) == (2, 0)
    assert _stored(engine) == {("key-1", "unknown", "moonshot"): 2}
    assert _sample(registry, "fundmodel_stage_usage_flushes_total", result="already_written") == 1
    assert ledger.held_keys() == 0


def test_an_uncertain_batch_that_was_not_committed_is_written_on_retry(engine: Engine) -> None:
    ledger = _ledger()
    _record(ledger, "key-1", (UsageKind.ALIAS, "Seed"))
    (batch,) = ledger.take()
    ledger.keep_uncertain(batch)
    assert UsageFlusher(ledger, engine, _metrics()).flush().written == 1
    assert _stored(engine) == {("key-1", "alias", "Seed"): 1}


@pytest.fixture
def unreachable_engine(database_url: str, tmp_path: Path) -> Engine:
    """An engine of the same backend whose database cannot be reached."""
    if database_url.startswith("sqlite"):
        return create_db_engine(f"sqlite:///{tmp_path / 'missing-directory' / 'db.sqlite3'}")
    return create_db_engine("postgresql+psycopg://postgres@127.0.0.1:9/test?connect_timeout=2")


def test_a_database_outage_keeps_the_counts_and_the_next_flush_writes_them_once(
    engine: Engine, unreachable_engine: Engine
) -> None:
    ledger = _ledger()
    registry = CollectorRegistry()
    metrics = _metrics(registry)
    for _ in range(3):
        _record(ledger, "key-1", (UsageKind.ALIAS, "Seed"))
    down = UsageFlusher(ledger, unreachable_engine, metrics)
    first = down.flush()
    assert (first.written, first.left) == (0, 1)
    _record(ledger, "key-1", (UsageKind.ALIAS, "Seed"))
    assert down.flush().left == 1
    assert ledger.held_keys() == 1  # merged back into one key, not one batch per interval
    assert _sample(registry, "fundmodel_stage_usage_flushes_total", result="not_written") == 2
    up = UsageFlusher(ledger, engine, metrics)
    assert up.flush().left == 0
    assert _stored(engine) == {("key-1", "alias", "Seed"): 4}
    assert _sample(registry, "fundmodel_stage_usage_held_keys") == 0


def test_counts_a_stopping_worker_cannot_write_are_counted_as_lost(unreachable_engine: Engine) -> None:
    ledger = _ledger()
    registry = CollectorRegistry()
    metrics = _metrics(registry)
    _record(ledger, "key-1", VALID_USE[0])
    _record(ledger, "key-2", (UsageKind.SUM, ""))
    UsageFlusher(ledger, unreachable_engine, metrics).flush_at_exit()
    assert _sample(registry, "fundmodel_stage_usage_dropped_total", reason="shutdown") == 2


def test_week_old_flush_ids_are_forgotten(engine: Engine) -> None:
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            insert(stage_usage_flushes),
            [
                {"flush_id": "old", "flushed_at": now - timedelta(days=8)},
                {"flush_id": "recent", "flushed_at": now - timedelta(days=1)},
            ],
        )
    assert forget_old_flushes(engine, now=now) == 1
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(stage_usage_flushes)).scalar_one() == 1


def test_every_flush_outcome_has_a_metric_label() -> None:
    assert tuple(outcome.value for outcome in FlushOutcome) == USAGE_FLUSH_RESULTS


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _utc(value: datetime) -> datetime:
    """SQLite gives back naive UTC; PostgreSQL an aware value."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    assert value is not None, f"no sample {name}{labels}"
    return value
