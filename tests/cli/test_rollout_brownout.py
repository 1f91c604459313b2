"""``fundmodel rollout brownout schedule|list|cancel`` and the brownouts in ``rollout status``, on a real
database (SQLite and PostgreSQL): one-line refusals with their exit codes, the audit fields, JSON output."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from fundmodel.cli.common import EXIT_FAILURE, EXIT_USAGE
from fundmodel.cli.main import app
from fundmodel.settings import get_settings


@pytest.fixture
def run(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("APP_ENV", "development")
    monkeypatch.setenv("STAGE_SUNSET_DATE", "2099-01-01T00:00:00Z")
    monkeypatch.delenv("PROMETHEUS_URL", raising=False)
    get_settings.cache_clear()
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args), env={"COLUMNS": "200"}, color=False)

    yield invoke
    get_settings.cache_clear()


def _schedule(run: Any, *extra: str, start: str = "now", duration: str = "1h") -> Result:
    return run(
        "rollout", "brownout", "schedule", "--start", start, "--duration", duration,
        "--reason", "12h brownout before the Sunset", "--actor", "ops-lead", *extra,
    )  # fmt: skip


def test_schedule_list_and_cancel(run: Any) -> None:
    start = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    scheduled = _schedule(run, "--canary", "50", "--json", start=start.isoformat(), duration="12h")
    assert scheduled.exit_code == 0, scheduled.output
    window = json.loads(scheduled.stdout)["brownout"]
    assert window["status"] == "scheduled"
    assert datetime.fromisoformat(window["starts_at"]) == start
    assert datetime.fromisoformat(window["ends_at"]) == start + timedelta(hours=12)
    assert (window["canary_percent"], window["created_by"]) == (50.0, "ops-lead")
    assert window["reason"] == "12h brownout before the Sunset"

    listed = run("rollout", "brownout", "list")
    assert listed.exit_code == 0, listed.output
    for shown in ("scheduled", "50%", "ops-lead", "12h brownout before the Sunset"):
        assert shown in listed.stdout

    cancelled = run(
        "rollout",
        "brownout",
        "cancel",
        str(window["id"]),
        "--reason",
        "client asked",
        "--actor",
        "lead",
        "--json",
    )
    assert cancelled.exit_code == 0, cancelled.output
    document = json.loads(cancelled.stdout)["brownout"]
    assert (document["status"], document["ended_by"], document["end_reason"]) == (
        "cancelled",
        "lead",
        "client asked",
    )
    assert "no brownout scheduled" in run("rollout", "brownout", "list").stdout
    past = json.loads(run("rollout", "brownout", "list", "--all", "--json").stdout)["brownouts"]
    assert [(w["id"], w["status"]) for w in past] == [(window["id"], "cancelled")]


@pytest.mark.parametrize(
    ("start", "duration", "code", "line"),
    [
        (
            "2020-01-01T00:00Z",
            "1h",
            EXIT_USAGE,
            "error: the brownout start 2020-01-01T00:00:00+00:00 is in the past",
        ),
        ("tomorrow", "1h", EXIT_USAGE, "error: --start 'tomorrow' is not a time"),
        ("now", "0s", EXIT_USAGE, "error: a brownout lasts between 1s and 72h, got 0s"),
        ("now", "4d", EXIT_USAGE, "error: a brownout lasts between 1s and 72h, got 96h"),
        ("now", "soon", EXIT_USAGE, "error: --duration 'soon' is not a duration such as 12h, 30m or 90s"),
        ("2098-12-31T23:00Z", "2h", EXIT_USAGE, "error: the brownout would end at 2099-01-01T01:00:00+00:00"),
    ],
)
def test_nonsense_windows_are_refused_in_one_line(
    run: Any, start: str, duration: str, code: int, line: str
) -> None:
    result = _schedule(run, start=start, duration=duration)
    assert result.exit_code == code, result.output
    [error] = result.stderr.strip().splitlines()
    assert error.startswith(line), error


def test_an_overlap_and_an_unknown_window_are_refused(run: Any) -> None:
    assert _schedule(run).exit_code == 0
    overlap = _schedule(run, start=(datetime.now(UTC) + timedelta(minutes=30)).isoformat())
    assert overlap.exit_code == EXIT_FAILURE, overlap.output
    assert overlap.stderr.startswith("error: the brownout overlaps brownout 1 (")
    unknown = run("rollout", "brownout", "cancel", "42", "--reason", "r", "--actor", "lead")
    assert unknown.exit_code == EXIT_FAILURE
    assert unknown.stderr.strip() == "error: no brownout 42 (see `fundmodel rollout brownout list`)"


def test_rollout_status_shows_the_windows_in_force_and_to_come(run: Any) -> None:
    assert _schedule(run).exit_code == 0
    later = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    assert _schedule(run, start=later.isoformat(), duration="24h").exit_code == 0

    text = run("rollout", "status")
    assert "active brownout 1:" in text.stdout, text.output
    assert "scheduled brownout 2:" in text.stdout

    document = json.loads(run("rollout", "status", "--json").stdout)
    assert [(w["id"], w["status"]) for w in document["brownouts"]] == [(1, "active"), (2, "scheduled")]
    assert document["brownouts"][1]["duration_seconds"] == 24 * 3600
