"""`fundmodel keys create` and `fundmodel keys list`: operators map log and status entries to clients."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from fundmodel.auth.service import authenticate, hash_key
from fundmodel.cli.main import app
from fundmodel.db.engine import create_db_engine
from fundmodel.db.tables import api_keys
from fundmodel.settings import get_settings

runner = CliRunner()


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    get_settings.cache_clear()
    yield database_url
    get_settings.cache_clear()


def _create(name: str) -> str:
    result = runner.invoke(app, ["keys", "create", name])
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[0]


def test_keys_list_shows_name_prefix_created_last_used_and_revoked(env: str) -> None:
    empty = runner.invoke(app, ["keys", "list", "--json"])
    assert empty.exit_code == 0, empty.output
    assert json.loads(empty.stdout) == {"keys": []}
    used, idle, gone = _create("web-app"), _create("batch-job"), _create("old-client")
    engine = create_db_engine(env)
    try:
        assert authenticate(engine, used) is not None
        with engine.begin() as connection:
            connection.execute(
                update(api_keys).where(api_keys.c.name == "old-client").values(revoked_at=datetime.now(UTC))
            )
    finally:
        engine.dispose()

    listed = runner.invoke(app, ["keys", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    keys = {key["name"]: key for key in json.loads(listed.stdout)["keys"]}
    assert list(keys) == ["web-app", "batch-job", "old-client"]
    assert keys["web-app"]["prefix"] == used[:12]
    assert keys["web-app"]["client_id"].startswith("key-")
    assert keys["web-app"]["last_used_at"] is not None
    assert keys["batch-job"]["last_used_at"] is None
    assert (keys["old-client"]["revoked"], keys["batch-job"]["revoked"]) == (True, False)
    assert datetime.fromisoformat(keys["old-client"]["revoked_at"]).tzinfo is not None

    text = runner.invoke(app, ["keys", "list"])
    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    assert lines[0].split() == ["NAME", "CLIENT", "PREFIX", "CREATED", "LAST", "USED", "REVOKED"]
    batch_line = next(line for line in lines if line.startswith("batch-job"))
    assert "never" in batch_line
    assert batch_line.endswith("-")
    for secret in (used, idle, gone):
        for output in (listed.stdout, text.stdout):
            assert secret not in output
            assert hash_key(secret) not in output


def test_keys_list_on_a_missing_database_is_one_line(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'absent.sqlite3'}")
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["keys", "list"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert [line for line in result.output.splitlines() if line.startswith("error:")]
