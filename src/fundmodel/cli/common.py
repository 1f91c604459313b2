"""What the commands share: options, JSON output and the one mapping from errors to a one-line message
and an exit code (:func:`exit_code_for`, used by every command, through :func:`one_line_errors`, the
entry point ``cli/main.py`` or ``simulate``).

Exit codes of every command (documented in README.md, "Exit codes"):

- 0: done;
- 1 (:data:`EXIT_FAILURE`): the operation ran and failed or was refused, or something it needs is
  unreachable (a store, Prometheus, ``pg_dump``): retrying after the cause is gone can succeed;
- 2 (:data:`EXIT_USAGE`): the invocation or the configuration is wrong (bad flags or input, an invalid
  setting or gates file, a database that is missing or not migrated), the same exit code Typer gives a
  usage error: the same command fails the same way until the operator changes it or its environment.

``rollout status`` adds its verdicts 3 and 4 (see ``cli/rollout.py``).

Imported by commands only when they run (see ``cli/main.py``), and kept light all the same: Typer and
Rich, SQLAlchemy's URL and error types and the standard library at import time, nothing of the service.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from fundmodel.db.values import as_utc
from fundmodel.errors import ConfigurationError, FundmodelError, InvalidInputError
from fundmodel.ops.confirm import CONFIRM_WORD, require_confirmation

EXIT_FAILURE = 1
EXIT_USAGE = 2

DEFAULT_BACKUP_DIR = Path("var/backups")

# Rows an error or a result lists on stderr in text mode (--json carries them all).
LISTED_ROWS = 20

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
DatabaseUrlOption = Annotated[
    str | None,
    typer.Option("--database-url", help="Database to operate on (default: DATABASE_URL / the settings)."),
]
BackupDirOption = Annotated[
    Path,
    typer.Option(
        "--backup-dir",
        envvar="FUNDMODEL_BACKUP_DIR",
        help="Where `fundmodel db backup` writes backups and their manifests (read by the backup gates).",
    ),
]

ConfirmOption = Annotated[
    str | None,
    typer.Option("--confirm", help=f"Confirm non-interactively by passing the word {CONFIRM_WORD}."),
]


def stderr_console() -> Console:
    """Rich output for messages (stdout stays for results)."""
    # soft_wrap: messages stay one line each in logs instead of wrapping at 80 columns.
    return Console(stderr=True, soft_wrap=True)


def redacted_url(url: str) -> str:
    """A database URL fit for a message: the password hidden, an unparsable URL not echoed at all."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<invalid URL>"


def confirm_or_refuse(given: str | None, action: str) -> None:
    """Go on only when the operator confirmed ``action`` (``--confirm`` or, on a terminal, the prompt)."""
    require_confirmation(
        given,
        action=action,
        interactive=sys.stdin.isatty(),
        ask=lambda text: typer.prompt(text, err=True),
    )


def database_url_or_settings(explicit: str | None) -> str:
    """``--database-url`` when given, else the settings' ``DATABASE_URL``."""
    if explicit:
        return explicit
    from fundmodel.settings import get_settings

    return get_settings().database_url


def print_json(document: Mapping[str, Any]) -> None:
    """The command's one JSON document on stdout (values JSON does not know, such as dates, as text)."""
    typer.echo(json.dumps(document, indent=2, default=str))


USAGE_ERRORS: tuple[type[FundmodelError], ...] = (InvalidInputError, ConfigurationError)
"""The branches of the error tree that are the operator's to fix (with every subclass): exit 2."""

EXPECTED_FAILURES: tuple[type[Exception], ...] = (FundmodelError, SQLAlchemyError, OSError)
"""What a command stops on with one line; anything else is a bug and keeps its traceback."""


def exit_code_for(error: BaseException) -> int:
    """The exit code of every command that stops on ``error``: a usage or configuration error is
    :data:`EXIT_USAGE`, anything else :data:`EXIT_FAILURE`."""
    return EXIT_USAGE if isinstance(error, USAGE_ERRORS) else EXIT_FAILURE


def error_line(error: BaseException) -> str:
    """The one line (after ``error:``) that reports an expected failure: the domain error's detail, the
    database driver's first line, or the operating system's message and file name."""
    if isinstance(error, FundmodelError):
        return error.detail
    if isinstance(error, SQLAlchemyError):
        first = str(getattr(error, "orig", None) or error).strip().splitlines()
        return f"database error: {first[0] if first else type(error).__name__}"
    if isinstance(error, OSError):
        return f"{error.strerror or error}: {error.filename or ''}".rstrip(": ")
    return str(error) or type(error).__name__


def fail(message: str, code: int, *, as_json: bool, extra: Mapping[str, Any] | None = None) -> NoReturn:
    """Stop the command: one ``error:`` line on stderr (plus the rows the error names, in text mode), the
    error document on stdout with ``--json``, and exit ``code``."""
    if as_json:
        typer.echo(json.dumps({"ok": False, "error": {"detail": message, **(extra or {})}}, default=str))
    typer.echo(f"error: {message}", err=True)
    if not as_json:
        for line in _offending_lines((extra or {}).get("offending")):
            typer.echo(line, err=True)
    raise typer.Exit(code)


def _offending_lines(offending: Any) -> list[str]:
    """The rows a refusal names (table, id, value), the first few of them plus how many more."""
    if not isinstance(offending, list) or not offending:
        return []
    total = sum(int(group.get("rows", 0)) for group in offending)
    listed = [
        (group["table"], row["row_id"], row["value"])
        for group in offending
        for row in group.get("listed", [])
    ][:LISTED_ROWS]
    lines = [f"  {table} id {row_id}: {value!r}" for table, row_id, value in listed]
    if total > len(listed):
        lines.append(f"  ... and {total - len(listed)} more rows (all of them with --json)")
    return lines


@contextmanager
def one_line_errors(as_json: bool, *, interrupted: str | None = None) -> Iterator[None]:
    """Turn every expected failure into one line on stderr and its exit code (:func:`exit_code_for`).

    ``interrupted``: what to tell an operator who pressed Ctrl-C (how to continue); without it, Ctrl-C
    is left to Typer.
    """
    try:
        yield
    except FundmodelError as exc:
        fail(error_line(exc), exit_code_for(exc), as_json=as_json, extra={"code": exc.code, **exc.extra})
    except (SQLAlchemyError, OSError) as exc:
        fail(error_line(exc), exit_code_for(exc), as_json=as_json)
    except KeyboardInterrupt:
        if interrupted is None:
            raise
        fail(interrupted, EXIT_FAILURE, as_json=as_json)


def parse_utc_time(text: str, *, option: str, expected: str) -> datetime:
    """An option's ISO 8601 date or time, in UTC (a time without an offset is taken as UTC); otherwise
    one line naming the option and ``expected`` (what it takes)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInputError(f"--{option} {text!r} is not {expected}", field=option) from None
    return as_utc(moment)
