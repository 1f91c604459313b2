"""The API's commands: db migrate / seed-demo, keys create, mode get / set, serve's start-up check."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest
import typer
from sqlalchemy import select
from typer.testing import CliRunner

from fundmodel.auth.service import authenticate
from fundmodel.cli.db import create_db_group
from fundmodel.cli.main import app
from fundmodel.db.engine import create_db_engine
from fundmodel.db.tables import stage_validation_audit
from fundmodel.settings import get_settings
from tests.api.servers import FUNDMODEL_CLI, service_env

runner = CliRunner()


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("STAGE_VALIDATION_MODE", "warn")
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    get_settings.cache_clear()
    yield database_url
    get_settings.cache_clear()


def test_db_migrate_and_seed_demo_are_idempotent(env: str) -> None:
    root = typer.Typer()
    root.add_typer(create_db_group(), name="db")
    for _ in range(2):
        migrated = runner.invoke(root, ["db", "migrate"])
        assert migrated.exit_code == 0, migrated.output
        assert "0001_initial" in migrated.output or "revision" in migrated.output
    first = runner.invoke(root, ["db", "seed-demo"])
    second = runner.invoke(root, ["db", "seed-demo"])
    assert "created" in first.output
    assert "already present" in second.output


def test_keys_create_prints_a_working_key_once(env: str) -> None:
    result = runner.invoke(app, ["keys", "create", "ci-client"])
    assert result.exit_code == 0, result.output
    secret = result.stdout.strip().splitlines()[0]
    assert secret.startswith("fmk_")
    engine = create_db_engine(env)
    principal = authenticate(engine, secret)
    engine.dispose()
    assert principal is not None
    assert principal.name == "ci-client"


def test_mode_set_and_get(env: str) -> None:
    before = runner.invoke(app, ["mode", "get", "--json"])
    assert json.loads(before.stdout) | {"updatedAt": None} == {
        "mode": "warn",
        "canaryPercent": 100.0,
        "canaryClients": [],
        "aliasesRejected": False,
        "source": "default",
        "version": 0,
        "updatedAt": None,
        "updatedBy": None,
    }
    changed = runner.invoke(
        app,
        ["mode", "set", "enforce", "--canary", "10", "--actor", "ops", "--reason", "canary 10%"],
    )
    assert changed.exit_code == 0, changed.output
    # The result is output (stdout); only the structured log event goes to stderr.
    assert changed.stdout.startswith("mode: warn -> enforce"), changed.stdout
    assert "audit #" in changed.stdout
    assert "mode: warn -> enforce" not in changed.stderr
    after = json.loads(runner.invoke(app, ["mode", "get", "--json"]).stdout)
    assert (after["mode"], after["canaryPercent"], after["updatedBy"]) == ("enforce", 10.0, "ops")
    engine = create_db_engine(env)
    with engine.connect() as connection:
        audit = connection.execute(select(stage_validation_audit)).one()
    engine.dispose()
    assert (audit.old_mode, audit.new_mode, audit.actor, audit.reason) == (
        "warn",
        "enforce",
        "ops",
        "canary 10%",
    )


def test_mode_set_requires_actor_and_reason(env: str) -> None:
    result = runner.invoke(app, ["mode", "set", "off"])
    assert result.exit_code == 2


def test_serve_refuses_an_invalid_mode_in_one_line(tmp_path: object) -> None:
    env = service_env(f"sqlite:///{tmp_path}/x.sqlite3", STAGE_VALIDATION_MODE="strict")
    result = subprocess.run(
        [FUNDMODEL_CLI, "serve", "--port", "0"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2  # a configuration error, as for every command
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: invalid configuration: STAGE_VALIDATION_MODE")
