"""``fundmodel db`` data operations: normalize-stages (in ``cli/normalize_stages.py``),
constrain-stages, backup, verify-backup, restore and verify.

Exit codes: 0 ok, 1 a check failed or an operation was refused, 2 usage or configuration error (the one
mapping of every command, ``cli/common.exit_code_for``). ``--json`` prints one JSON
document on stdout; progress bars and messages go to stderr.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from fundmodel.cli.common import (
    DEFAULT_BACKUP_DIR,
    EXIT_FAILURE,
    BackupDirOption,
    ConfirmOption,
    DatabaseUrlOption,
    JsonOption,
    confirm_or_refuse,
    database_url_or_settings,
    one_line_errors,
    print_json,
    redacted_url,
    stderr_console,
)
from fundmodel.cli.database import missing_schema_explained
from fundmodel.cli.normalize_stages import INTERRUPTED_HINT, normalize_stages
from fundmodel.ops.backup import DEFAULT_RETAIN, backup_tables, create_backup
from fundmodel.ops.backup_verification import verification_path_for
from fundmodel.ops.connection import open_engine
from fundmodel.ops.constraints import add_stage_constraints, drop_stage_constraints
from fundmodel.ops.restore import BackupCheckReport, restore_backup, verify_backup
from fundmodel.ops.stage_columns import allocation_columns, stage_columns, stage_metadata
from fundmodel.ops.verify import run_integrity_checks


@contextmanager
def _database(database_url: str | None) -> Iterator[Engine]:
    """The database a data operation works on; a missing schema is named with its fix, as in every
    command (``cli/database.py``)."""
    engine = open_engine(database_url_or_settings(database_url))
    try:
        with missing_schema_explained(engine):
            yield engine
    finally:
        engine.dispose()


def _render_backup_report(report: BackupCheckReport, console: Console, verb: str) -> None:
    console.print(f"{verb} {report.file} ({report.kind}); checksum ok")
    table = Table("table", "manifest rows", "restored rows", "ok")
    for row in report.tables:
        table.add_row(row.table, str(row.expected), str(row.actual), "yes" if row.ok else "[red]NO[/]")
    console.print(table)


# --- commands ------------------------------------------------------------------------------------


def constrain_stages(
    drop: Annotated[bool, typer.Option("--drop", help="Remove the constraints instead.")] = False,
    lock_timeout_ms: Annotated[int, typer.Option("--lock-timeout-ms", min=1)] = 5000,
    database_url: DatabaseUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add the canonical-stage CHECK (SQLite: guard triggers); refuses while legacy values remain."""
    with one_line_errors(as_json, interrupted=INTERRUPTED_HINT), _database(database_url) as engine:
        columns = stage_columns(stage_metadata())
        if drop:
            report = drop_stage_constraints(engine, columns)
        else:
            report = add_stage_constraints(engine, columns, lock_timeout_ms=lock_timeout_ms)
    if as_json:
        print_json({"ok": True, **report.to_json()})
        return
    console = stderr_console()
    for name in report.added:
        console.print(f"added {name}")
    for name in report.already_present:
        console.print(f"already present: {name}")
    for name in report.dropped:
        console.print(f"dropped {name}")
    if drop and not report.dropped:
        console.print("no stage constraints to drop")


def backup(
    backup_dir: BackupDirOption = DEFAULT_BACKUP_DIR,
    retain: Annotated[
        int,
        typer.Option(
            "--retain",
            envvar="FUNDMODEL_BACKUP_RETAIN",
            min=1,
            help="Keep this many newest backups of the database.",
        ),
    ] = DEFAULT_RETAIN,
    database_url: DatabaseUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Back up the stage tables (and what they reference) with a checksummed manifest."""
    with one_line_errors(as_json, interrupted=INTERRUPTED_HINT), _database(database_url) as engine:
        metadata = stage_metadata()
        names = [c.table_name for c in stage_columns(metadata)]
        names += [c.table_name for c in allocation_columns(metadata)]
        names += [t for t in metadata.tables if t.startswith("stage_normalization_")]
        result = create_backup(engine, backup_tables(metadata, names), backup_dir, retain=retain)
    if as_json:
        print_json(
            {
                **result.manifest.to_json(),
                "ok": True,
                "file": str(result.file),
                "manifest_file": str(result.manifest_file),
                "pruned": [str(p) for p in result.pruned],
            }
        )
        return
    console = stderr_console()
    console.print(f"backup written: {result.file} ({result.manifest.size_bytes} bytes)")
    console.print(f"sha256 {result.manifest.sha256}")
    for table in result.manifest.tables:
        console.print(f"  {table.name}: {table.rows} rows")
    for path in result.pruned:
        console.print(f"pruned {path.name}")


def verify_backup_command(
    file: Annotated[Path, typer.Argument(help="Backup file (its manifest sits next to it).")],
    scratch_url: Annotated[
        str | None,
        typer.Option(
            "--scratch-url",
            help="PostgreSQL server for the scratch database (default: the database URL's server).",
        ),
    ] = None,
    database_url: DatabaseUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check a backup's checksum, restore it into a scratch database and compare row counts."""
    with one_line_errors(as_json, interrupted=INTERRUPTED_HINT):
        server = scratch_url
        if server is None:
            candidate = database_url_or_settings(database_url)
            server = candidate if candidate.startswith("postgresql") else None
        report = verify_backup(file, scratch_server_url=server)
    record = verification_path_for(file)
    if as_json:
        print_json({**report.to_json(), "verification_record": str(record) if report.ok else None})
    else:
        _render_backup_report(report, stderr_console(), "verified")
    if not report.ok:
        if not as_json:
            typer.echo("error: restored row counts differ from the manifest", err=True)
        raise typer.Exit(EXIT_FAILURE)
    if not as_json:
        stderr_console().print(
            f"verification recorded in {record.name}: the backup gates accept this file now"
        )


def restore(
    file: Annotated[Path, typer.Argument(help="Backup file (its manifest sits next to it).")],
    target: Annotated[str, typer.Option("--target", help="Database URL to restore into (explicit).")],
    confirm: ConfirmOption = None,
    as_json: JsonOption = False,
) -> None:
    """Restore a backup's tables into the target database in a single transaction."""
    with one_line_errors(as_json, interrupted=INTERRUPTED_HINT):
        confirm_or_refuse(
            confirm, f"Restore {file.name} into {redacted_url(target)}, replacing its backed-up tables"
        )
        report = restore_backup(file, target)
    if as_json:
        print_json(report.to_json())
    else:
        console = stderr_console()
        _render_backup_report(report, console, "restored")
        for name, (before, after) in report.guard_changes().items():
            console.print(f"stage guard {name}: {before.replace('_', ' ')} -> {after.replace('_', ' ')}")
        if any(after == "absent" for _before, after in report.guard_changes().values()):
            console.print(
                "note: the backup predates `fundmodel db constrain-stages`; the restored tables hold "
                "their state of then, without the guard (add it again once the stages are canonical)"
            )
    if not report.ok:
        raise typer.Exit(EXIT_FAILURE)


def verify(
    database_url: DatabaseUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Integrity report: canonical stages, audit log and run bookkeeping. Exit 1 on any failed check."""
    with one_line_errors(as_json, interrupted=INTERRUPTED_HINT), _database(database_url) as engine:
        metadata = stage_metadata()
        report = run_integrity_checks(engine, stage_columns(metadata), allocation_columns(metadata))
    if as_json:
        print_json(report.to_json())
    else:
        table = Table("check", "status", "detail")
        colours = {"pass": "green", "fail": "red", "warn": "yellow"}
        for check in report.checks:
            table.add_row(check.name, f"[{colours[check.status]}]{check.status}[/]", check.detail)
        Console().print(table)
    if not report.ok:
        raise typer.Exit(EXIT_FAILURE)


def register_db_ops(db_group: typer.Typer) -> None:
    """Add the data-operation commands to the ``db`` command group."""
    db_group.command("normalize-stages")(normalize_stages)
    db_group.command("constrain-stages")(constrain_stages)
    db_group.command("backup")(backup)
    db_group.command("verify-backup")(verify_backup_command)
    db_group.command("restore")(restore)
    db_group.command("verify")(verify)
