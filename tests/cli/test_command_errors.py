"""Start-up errors of every command: an invalid setting, a database that is missing or not migrated.

Real ``fundmodel`` processes: what an operator sees is the exit code and the lines on stderr.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fundmodel.cli.common import EXIT_FAILURE, EXIT_USAGE
from tests.api.servers import FUNDMODEL_CLI, service_env
from tests.cli.test_startup import EXAMPLE_CONFIG, leaf_commands
from tests.conftest import POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, _fresh_postgres_url

# Arguments each command accepts, so that only the settings check can stop it.
VALID_ARGUMENTS: dict[str, list[str]] = {
    "demo": [],
    "normalize": ['{"seed": 1}'],
    "serve": ["--port", "0"],
    "keys create": ["startup-check"],
    "keys list": [],
    "mode get": [],
    "mode set": ["warn", "--actor", "pytest", "--reason", "settings check"],
    "rollout status": [],
    "rollout advance": ["--actor", "pytest"],
    "rollout rollback": ["--reason", "settings check", "--actor", "pytest"],
    "rollout extend-warn": ["--until", "2099-01-01", "--reason", "settings check", "--actor", "pytest"],
    "rollout exempt": [
        *("--client", "startup-check", "--revoke", "--reason", "settings check", "--actor", "pytest"),
    ],
    "rollout history": [],
    "rollout offenders": ["--since", "7d"],
    "rollout reset-observation": ["--reason", "settings check", "--actor", "pytest"],
    "rollout brownout schedule": [
        *("--start", "now", "--duration", "1h", "--reason", "settings check", "--actor", "pytest"),
    ],
    "rollout brownout list": [],
    "rollout brownout cancel": ["1", "--reason", "settings check", "--actor", "pytest"],
    "simulate": [str(EXAMPLE_CONFIG), "-n", "100", "--seed", "1"],
    "sweep": [str(EXAMPLE_CONFIG), "--vary", "reserveRatio=0.3", "--metric", "dpi.mean", "-n", "10"],
    "sensitivity": [
        *(str(EXAMPLE_CONFIG), "--vary", "reserveRatio=0.2:0.6", "--metric", "dpi.mean", "-n", "10"),
    ],
    "backsolve": [
        *(str(EXAMPLE_CONFIG), "--vary", "reserveRatio=0.2:0.6", "--metric", "dpi.mean", "--target", "1"),
    ],
    "db migrate": [],
    "db seed-demo": [],
    "db normalize-stages": [],
    "db constrain-stages": [],
    "db backup": [],
    "db verify-backup": ["BACKUP_FILE"],
    "db restore": ["BACKUP_FILE", "--target", "DATABASE_URL", "--confirm", "CONFIRM"],
    "db verify": [],
    "db prune-usage": ["--dry-run"],
    "notifications deliver": [],
    "notifications list": [],
}


def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FUNDMODEL_CLI, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_the_settings_check_covers_every_command() -> None:
    assert set(VALID_ARGUMENTS) == set(leaf_commands())


@pytest.mark.parametrize("command", sorted(VALID_ARGUMENTS))
def test_an_invalid_setting_stops_every_command_in_one_line(command: str, tmp_path: Path) -> None:
    database = tmp_path / "fundmodel.sqlite3"
    backup = tmp_path / "some.backup"
    backup.write_bytes(b"")
    database_url = f"sqlite:///{database}"
    placeholders = {"BACKUP_FILE": str(backup), "DATABASE_URL": database_url}
    arguments = [placeholders.get(argument, argument) for argument in VALID_ARGUMENTS[command]]
    env = service_env(database_url, STAGE_SUNSET_DATE="notadate")
    result = run_cli([*command.split(), *arguments], env, tmp_path)
    assert result.returncode == EXIT_USAGE, (result.stdout, result.stderr)
    assert result.stderr.strip().splitlines() == [
        "error: invalid configuration: STAGE_SUNSET_DATE: Input should be a valid datetime or date, "
        "input is too short (got 'notadate')"
    ]
    assert result.stdout == ""
    assert not database.exists()


def test_help_works_whatever_the_settings(tmp_path: Path) -> None:
    env = service_env(f"sqlite:///{tmp_path}/x.sqlite3", STAGE_SUNSET_DATE="notadate")
    result = run_cli(["simulate", "--help"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout


@pytest.mark.parametrize(
    "command",
    [
        ["mode", "get"],
        ["mode", "set", "enforce", "--actor", "pytest", "--reason", "r"],
        ["keys", "create", "k"],
        ["rollout", "status"],
        ["db", "seed-demo"],
    ],
)
def test_outside_a_project_a_command_names_the_missing_database_and_creates_nothing(
    command: list[str], tmp_path: Path
) -> None:
    env = service_env("unused")
    del env["DATABASE_URL"]  # the embedded default, sqlite:///var/fundmodel.sqlite3, relative to the cwd
    result = run_cli(command, env, tmp_path)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"error: no database at {tmp_path.resolve() / 'var' / 'fundmodel.sqlite3'} "
        "(DATABASE_URL=sqlite:///var/fundmodel.sqlite3); create it with `fundmodel db migrate`"
    ]
    assert list(tmp_path.iterdir()) == []


def test_db_migrate_still_creates_the_database_and_its_directory(tmp_path: Path) -> None:
    env = service_env("unused")
    del env["DATABASE_URL"]
    migrated = run_cli(["db", "migrate"], env, tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    assert (tmp_path / "var" / "fundmodel.sqlite3").is_file()
    shown = run_cli(["mode", "get"], env, tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("mode: warn")


def test_an_unmigrated_sqlite_file_is_named_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "empty.sqlite3").write_bytes(b"")
    env = service_env("sqlite:///empty.sqlite3")
    result = run_cli(["mode", "get", "--json"], env, tmp_path)
    assert result.returncode == EXIT_USAGE
    assert result.stderr.strip().splitlines() == [
        "error: database sqlite:///empty.sqlite3 has no fundmodel tables; create them with "
        "`fundmodel db migrate` (DATABASE_URL selects the database)"
    ]
    assert result.stdout == ""


@pytest.mark.postgres
def test_an_unmigrated_postgresql_database_is_named_without_its_password(
    postgres_database: str | None, tmp_path: Path
) -> None:
    if postgres_database is None:
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_HOST}:{POSTGRES_PORT}")
    # The server trusts local connections, so the password is ignored: it is only there to be hidden.
    url = _fresh_postgres_url(postgres_database).replace(
        f"//{POSTGRES_USER}@", f"//{POSTGRES_USER}:hunter2secret@"
    )
    result = run_cli(["mode", "get"], service_env(url), tmp_path)
    assert result.returncode == EXIT_USAGE
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "hunter2secret" not in result.stderr
    assert lines[0].startswith(f"error: database postgresql+psycopg://{POSTGRES_USER}:***@")
    assert lines[0].endswith("create them with `fundmodel db migrate` (DATABASE_URL selects the database)")


# One error kind, one exit code, whichever command meets it and whichever way the command reports it
# (its own `one_line_errors`, `simulate`'s handler, or the entry point for the commands that let errors
# through): all of them call cli/common.exit_code_for.
UNMIGRATED_DATABASE_COMMANDS = [
    "mode get",  # reported by the entry point
    "keys create startup-check",  # the entry point
    "db seed-demo",  # the entry point
    "rollout status",  # one_line_errors
    "db verify",  # one_line_errors
    "db backup",  # one_line_errors, after SQLite's own backup API met the missing tables
    "db constrain-stages",  # one_line_errors
]


@pytest.mark.parametrize("command", UNMIGRATED_DATABASE_COMMANDS)
def test_an_unmigrated_database_is_the_same_configuration_error_for_every_command(
    command: str, tmp_path: Path
) -> None:
    (tmp_path / "empty.sqlite3").write_bytes(b"")
    result = run_cli(command.split(), service_env("sqlite:///empty.sqlite3"), tmp_path)
    assert result.returncode == EXIT_USAGE, result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: database sqlite:///empty.sqlite3 has no fundmodel tables; create them with "
        "`fundmodel db migrate` (DATABASE_URL selects the database)"
    ]


@pytest.mark.parametrize(
    ("command", "line"),
    [
        (["simulate", "missing.json"], "error: missing.json: no such file"),
        (["normalize", "not json"], "error: distribution is not valid JSON: Expecting value (column 1)"),
        (
            ["rollout", "extend-warn", "--until", "notadate", "--reason", "r", "--actor", "pytest"],
            "error: --until 'notadate' is not a date (YYYY-MM-DD or ISO 8601)",
        ),
    ],
    ids=["simulate", "normalize", "rollout"],
)
def test_invalid_input_is_the_same_usage_error_for_every_command(
    command: list[str], line: str, tmp_path: Path
) -> None:
    database = tmp_path / "fundmodel.sqlite3"
    result = run_cli(command, service_env(f"sqlite:///{database}"), tmp_path)
    assert result.returncode == EXIT_USAGE, result.stderr
    assert result.stderr.strip().splitlines() == [line]


@pytest.mark.parametrize(
    "command",
    ["mode get", "keys create startup-check", "rollout status", "db verify"],
)
def test_an_unreachable_database_is_the_same_failure_for_every_command(command: str, tmp_path: Path) -> None:
    # Nothing listens on port 1: the connection is refused at once.
    unreachable = f"postgresql+psycopg://{POSTGRES_USER}@127.0.0.1:1/fundmodel"
    result = run_cli(command.split(), service_env(unreachable), tmp_path)
    assert result.returncode == EXIT_FAILURE, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # one line, no traceback
    assert "Connection refused" in lines[0]
