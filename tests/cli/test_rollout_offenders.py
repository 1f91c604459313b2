"""``fundmodel rollout offenders``: the usage ledger read from the database itself (SQLite, PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from fundmodel.auth.models import CreatedKey
from fundmodel.auth.service import create_key
from fundmodel.cli.common import EXIT_USAGE
from fundmodel.cli.main import app
from fundmodel.db.engine import create_db_engine
from fundmodel.settings import get_settings
from tests.usage.test_service import insert_usage, usage_row

TODAY = datetime.now(UTC).date()
COMPANIES = "/api/funds/{fundId}/companies"
SIMULATE = "/api/monte-carlo/simulate"


@pytest.fixture
def ledger(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Engine, CreatedKey, CreatedKey]]:
    """Two keys with usage: ``quiet-client`` a little (an alias), ``loud-client`` more (rejected, a sum)."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("STAGE_USAGE_RETENTION_DAYS", "90")
    monkeypatch.setenv("COLUMNS", "160")  # Rich's table width: one line per row, as on a wide terminal
    get_settings.cache_clear()
    engine = create_db_engine(database_url)
    quiet = create_key(engine, "quiet-client")
    loud = create_key(engine, "loud-client")
    insert_usage(
        engine,
        usage_row(f"key-{quiet.key_id}", "alias", 2, day=TODAY, endpoint=COMPANIES, spelling="Series-A"),
        usage_row(f"key-{quiet.key_id}", "valid", 900, day=TODAY, endpoint=COMPANIES),
        usage_row(f"key-{loud.key_id}", "rejected", 40, day=TODAY, endpoint=SIMULATE, spelling="[bold]x"),
        usage_row(f"key-{loud.key_id}", "sum", 9, day=TODAY - timedelta(days=20), endpoint=COMPANIES),
    )
    yield engine, quiet, loud
    engine.dispose()
    get_settings.cache_clear()


def offenders(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["rollout", "offenders", *args])
    return result.exit_code, result.stdout, result.stderr


def test_json_ranks_clients_by_volume_with_key_name_and_prefix(
    ledger: tuple[Engine, CreatedKey, CreatedKey],
) -> None:
    _, quiet, loud = ledger

    code, stdout, _ = offenders("--json")

    assert code == 0
    document = json.loads(stdout)
    assert document["ok"] is True
    assert document["since"] == (TODAY - timedelta(days=30)).isoformat()
    assert [(c["keyName"], c["keyPrefix"], c["count"]) for c in document["clients"]] == [
        ("loud-client", loud.prefix, 49),
        ("quiet-client", quiet.prefix, 2),
    ]
    assert quiet.secret not in stdout
    assert loud.secret not in stdout


def test_since_and_endpoint_narrow_the_report(ledger: tuple[Engine, CreatedKey, CreatedKey]) -> None:
    code, stdout, _ = offenders("--since", "7d", "--endpoint", COMPANIES, "--json")

    assert code == 0
    assert [(c["keyName"], c["count"]) for c in json.loads(stdout)["clients"]] == [("quiet-client", 2)]


def test_the_table_names_clients_and_prints_spellings_as_sent(
    ledger: tuple[Engine, CreatedKey, CreatedKey],
) -> None:
    code, stdout, _ = offenders("--since", "7d")

    assert code == 0
    assert stdout.index("loud-client") < stdout.index("quiet-client")
    assert "[bold]x" in stdout  # a client's spelling is text, never Rich markup
    assert "rejected 40" in stdout


def test_nothing_to_report_says_so(ledger: tuple[Engine, CreatedKey, CreatedKey]) -> None:
    code, stdout, _ = offenders("--endpoint", "/api/portfolio/strategies")

    assert code == 0
    assert "no client relied on deprecated stage handling on /api/portfolio/strategies" in stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "week"], "error: since must be a whole number of days such as '7d'"),
        (["--since", "91d"], "error: since must be at most 90d"),
        (["--endpoint", "/api/nope"], "error: endpoint must be one of: /api/monte-carlo/simulate"),
    ],
)
def test_a_bad_option_is_one_line_and_exit_2(
    ledger: tuple[Engine, CreatedKey, CreatedKey], args: list[str], message: str
) -> None:
    code, stdout, stderr = offenders(*args)

    assert code == EXIT_USAGE
    assert stderr.startswith(message)
    assert len(stderr.strip().splitlines()) == 1
    assert stdout == ""
