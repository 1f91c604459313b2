"""Revision 0003 adds ``stage_webhook_deliveries`` and copies the keys earlier downgrades recorded."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, insert, select

from fundmodel.db.engine import create_db_engine
from fundmodel.db.migrate import alembic_config, upgrade_to_head
from fundmodel.db.tables import stage_validation_audit, stage_webhook_deliveries
from fundmodel.mode_ops.deliveries import record_deliveries, seen_deliveries
from tests.conftest import BACKENDS, _fresh_postgres_url

BEFORE = "0002_stage_normalization"


@pytest.fixture(params=BACKENDS)
def unmigrated_url(request: pytest.FixtureRequest, tmp_path: Path, postgres_database: str | None) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'before-0003.sqlite3'}"
    if postgres_database is None:
        pytest.skip("PostgreSQL not reachable")
    return _fresh_postgres_url(postgres_database)


def _upgrade(engine: Engine, revision: str) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def test_upgrade_copies_the_keys_of_earlier_downgrades(unmigrated_url: str) -> None:
    engine = create_db_engine(unmigrated_url)
    try:
        _upgrade(engine, BEFORE)
        audit = {
            "old_mode": "enforce",
            "old_canary_percent": 100.0,
            "new_mode": "warn",
            "new_canary_percent": 100.0,
            "actor": "alertmanager",
            "reason": "r",
            "changed_at": datetime(2026, 11, 28, 10, 0, tzinfo=UTC),
        }
        with engine.begin() as connection:
            connection.execute(
                insert(stage_validation_audit),
                [
                    {
                        **audit,
                        "source": "alertmanager",
                        "extra": {"idempotencyKeys": ["a" * 64, "b" * 64]},
                    },
                    {**audit, "source": "manual", "extra": {}},
                    {
                        **audit,
                        "source": "alertmanager",
                        "extra": {"idempotencyKeys": ["c" * 64, 42, "x" * 65]},  # junk skipped
                    },
                ],
            )
        upgrade_to_head(engine)
        with engine.connect() as connection:
            rows = connection.execute(
                select(stage_webhook_deliveries.c.idempotency_key, stage_webhook_deliveries.c.result)
            ).all()
        assert sorted(rows) == [("a" * 64, "downgraded"), ("b" * 64, "downgraded"), ("c" * 64, "downgraded")]
        assert seen_deliveries(engine, ["a" * 64, "d" * 64]) == {"a" * 64}
    finally:
        engine.dispose()


def test_recording_is_insert_or_ignore(engine: Engine) -> None:
    assert record_deliveries(engine, ["k" * 64, "l" * 64], result="unchanged") == 2
    assert record_deliveries(engine, ["k" * 64, "m" * 64], result="downgraded", audit_id=7) == 1
    assert record_deliveries(engine, [], result="unchanged") == 0
    with engine.connect() as connection:
        kept = dict(
            connection.execute(
                select(stage_webhook_deliveries.c.idempotency_key, stage_webhook_deliveries.c.result)
            ).all()
        )
    assert kept == {"k" * 64: "unchanged", "l" * 64: "unchanged", "m" * 64: "downgraded"}


def test_many_keys_are_checked_and_recorded_in_chunks(engine: Engine) -> None:
    keys = [f"{i:064x}" for i in range(1200)]
    assert record_deliveries(engine, keys, result="unchanged") == 1200
    assert seen_deliveries(engine, keys) == frozenset(keys)
