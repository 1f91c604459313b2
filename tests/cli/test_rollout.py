"""``fundmodel rollout`` end to end: a real mode store, a real Prometheus with recorded series, exit codes."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from click.testing import Result
from sqlalchemy import update
from typer.testing import CliRunner

from fundmodel.cli.main import app
from fundmodel.cli.rollout import EXIT_ALLOWED, EXIT_BLOCKED, EXIT_COMPLETE, EXIT_USAGE, EXIT_WARN_OVERDUE
from fundmodel.db.engine import create_db_engine
from fundmodel.db.mode_store import ModeStore
from fundmodel.db.tables import stage_validation_audit
from fundmodel.ops.backup import backup_tables, create_backup
from fundmodel.ops.restore import verify_backup
from fundmodel.ops.stage_columns import stage_columns, stage_metadata
from fundmodel.settings import get_settings
from fundmodel.validation import ModeState, ValidationMode
from tests.conftest import make_database
from tests.rollout.recorded_prometheus import (
    RecordedPrometheus,
    binaries_available,
    free_port,
    recording_end,
    run_prometheus,
    standard_recording,
)

OFF, WARN, ENFORCE = ValidationMode.OFF, ValidationMode.WARN, ValidationMode.ENFORCE


@pytest.fixture(scope="module")
def recorded_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RecordedPrometheus]:
    if not binaries_available():
        pytest.skip("prometheus/promtool not installed (run scripts/system-deps.sh as root)")
    end = recording_end()
    with run_prometheus(tmp_path_factory.mktemp("prometheus"), standard_recording(end), end) as server:
        yield server


class Cli:
    def __init__(self, database_url: str, prometheus: RecordedPrometheus, tmp_path: Path) -> None:
        self.database_url = database_url
        self.prometheus_url = prometheus.url
        self.backups = tmp_path / "backups"
        self.tmp_path = tmp_path
        self.engine = create_db_engine(database_url)
        self.store = ModeStore(self.engine, default=ModeState(WARN))
        self.runner = CliRunner()

    def run(self, *args: str, scenario: str = "warn_healthy", prometheus_url: str | None = None) -> Result:
        gates = self.tmp_path / f"{scenario}.toml"
        gates.write_text(f"[gates]\nlabel_filter = 'scenario=\"{scenario}\"'\n")
        command, rest = args[0], list(args[1:])
        options = ["--database-url", self.database_url]
        if command in ("status", "advance"):
            options += [
                "--prometheus-url",
                prometheus_url or self.prometheus_url,
                "--gates-file",
                str(gates),
                "--backup-dir",
                str(self.backups),
            ]
        return self.runner.invoke(app, ["rollout", command, *rest, *options])

    def set(self, mode: ValidationMode, percent: float, ago: timedelta, source: str = "rollout") -> None:
        change = self.store.set(mode, percent, actor="pytest", reason="setup", source=source)
        with self.engine.begin() as connection:
            connection.execute(
                update(stage_validation_audit)
                .where(stage_validation_audit.c.id == change.audit_id)
                .values(changed_at=datetime.now(UTC) - ago)
            )

    def backup(self) -> None:
        metadata = stage_metadata()
        names = [column.table_name for column in stage_columns(metadata)]
        backup = create_backup(self.engine, backup_tables(metadata, names), self.backups)
        # The gate counts only a backup verify-backup has restored.
        verify_backup(backup.file, scratch_server_url=self.engine.url.render_as_string(hide_password=False))


@pytest.fixture
def cli(
    recorded_prometheus: RecordedPrometheus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Cli]:
    for name in (
        "DATABASE_URL",
        "PROMETHEUS_URL",
        "MAX_WARN_DURATION",
        "ROLLOUT_GATES_FILE",
        "FUNDMODEL_BACKUP_DIR",
    ):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    root = logging.getLogger()
    level_before, handlers_before = root.level, list(root.handlers)
    harness = Cli(make_database("sqlite", tmp_path, None), recorded_prometheus, tmp_path)
    yield harness
    harness.engine.dispose()
    get_settings.cache_clear()
    # advance/rollback configure JSON logging onto the runner's (now closed) stderr: undo it
    structlog.reset_defaults()
    for handler in list(root.handlers):
        if handler not in handlers_before:
            root.removeHandler(handler)
    root.setLevel(level_before)


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)


def test_status_exit_0_when_the_next_step_is_allowed(cli: Cli) -> None:
    cli.set(OFF, 100, timedelta(days=9))
    cli.set(WARN, 100, timedelta(days=8))
    cli.backup()
    result = cli.run("status", "--json")
    assert result.exit_code == EXIT_ALLOWED, result.output
    document = as_json(result)
    assert document["phase"] == "warn"
    assert document["next_phase"] == "enforce-10"
    assert document["verdict"] == "allowed"
    assert [g["status"] for g in document["gates"]] == ["pass"] * 6
    table = cli.run("status")
    assert table.exit_code == EXIT_ALLOWED
    for text in ("phase", "warn", "would_reject_worst_hour", "backup_fresh", "ALLOWED"):
        assert text in table.stdout


def test_status_exit_1_when_blocked_and_advance_refuses(cli: Cli) -> None:
    cli.set(OFF, 100, timedelta(days=9))
    cli.set(WARN, 100, timedelta(days=8))
    cli.backup()
    result = cli.run("status", scenario="warn_spiky")
    assert result.exit_code == EXIT_BLOCKED
    assert "BLOCKED by would_reject_worst_hour" in result.stdout
    refused = cli.run("advance", "--actor", "alice", scenario="warn_spiky")
    assert refused.exit_code == EXIT_BLOCKED
    assert refused.stderr.strip().splitlines()[-1].startswith("error: gates for enforce 10% do not pass")
    assert "Traceback" not in refused.output
    assert cli.store.read().state == ModeState(WARN)


def test_prometheus_unreachable_is_no_data_and_exit_1(cli: Cli) -> None:
    cli.set(OFF, 100, timedelta(days=9))
    cli.set(WARN, 100, timedelta(days=8))
    cli.backup()
    result = cli.run("status", "--json", prometheus_url=f"http://127.0.0.1:{free_port()}")
    assert result.exit_code == EXIT_BLOCKED
    statuses = {g["name"]: g["status"] for g in as_json(result)["gates"]}
    assert statuses["would_reject_ratio"] == statuses["would_reject_worst_hour"] == "no_data"


def test_advance_history_and_rollback(cli: Cli) -> None:
    cli.set(ENFORCE, 10, timedelta(hours=3))
    advanced = cli.run("advance", "--actor", "alice", "--reason", "canary clean", scenario="canary_healthy")
    assert advanced.exit_code == 0, advanced.output
    assert "advanced: enforce 10% -> enforce 50%" in advanced.stdout
    rolled = cli.run("rollback", "--reason", "pager", "--actor", "bob", "--json")
    assert rolled.exit_code == 0
    assert as_json(rolled)["change"]["new_label"] == "warn"
    logged = [json.loads(line) for line in rolled.stderr.splitlines() if line.startswith("{")]
    assert [(e["event"], e["source"], e["new"]) for e in logged] == [
        ("stage_validation_mode_changed", "rollout", "warn")
    ]
    history = cli.run("history", "--json", "--limit", "2")
    changes = as_json(history)["changes"]
    assert [(c["old_label"], c["new_label"], c["actor"]) for c in changes] == [
        ("enforce 50%", "warn", "bob"),
        ("enforce 10%", "enforce 50%", "alice"),
    ]
    assert changes[1]["extra"]["rollout"]["gates"][0]["name"] == "soak_time"
    table = cli.run("history")
    assert table.exit_code == 0
    assert "canary clean" in table.stdout


def test_warn_over_its_cap_exits_3_with_the_choices(cli: Cli) -> None:
    cli.set(OFF, 100, timedelta(days=45))
    cli.set(WARN, 100, timedelta(days=31))
    result = cli.run("status")
    assert result.exit_code == EXIT_WARN_OVERDUE
    assert "MAX_WARN_DURATION" in result.stdout
    assert "extend aliases" in result.stdout
    assert "keep warn for named clients" in result.stdout
    until = (datetime.now(UTC) + timedelta(days=10)).date().isoformat()
    extended = cli.run(
        "extend-warn", "--until", until, "--client", "acme", "--reason", "Q1 migration", "--actor", "c"
    )
    assert extended.exit_code == 0, extended.output
    assert cli.run("status").exit_code != EXIT_WARN_OVERDUE


def test_complete_rollout_exits_4(cli: Cli) -> None:
    cli.set(ENFORCE, 100, timedelta(days=1))
    result = cli.run("status", "--json")
    assert result.exit_code == EXIT_COMPLETE
    assert as_json(result)["verdict"] == "complete"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("advance", "--to", "enforce-25", "--actor", "a"), "unknown rollout phase"),
        (("advance", "--force", "--actor", "a"), "--force needs --reason"),
        (("extend-warn", "--until", "soon", "--reason", "r", "--actor", "a"), "is not a date"),
    ],
)
def test_usage_errors_exit_2_with_one_line(cli: Cli, args: tuple[str, ...], message: str) -> None:
    cli.set(OFF, 100, timedelta(days=1))
    result = cli.run(*args)
    assert result.exit_code == EXIT_USAGE, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert message in errors[0]
    assert "Traceback" not in result.output


def test_bad_gates_file_is_a_configuration_error(cli: Cli) -> None:
    bad = cli.tmp_path / "bad.toml"
    bad.write_text("[gates]\nsoak_enforce_10 = -1\n")
    result = cli.runner.invoke(
        app, ["rollout", "status", "--database-url", cli.database_url, "--gates-file", str(bad)]
    )
    assert result.exit_code == EXIT_USAGE
    assert "invalid rollout gate settings" in result.stderr
