"""The operations commands' shared error handling: one line on stderr, the JSON error, the exit code."""

from __future__ import annotations

import json

import pytest
import typer
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from fundmodel import errors
from fundmodel.cli.common import (
    EXIT_FAILURE,
    EXIT_USAGE,
    LISTED_ROWS,
    exit_code_for,
    one_line_errors,
    redacted_url,
)
from fundmodel.errors import (
    FundmodelError,
    OperationRefusedError,
)

# Every class of the error tree with the exit code an operator gets for it; a new class must be added
# here, so its exit code is decided on purpose (and documented in README.md, "Exit codes").
EXPECTED_EXIT_CODES: dict[str, int] = {
    "FundmodelError": EXIT_FAILURE,
    "InvalidInputError": EXIT_USAGE,
    "MalformedStageInputError": EXIT_USAGE,
    "StageValidationError": EXIT_USAGE,
    "InvalidStageError": EXIT_USAGE,
    "InvalidStageDistributionError": EXIT_USAGE,
    "SimulationConfigError": EXIT_USAGE,
    "WebhookPayloadError": EXIT_USAGE,
    "ConfigurationError": EXIT_USAGE,
    "NotConfiguredError": EXIT_USAGE,
    "NotFoundError": EXIT_FAILURE,
    "ConflictError": EXIT_FAILURE,
    "TooManyJobsError": EXIT_FAILURE,
    "AuthenticationError": EXIT_FAILURE,
    "PermissionDeniedError": EXIT_FAILURE,
    "StoreUnavailableError": EXIT_FAILURE,
    "OperationRefusedError": EXIT_FAILURE,
    "IntegrityCheckError": EXIT_FAILURE,
    "ExternalToolError": EXIT_FAILURE,
    "MeasurementUnavailableError": EXIT_FAILURE,
}


def error_tree() -> list[type[FundmodelError]]:
    """Every class of the exception tree in ``fundmodel.errors`` (the base included), walked from the base."""
    found: list[type[FundmodelError]] = []
    pending: list[type[FundmodelError]] = [FundmodelError]
    while pending:
        error_type = pending.pop()
        if error_type.__module__ == errors.__name__:  # not a test's own subclass
            found.append(error_type)
        pending.extend(error_type.__subclasses__())
    return found


def test_every_class_of_the_error_tree_has_a_decided_exit_code() -> None:
    assert {error_type.__name__ for error_type in error_tree()} == set(EXPECTED_EXIT_CODES)


@pytest.mark.parametrize("error_type", error_tree(), ids=lambda error_type: error_type.__name__)
def test_each_error_maps_through_the_one_function_to_its_exit_code(
    error_type: type[FundmodelError], capsys: pytest.CaptureFixture[str]
) -> None:
    error = error_type("what went wrong")
    expected = EXPECTED_EXIT_CODES[error_type.__name__]
    assert exit_code_for(error) == expected
    # The commands' context manager stops with the same code, in one line. The entry point
    # (cli/main.py) calls the same function: tests/cli/test_command_errors.py runs it for real.
    assert run_failing(error, as_json=False) == expected
    assert capsys.readouterr().err == "error: what went wrong\n"


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
