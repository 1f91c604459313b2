"""`fundmodel db prune-usage`: ledger rows past retention are deleted (or counted with --dry-run)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import insert, select
from typer.testing import CliRunner

from fundmodel.cli.main import app
from fundmodel.db.engine import create_db_engine
from fundmodel.db.usage_tables import stage_usage
from fundmodel.settings import get_settings

runner = CliRunner()


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    get_settings.cache_clear()
    yield database_url
    get_settings.cache_clear()


def _insert_days(database_url: str, ages: list[int]) -> date:
    """One row per age in days before today (UTC); returns today."""
    today = datetime.now(UTC).date()
    seen = datetime.now(UTC)
    rows = [
        {
            "day": today - timedelta(days=age),
            "client_id": "key-1",
            "endpoint": "/api/portfolio/strategies",
            "field": "stageAllocation",
            "kind": "alias",
            "spelling": "Seed",
            "count": 3,
            "first_seen_at": seen,
            "last_seen_at": seen,
            "client_name": "web-app",
        }
        for age in ages
    ]
    engine = create_db_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(insert(stage_usage), rows)
    finally:
        engine.dispose()
    return today


def _ages_left(database_url: str, today: date) -> list[int]:
    engine = create_db_engine(database_url)
    try:
        with engine.connect() as connection:
            days = connection.execute(select(stage_usage.c.day)).scalars().all()
    finally:
        engine.dispose()
    return sorted((today - day).days for day in days)


def test_dry_run_counts_and_deletes_nothing_then_prune_keeps_the_retention(env: str) -> None:
    today = _insert_days(env, [0, 5, 90, 91, 400])
    dry = runner.invoke(app, ["db", "prune-usage", "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout) == {
        "ok": True,
        "dryRun": True,
        "olderThanDays": 90,
        "before": (today - timedelta(days=90)).isoformat(),
        "rows": 2,
    }
    assert _ages_left(env, today) == [0, 5, 90, 91, 400]
    pruned = runner.invoke(app, ["db", "prune-usage"])
    assert pruned.exit_code == 0, pruned.output
    assert pruned.stdout.startswith("deleted 2 stage-usage rows of days before ")
    assert _ages_left(env, today) == [0, 5, 90]


def test_older_than_overrides_the_retention_setting(env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAGE_USAGE_RETENTION_DAYS", "30")
    get_settings.cache_clear()
    today = _insert_days(env, [0, 10, 31])
    assert runner.invoke(app, ["db", "prune-usage"]).exit_code == 0
    assert _ages_left(env, today) == [0, 10]
    result = runner.invoke(app, ["db", "prune-usage", "--older-than", "7", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"] == 1
    assert _ages_left(env, today) == [0]


def test_a_retention_below_one_day_is_a_usage_error(env: str) -> None:
    result = runner.invoke(app, ["db", "prune-usage", "--older-than", "0"])
    assert result.exit_code == 2
