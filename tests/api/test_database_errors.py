"""Database errors at the HTTP edge: an outage is a 503 to retry, counted; a bug stays a 500."""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

import fundmodel.db.engine as engine_module
from fundmodel.db.engine import create_db_engine
from tests.conftest import ApiClient, captured_json_logs, make_database, open_api_client, settings_for

FUND = {
    "name": "Outage Fund",
    "vintageYear": 2024,
    "committedCapital": 100_000_000,
    "managementFeeRate": 0.02,
    "carriedInterestRate": 0.2,
}
PROBLEM = "application/problem+json"


def _unavailable_count(api: ApiClient, reason: str) -> float:
    value = api.state.registry.get_sample_value("fundmodel_database_unavailable_total", {"reason": reason})
    return float(value or 0.0)


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """The service's real log pipeline into a buffer (unconfigured structlog renders locals: slow)."""
    with captured_json_logs("INFO") as stream:
        yield stream


def test_a_missing_table_is_a_500_not_an_outage(api: ApiClient, json_logs: io.StringIO) -> None:
    engine = create_db_engine(api.state.settings.database_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE funds RENAME TO funds_renamed_by_test"))
    finally:
        engine.dispose()
    response = api.request("GET", "/api/funds")
    assert response.status_code == 500, response.text
    assert response.json()["code"] == "INTERNAL_ERROR"
    assert "retry-after" not in response.headers
    assert all(_unavailable_count(api, reason) == 0 for reason in ("connection", "locked", "timeout"))
    [logged] = [json.loads(line) for line in json_logs.getvalue().splitlines() if "unhandled_error" in line]
    assert logged["error_type"] in {"OperationalError", "ProgrammingError"}
    assert api.api_key not in json_logs.getvalue()


@pytest.fixture
def sqlite_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiClient]:
    """The app on SQLite with a 1 s busy timeout (15 s in service), so a held lock shows quickly."""
    monkeypatch.setattr(engine_module, "SQLITE_BUSY_TIMEOUT_SECONDS", 1)
    client, close = open_api_client(settings_for(make_database("sqlite", tmp_path, None)))
    yield client
    close()


def test_a_locked_sqlite_database_is_a_503_with_retry_after_and_counted(
    sqlite_api: ApiClient, json_logs: io.StringIO
) -> None:
    path = sqlite_api.state.settings.database_url.removeprefix("sqlite:///")
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")  # another process writing, for longer than the busy timeout
        response = sqlite_api.request("POST", "/api/funds", json=FUND)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == PROBLEM
    assert int(response.headers["retry-after"]) > 0
    body = response.json()
    assert body["code"] == "STORE_UNAVAILABLE"
    assert body["detail"] == "the database is unavailable (locked); retry later"
    assert _unavailable_count(sqlite_api, "locked") == 1
    [logged] = [
        json.loads(line) for line in json_logs.getvalue().splitlines() if "database_unavailable" in line
    ]
    assert logged["reason"] == "locked"
    assert logged["error_type"] == "OperationalError"
    # The lock released, the same request succeeds: nothing stays broken.
    assert sqlite_api.request("POST", "/api/funds", json=FUND).status_code == 201
