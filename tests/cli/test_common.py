"""The operations commands' shared error handling: one line on stderr, the JSON error, the exit code."""

from __future__ import annotations

import json

import pytest
import typer
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from fundmodel.cli.common import (
    EXIT_FAILURE,
    EXIT_USAGE,
    LISTED_ROWS,
    exit_code_for,
    one_line_errors,
    redacted_url,
)
from fundmodel.errors import (
    ConfigurationError,
    FundmodelError,
    InvalidInputError,
    NotConfiguredError,
    OperationRefusedError,
    SimulationConfigError,
    StoreUnavailableError,
)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InvalidInputError("bad flag"), EXIT_USAGE),
        (SimulationConfigError("bad config"), EXIT_USAGE),
        (ConfigurationError("bad gates file"), EXIT_USAGE),
        (NotConfiguredError("no token"), EXIT_USAGE),
        (OperationRefusedError("stale backup"), EXIT_FAILURE),
        (StoreUnavailableError("database down"), EXIT_FAILURE),
        (FundmodelError("anything else"), EXIT_FAILURE),
    ],
)
def test_the_callers_mistakes_are_usage_errors_everything_else_a_failure(
    error: FundmodelError, code: int
) -> None:
    assert exit_code_for(error) == code


def run_failing(error: BaseException, *, as_json: bool, interrupted: str | None = None) -> int:
    with pytest.raises(typer.Exit) as exited, one_line_errors(as_json, interrupted=interrupted):
        raise error
    return exited.value.exit_code


def test_an_error_is_one_line_on_stderr_and_a_document_on_stdout_with_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    error = OperationRefusedError("stale backup", extra={"age_hours": 30})
    assert run_failing(error, as_json=True) == EXIT_FAILURE
    out, err = capsys.readouterr()
    assert json.loads(out) == {
        "ok": False,
        "error": {"detail": "stale backup", "code": "OPERATION_REFUSED", "age_hours": 30},
    }
    assert err == "error: stale backup\n"


def test_a_refusal_lists_the_first_offending_rows_in_text_mode(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{"row_id": str(index), "value": f"v{index}"} for index in range(LISTED_ROWS + 5)]
    error = OperationRefusedError(
        "legacy values", extra={"offending": [{"table": "t", "rows": 40, "listed": rows}]}
    )
    assert run_failing(error, as_json=False) == EXIT_FAILURE
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == "error: legacy values"
    assert lines[1] == "  t id 0: 'v0'"
    assert len(lines) == 1 + LISTED_ROWS + 1
    assert lines[-1] == f"  ... and {40 - LISTED_ROWS} more rows (all of them with --json)"


def test_a_database_error_is_its_first_line(capsys: pytest.CaptureFixture[str]) -> None:
    engine = create_engine("sqlite://")
    with pytest.raises(SQLAlchemyError) as raised, engine.connect() as connection:
        connection.execute(text("select * from no_such_table"))
    assert run_failing(raised.value, as_json=False) == EXIT_FAILURE
    assert capsys.readouterr().err == "error: database error: no such table: no_such_table\n"


def test_a_file_error_names_the_file(capsys: pytest.CaptureFixture[str]) -> None:
    error = FileNotFoundError(2, "No such file or directory", "/nowhere/backup")
    assert run_failing(error, as_json=False) == EXIT_FAILURE
    assert capsys.readouterr().err == "error: No such file or directory: /nowhere/backup\n"


def test_ctrl_c_says_how_to_continue_when_the_command_knows(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_failing(KeyboardInterrupt(), as_json=False, interrupted="continue with --resume") == 1
    assert capsys.readouterr().err == "error: continue with --resume\n"
    with pytest.raises(KeyboardInterrupt), one_line_errors(False):
        raise KeyboardInterrupt


def test_a_url_in_a_message_hides_its_password() -> None:
    assert redacted_url("postgresql://me:secret@db/app") == "postgresql://me:***@db/app"
    assert redacted_url("::not a url::") == "<invalid URL>"
