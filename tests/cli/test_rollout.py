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
from sqlalchemy import insert, update
from typer.testing import CliRunner

from fundmodel.cli.main import app
from fundmodel.cli.rollout import EXIT_ALLOWED, EXIT_BLOCKED, EXIT_COMPLETE, EXIT_USAGE, EXIT_WARN_OVERDUE
from fundmodel.db.engine import create_db_engine
from fundmodel.db.exemption_tables import client_exemptions
from fundmodel.db.mode_store import ModeStore
from fundmodel.db.tables import api_keys, stage_validation_audit
from fundmodel.db.usage_tables import stage_usage
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
    cli.store.set(ENFORCE, 100, actor="pytest", reason="sunset", source="rollout", aliases_rejected=True)
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


# --- without Prometheus: first-run state, named canary clients, cohort preview, reset-observation ----------


@pytest.fixture
def offline(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[CliRunner, str, Any]]:
    """The rollout and mode commands on a fresh store of each kind, with seven API clients, no Prometheus."""
    from fundmodel.auth.service import create_key

    for name in (
        "PROMETHEUS_URL",
        "MAX_WARN_DURATION",
        "ROLLOUT_GATES_FILE",
        "APP_ENV",
        "FUNDMODEL_BACKUP_MAX_AGE_HOURS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    engine = create_db_engine(database_url)
    for number in range(1, 8):
        create_key(engine, f"client-{number}")
    with engine.begin() as connection:  # as the API records it on use: all seven clients are active
        connection.execute(update(api_keys).values(last_used_at=datetime.now(UTC) - timedelta(hours=1)))
    root = logging.getLogger()
    handlers_before = list(root.handlers)
    yield CliRunner(), database_url, engine
    engine.dispose()
    get_settings.cache_clear()
    structlog.reset_defaults()
    for handler in list(root.handlers):
        if handler not in handlers_before:
            root.removeHandler(handler)


def test_a_fresh_store_starts_the_ladder_at_warn_with_a_recorded_since(
    offline: tuple[CliRunner, str, Any],
) -> None:
    runner, url, engine = offline
    document = json.loads(runner.invoke(app, ["rollout", "status", "--json", "--database-url", url]).stdout)
    assert (document["phase"], document["next_phase"], document["mode_set"]) == ("warn", "enforce-10", True)
    assert document["entered_at"] is not None
    assert document["since_source"] == "audit"
    assert document["warn_cap"]["active_since"] == document["entered_at"]
    [start] = ModeStore(engine, default=ModeState(WARN)).audit_log()
    assert (start.source, start.extra["rollout"]["action"]) == ("rollout", "start")
    # The next step's cohort: 10 % of seven clients by hash, or nobody; named clients are the cure.
    current, following = document["cohorts"]
    assert current["canary"] == []
    assert current["canary_step"] is False
    assert following["step"] == "enforce 10%"
    assert following["active_clients"] == 7
    text = runner.invoke(app, ["rollout", "status", "--database-url", url]).stdout
    assert "since: unknown" not in text
    assert "phase: warn  since 20" in text
    assert "canary at enforce 10%" in text
    again = runner.invoke(app, ["rollout", "history", "--json", "--database-url", url])
    assert len(json.loads(again.stdout)["changes"]) == 1  # recorded once


def test_named_canary_clients_through_advance_status_and_mode_get(
    offline: tuple[CliRunner, str, Any],
) -> None:
    runner, url, _engine = offline
    base = ["--database-url", url, "--actor", "alice"]
    unknown = runner.invoke(
        app,
        [
            "rollout",
            "advance",
            "--to",
            "enforce-10",
            "--force",
            "--reason",
            "drill",
            "--canary-client",
            "nobody",
            *base,
        ],
    )
    assert unknown.exit_code == EXIT_USAGE
    assert "unknown canary client 'nobody'" in unknown.stderr
    advanced = runner.invoke(
        app,
        [
            "rollout", "advance", "--to", "enforce-10", "--force", "--reason", "drill",
            "--canary-client", "client-2", "--canary-client", "client-5", "--json", *base,
        ],
    )  # fmt: skip
    assert advanced.exit_code == 0, advanced.output
    change = json.loads(advanced.stdout)["change"]
    assert change["new_label"] == "enforce 10%"
    status = json.loads(runner.invoke(app, ["rollout", "status", "--json", "--database-url", url]).stdout)
    assert status["canary_clients"] == ["client-2", "client-5"]
    current = status["cohorts"][0]
    assert {"client-2", "client-5"} <= set(current["canary"])
    assert current["empty"] is False
    assert current["suggestion"] is None
    got = json.loads(runner.invoke(app, ["mode", "get", "--json"]).stdout)
    assert (got["mode"], got["canaryPercent"], got["canaryClients"]) == (
        "enforce",
        10.0,
        ["client-2", "client-5"],
    )
    assert "client-2" in runner.invoke(app, ["rollout", "status", "--database-url", url]).stdout


def test_mode_set_names_canary_clients_and_the_sunset_flag(offline: tuple[CliRunner, str, Any]) -> None:
    runner, _url, engine = offline
    who = ["--actor", "alice", "--reason", "canary by name"]
    refused = runner.invoke(
        app, ["mode", "set", "enforce", "--canary", "0", "--canary-client", "nobody", *who]
    )
    assert refused.exit_code == EXIT_USAGE
    named = runner.invoke(
        app, ["mode", "set", "enforce", "--canary", "0", "--canary-client", "client-1", *who]
    )
    assert named.exit_code == 0, named.output
    assert "enforce 0% + client-1" in named.stdout
    [latest] = ModeStore(engine, default=ModeState(WARN)).audit_log(1)
    assert latest.new.canary_clients == {"client-1"}
    sunset = runner.invoke(app, ["mode", "set", "enforce", "--reject-aliases", *who])
    assert sunset.exit_code == 0, sunset.output
    got = json.loads(runner.invoke(app, ["mode", "get", "--json"]).stdout)
    assert (got["aliasesRejected"], got["canaryClients"]) == (True, [])


def test_reset_observation_is_audited_and_shown(offline: tuple[CliRunner, str, Any]) -> None:
    runner, url, engine = offline
    base = ["--database-url", url, "--actor", "alice"]
    runner.invoke(app, ["rollout", "status", "--database-url", url])
    reset = runner.invoke(
        app, ["rollout", "reset-observation", "--reason", "client-3 fixed its stages", *base]
    )
    assert reset.exit_code == 0, reset.output
    assert "observation of warn restarted" in reset.stdout
    [latest, _start] = ModeStore(engine, default=ModeState(WARN)).audit_log(2)
    assert latest.extra["rollout"]["action"] == "reset_observation"
    assert (latest.actor, latest.reason) == ("alice", "client-3 fixed its stages")
    document = json.loads(runner.invoke(app, ["rollout", "status", "--json", "--database-url", url]).stdout)
    assert document["observation_reset"]["reason"] == "client-3 fixed its stages"
    observed = next(g for g in document["gates"] if g["name"] == "warn_observed")
    assert observed["status"] == "fail"
    assert "observation restarted" in observed["detail"]
    assert document["phase"] == "warn"  # the mode did not change
    missing = runner.invoke(app, ["rollout", "reset-observation", *base])
    assert missing.exit_code == EXIT_USAGE


def test_production_backup_gate_threshold_is_one_hour(
    offline: tuple[CliRunner, str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    runner, url, _engine = offline
    document = json.loads(runner.invoke(app, ["rollout", "status", "--json", "--database-url", url]).stdout)
    backup = next(g for g in document["gates"] if g["name"] == "backup_fresh")
    assert backup["threshold"] == 24 * 3600
    monkeypatch.setenv("APP_ENV", "production")
    get_settings.cache_clear()
    try:
        production = runner.invoke(app, ["rollout", "status", "--json", "--database-url", url])
    finally:
        monkeypatch.delenv("APP_ENV")
        get_settings.cache_clear()
    document = json.loads(production.stdout)
    backup = next(g for g in document["gates"] if g["name"] == "backup_fresh")
    assert backup["threshold"] == 3600
    assert backup["status"] == "fail"  # no backup verify-backup has restored
    # The limit of normalize-stages --apply's backup gate applies here too.
    monkeypatch.setenv("FUNDMODEL_BACKUP_MAX_AGE_HOURS", "6")
    shared = json.loads(runner.invoke(app, ["rollout", "status", "--json", "--database-url", url]).stdout)
    assert next(g for g in shared["gates"] if g["name"] == "backup_fresh")["threshold"] == 6 * 3600
    monkeypatch.setenv("FUNDMODEL_BACKUP_MAX_AGE_HOURS", "soon")
    bad = runner.invoke(app, ["rollout", "status", "--database-url", url])
    assert bad.exit_code == EXIT_USAGE
    assert "FUNDMODEL_BACKUP_MAX_AGE_HOURS must be a positive number" in bad.stderr


# --- the client gate before enforce 100 %, exemptions, dry-run gates (usage ledger rows inserted directly) --

CANARY_GATES = (
    "soak_time",
    "canary_sample",
    "canary_reject_ratio",
    "canary_vs_baseline",
    "validation_p99",
    "no_auto_downgrade",
)


def ledger_row(engine: Any, client: int, kind: str, count: int, ago: timedelta) -> None:
    """One stage_usage row as the service's flush writes it (client N is API key N, ``client-N``)."""
    seen = datetime.now(UTC) - ago
    with engine.begin() as connection:
        connection.execute(
            insert(stage_usage).values(
                day=seen.date(),
                client_id=f"key-{client}",
                endpoint="POST /api/funds/{fundId}/companies",
                field="stage",
                kind=kind,
                spelling="" if kind == "valid" else "mezzanine",
                count=count,
                first_seen_at=seen,
                last_seen_at=seen,
                client_name=f"client-{client}",
            )
        )


@pytest.fixture
def at_fifty(offline: tuple[CliRunner, str, Any], tmp_path: Path) -> tuple[CliRunner, str, Any, Path]:
    """enforce 50 % with traffic from client-1 and client-2 rejected under enforce; without Prometheus the
    canary gates have no data, so the gates file runs them dry: the client gate alone decides."""
    runner, url, engine = offline
    ModeStore(engine, default=ModeState(WARN)).set(
        ENFORCE, 50, actor="pytest", reason="setup", source="rollout"
    )
    ledger_row(engine, 1, "valid", 900, timedelta(hours=1))
    ledger_row(engine, 2, "valid", 60, timedelta(hours=1))
    ledger_row(engine, 2, "rejected", 40, timedelta(minutes=30))
    gates = tmp_path / "gates.toml"
    gates.write_text(f"[gates]\ndry_run_gates = {json.dumps(list(CANARY_GATES))}\n")
    return runner, url, engine, gates


def test_the_client_gate_blocks_names_the_client_and_an_exemption_unblocks_it(
    at_fifty: tuple[CliRunner, str, Any, Path],
) -> None:
    runner, url, engine, gates = at_fifty
    status = ["rollout", "status", "--database-url", url, "--gates-file", str(gates)]
    blocked = runner.invoke(app, status, env={"COLUMNS": "200"})
    assert blocked.exit_code == EXIT_BLOCKED, blocked.output
    assert "BLOCKED by clients_rejected" in blocked.stdout
    assert "clients_rejected: client-2 sent 40 (rejected 40), last" in blocked.stdout
    assert "dry-run: no data" in blocked.stdout
    document = json.loads(runner.invoke(app, [*status, "--json"]).stdout)
    [report] = document["client_gates"]
    assert [(c["client"], c["count"], c["kinds"]) for c in report["blocking"]] == [
        ("client-2", 40, {"rejected": 40})
    ]
    gate = next(g for g in document["gates"] if g["name"] == "clients_rejected")
    assert (gate["status"], gate["blocks"]) == ("fail", True)
    # The cohort preview's share is of the traffic the ledger counted (client-2: 100 of 1,000).
    current = document["cohorts"][0]
    assert current["share_basis"] == "traffic"
    assert current["validations"] == 1000
    refused = runner.invoke(
        app, ["rollout", "advance", "--actor", "alice", "--database-url", url, "--gates-file", str(gates)]
    )
    assert refused.exit_code == EXIT_BLOCKED
    assert "clients_rejected fail" in refused.stderr.strip().splitlines()[-1]
    assert "soak_time" not in refused.stderr.strip().splitlines()[-1]  # dry-run gates never block

    until = (datetime.now(UTC) + timedelta(days=14)).date().isoformat()
    exempt = ["rollout", "exempt", "--database-url", url, "--actor", "carol"]
    granted = runner.invoke(
        app, [*exempt, "--client", "client-2", "--until", until, "--reason", "client-2 ships in Q1", "--json"]
    )
    assert granted.exit_code == 0, granted.output
    change = json.loads(granted.stdout)["change"]
    assert (change["actor"], change["reason"]) == ("carol", "client-2 ships in Q1")
    assert change["extra"]["exemption"]["client"] == "client-2"
    assert change["old_label"] == change["new_label"] == "enforce 50%"
    history = runner.invoke(app, ["rollout", "history", "--database-url", url], env={"COLUMNS": "200"})
    assert "exemption granted: client-2" in history.stdout
    allowed = runner.invoke(app, status, env={"COLUMNS": "200"})
    assert allowed.exit_code == EXIT_ALLOWED, allowed.output
    assert "client-2 sent 40, exempt until" in allowed.stdout

    # Expiry re-blocks by itself (the exemption's end moved into the past, as time would).
    with engine.begin() as connection:
        connection.execute(
            update(client_exemptions).values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    assert runner.invoke(app, status).exit_code == EXIT_BLOCKED

    runner.invoke(app, [*exempt, "--client", "client-2", "--until", until, "--reason", "renewed"])
    revoked = runner.invoke(app, [*exempt, "--client", "client-2", "--revoke", "--reason", "shipped"])
    assert revoked.exit_code == 0, revoked.output
    assert "revoked" in revoked.stdout
    [latest] = ModeStore(engine, default=ModeState(WARN)).audit_log(1)
    assert (latest.actor, latest.reason, latest.extra["rollout"]["action"]) == (
        "carol",
        "shipped",
        "revoke_exemption",
    )
    assert runner.invoke(app, status).exit_code == EXIT_BLOCKED


def test_a_failing_dry_run_gate_never_blocks_advance(at_fifty: tuple[CliRunner, str, Any, Path]) -> None:
    runner, url, _engine, gates = at_fifty
    gates.write_text(f"[gates]\ndry_run_gates = {json.dumps([*CANARY_GATES, 'clients_rejected'])}\n")
    options = ["--database-url", url, "--gates-file", str(gates)]
    status = runner.invoke(app, ["rollout", "status", *options], env={"COLUMNS": "200"})
    assert status.exit_code == EXIT_ALLOWED, status.output
    assert "dry-run: would fail" in status.stdout
    advanced = runner.invoke(app, ["rollout", "advance", "--actor", "alice", "--json", *options])
    assert advanced.exit_code == 0, advanced.output
    document = json.loads(advanced.stdout)
    assert document["change"]["new_label"] == "enforce 100%"
    gate = next(g for g in document["gates"] if g["name"] == "clients_rejected")
    assert (gate["status"], gate["dry_run"], gate["blocks"]) == ("fail", True, False)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--client", "client-2", "--reason", "r"), "give --until to grant an exemption, or --revoke"),
        (("--client", "nobody", "--until", "IN_A_WEEK", "--reason", "r"), "unknown client 'nobody'"),
        (("--client", "client-2", "--until", "2099-01-01", "--reason", "r"), "more than 90d ahead"),
        (("--client", "client-2", "--until", "2000-01-01", "--reason", "r"), "must be in the future"),
        (("--client", "client-2", "--until", "soon", "--reason", "r"), "is not a date"),
    ],
)
def test_exempt_usage_errors_are_one_line_exit_2(
    offline: tuple[CliRunner, str, Any], args: tuple[str, ...], message: str
) -> None:
    runner, url, _engine = offline
    in_a_week = (datetime.now(UTC) + timedelta(days=7)).date().isoformat()
    args = tuple(in_a_week if arg == "IN_A_WEEK" else arg for arg in args)
    result = runner.invoke(app, ["rollout", "exempt", *args, "--actor", "a", "--database-url", url])
    assert result.exit_code == EXIT_USAGE, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert message in errors[0]


def test_revoking_without_an_exemption_is_refused(offline: tuple[CliRunner, str, Any]) -> None:
    runner, url, _engine = offline
    result = runner.invoke(
        app, ["rollout", "exempt", "--client", "client-2", "--revoke", "--reason", "r", "--database-url", url]
    )
    assert result.exit_code == EXIT_BLOCKED
    assert "holds no exemption in force" in result.stderr
