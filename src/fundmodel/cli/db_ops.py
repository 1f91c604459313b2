"""``fundmodel db`` data operations: normalize-stages, constrain-stages, backup, verify-backup,
restore and verify.

Exit codes: 0 ok, 1 a check failed or an operation was refused, 2 usage error. ``--json`` prints one JSON
document on stdout; progress bars and messages go to stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Column, Table
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from fundmodel.cli.actor import resolve_actor
from fundmodel.errors import (
    ConfigurationError,
    FundmodelError,
    InvalidInputError,
    OperationRefusedError,
)
from fundmodel.ops import normalize as runner
from fundmodel.ops.backup import (
    DEFAULT_MAX_AGE_HOURS,
    DEFAULT_RETAIN,
    backup_tables,
    create_backup,
    require_fresh_backup,
    verification_path_for,
)
from fundmodel.ops.confirm import require_confirmation
from fundmodel.ops.connection import open_engine
from fundmodel.ops.constraints import add_stage_constraints, drop_stage_constraints
from fundmodel.ops.job_lock import exclusive_job
from fundmodel.ops.planning import Plan, build_plan
from fundmodel.ops.restore import BackupCheckReport, restore_backup, verify_backup
from fundmodel.ops.stage_columns import allocation_columns, stage_columns, stage_metadata
from fundmodel.ops.verify import run_integrity_checks

DEFAULT_BACKUP_DIR = Path("var/backups")

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
        help="Where backups and their manifests live.",
    ),
]
ConfirmOption = Annotated[
    str | None,
    typer.Option("--confirm", help="Confirm non-interactively by passing the word CONFIRM."),
]


def _stderr() -> Console:
    # soft_wrap: messages stay one line each in logs instead of wrapping at 80 columns.
    return Console(stderr=True, soft_wrap=True)


# Offending rows a refusal lists on stderr in text mode (--json carries them all).
_LISTED_OFFENDING_ROWS = 20


def _fail(message: str, code: int, *, as_json: bool, extra: dict[str, Any] | None = None) -> NoReturn:
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
    ][:_LISTED_OFFENDING_ROWS]
    lines = [f"  {table} id {row_id}: {value!r}" for table, row_id, value in listed]
    if total > len(listed):
        lines.append(f"  ... and {total - len(listed)} more rows (all of them with --json)")
    return lines


@contextmanager
def _one_line_errors(as_json: bool) -> Iterator[None]:
    """Turn every expected failure into one line on stderr and the documented exit code."""
    try:
        yield
    except (ConfigurationError, InvalidInputError) as exc:
        _fail(exc.detail, 2, as_json=as_json, extra={"code": exc.code, **exc.extra})
    except FundmodelError as exc:
        _fail(exc.detail, 1, as_json=as_json, extra={"code": exc.code, **exc.extra})
    except SQLAlchemyError as exc:
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        _fail(f"database error: {first[0] if first else type(exc).__name__}", 1, as_json=as_json)
    except OSError as exc:
        _fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), 1, as_json=as_json)
    except KeyboardInterrupt:
        _fail(
            "interrupted; an apply run is continued with --resume, a rollback with --rollback RUN_ID",
            1,
            as_json=as_json,
        )


def _database_url(explicit: str | None) -> str:
    if explicit:
        return explicit
    from fundmodel.settings import get_settings

    return get_settings().database_url


def _redacted(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<invalid URL>"


def _print_json(document: Any) -> None:
    typer.echo(json.dumps(document, indent=2, default=str))


class _RichProgress:
    """Adapter from the runner's progress callbacks to Rich bars on stderr."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[str, TaskID] = {}

    def start_table(self, table: str, total: int, done: int) -> None:
        self._tasks[table] = self._progress.add_task(table, total=max(total, done), completed=done)

    def advance(self, table: str, rows: int) -> None:
        task = self._tasks[table]
        self._progress.advance(task, rows)
        current = self._progress.tasks[task]
        if current.total is not None and current.completed > current.total:
            self._progress.update(task, total=current.completed)


@contextmanager
def _progress_bars(enabled: bool) -> Iterator[_RichProgress | None]:
    console = _stderr()
    if not enabled or not console.is_terminal:
        yield None
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        yield _RichProgress(progress)


# --- rendering -----------------------------------------------------------------------------------


def _render_plan(plan: Plan, console: Console) -> None:
    for table_plan in plan.tables:
        console.print(
            f"[bold]{table_plan.table}.{table_plan.column}[/]: {table_plan.total_rows} rows, "
            f"{table_plan.rows_to_change} to change, {table_plan.unknown_rows} unknown",
            soft_wrap=True,
        )
        if table_plan.changes:
            table = Table("before", "after", Column("rows", justify="right"))
            for change in table_plan.changes:
                table.add_row(repr(change.before), change.after, str(change.rows))
            console.print(table)
        for unknown in table_plan.unknown:
            more = unknown.rows - len(unknown.row_ids)
            ids = ", ".join(unknown.row_ids) + (f" (+{more} more)" if more > 0 else "")
            hint = f"; did you mean {', '.join(unknown.suggestions)}?" if unknown.suggestions else ""
            console.print(
                f"  [yellow]unknown[/] {unknown.value!r}: {unknown.rows} rows (ids {ids}){hint}",
                soft_wrap=True,
            )
    for issue in plan.allocation_issues:
        console.print(
            f"  [yellow]allocation[/] {issue['table']} id {issue['row_id']}: {issue['problem']} "
            f"{issue.get('keys', '')}",
            soft_wrap=True,
        )
    console.print(
        f"total: {plan.rows_to_change} rows to change, {plan.unknown_rows} rows with unknown values"
    )


def _render_backup_report(report: BackupCheckReport, console: Console, verb: str) -> None:
    console.print(f"{verb} {report.file} ({report.kind}); checksum ok")
    table = Table("table", "manifest rows", "restored rows", "ok")
    for row in report.tables:
        table.add_row(row.table, str(row.expected), str(row.actual), "yes" if row.ok else "[red]NO[/]")
    console.print(table)


# --- commands ------------------------------------------------------------------------------------


def normalize_stages(
    apply: Annotated[bool, typer.Option("--apply", help="Change the rows (default: dry run).")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Finish an interrupted run.")] = False,
    rollback: Annotated[
        str | None, typer.Option("--rollback", metavar="RUN_ID", help="Undo one run from its audit log.")
    ] = None,
    force_unknown: Annotated[
        bool,
        typer.Option("--force-unknown", help="Normalize the known values, leave unknown ones untouched."),
    ] = False,
    confirm: ConfirmOption = None,
    backup_file: Annotated[
        Path | None, typer.Option("--backup-file", help="Use this backup for the apply gate.")
    ] = None,
    backup_dir: BackupDirOption = DEFAULT_BACKUP_DIR,
    max_backup_age_hours: Annotated[
        float,
        typer.Option(
            "--max-backup-age-hours",
            envvar="FUNDMODEL_BACKUP_MAX_AGE_HOURS",
            min=0.01,
            help="How old the newest backup may be for --apply (RPO).",
        ),
    ] = DEFAULT_MAX_AGE_HOURS,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, max=100_000, help="Rows per keyset batch.")
    ] = 5000,
    lock_timeout_ms: Annotated[int, typer.Option("--lock-timeout-ms", min=1)] = 5000,
    statement_timeout_ms: Annotated[int, typer.Option("--statement-timeout-ms", min=1)] = 300_000,
    max_listed_rows: Annotated[
        int, typer.Option("--max-listed-rows", min=1, help="Row ids listed per unknown value.")
    ] = 100,
    actor: Annotated[
        str | None,
        typer.Option("--actor", help="Who runs it, audited (default: the OS user of this process's uid)."),
    ] = None,
    database_url: DatabaseUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Plan (default) or apply the normalization of stored stage spellings, resumably and audited."""
    if sum((apply, resume, rollback is not None)) > 1:
        _fail("--apply, --resume and --rollback exclude each other", 2, as_json=as_json)
    console = _stderr()
    with _one_line_errors(as_json):
        options = runner.RunOptions(
            batch_size=batch_size,
            force_unknown=force_unknown,
            lock_timeout_ms=lock_timeout_ms,
            statement_timeout_ms=statement_timeout_ms,
            # A dry run records nothing, so it needs no actor (and must work for any uid).
            actor=resolve_actor(actor) if apply or resume or rollback is not None else None,
        )
        url = _database_url(database_url)
        engine = open_engine(url)
        try:
            metadata = stage_metadata()
            columns = stage_columns(metadata)
            if not (apply or resume or rollback):
                with engine.connect() as connection:
                    plan = build_plan(
                        connection,
                        columns,
                        allocation_columns(metadata),
                        max_listed_rows=max_listed_rows,
                    )
                if as_json:
                    _print_json({"ok": True, "mode": "dry-run", "plan": plan.to_json()})
                else:
                    _render_plan(plan, Console())
                    console.print("dry run: nothing changed; add --apply to normalize")
                return
            with exclusive_job(engine):
                result = _run_mutation(
                    engine,
                    url,
                    columns,
                    metadata_allocations=allocation_columns(metadata),
                    options=options,
                    apply=apply,
                    resume=resume,
                    rollback=rollback,
                    confirm=confirm,
                    backup_file=backup_file,
                    backup_dir=backup_dir,
                    max_age=timedelta(hours=max_backup_age_hours),
                    max_listed_rows=max_listed_rows,
                    as_json=as_json,
                )
        finally:
            engine.dispose()
    if result is None:
        return
    incomplete_result = bool(result.refused or result.non_canonical_left)
    if as_json:
        _print_json({"ok": not incomplete_result, "result": result.to_json()})
    else:
        console.print(
            f"run {result.run_id} ({result.kind}{', resumed' if result.resumed else ''}) "
            f"{result.status}: {result.rows_changed} rows changed in {result.batches} batches"
            + (
                f" (with follow-up runs {', '.join(result.follow_up_runs)} for values written meanwhile)"
                if result.follow_up_runs
                else ""
            )
            + (f", {result.rows_replanned} re-planned" if result.rows_replanned else "")
            + (f", {result.rows_unknown_seen} unknown left untouched" if result.rows_unknown_seen else "")
        )
        for unknown in result.unknown_left:
            console.print(
                f"  [yellow]unknown, left untouched[/] {unknown['table']}: {unknown['value']!r} "
                f"x{unknown['rows']} (ids {', '.join(unknown['row_ids'])})"
            )
        for row in result.refused[:20]:
            console.print(
                f"  [yellow]refused[/] {row['table']} id {row['row_id']}: changed since the run "
                f"(expected {row['expected']!r})"
            )
        if result.non_canonical_left:
            rows = sum(left["rows"] for left in result.non_canonical_left)
            console.print(
                f"error: {rows} rows still hold legacy spellings written during the run and "
                f"{len(result.follow_up_runs)} follow-up runs; run --apply again once writers send "
                "canonical stages"
            )
            for left in result.non_canonical_left[:20]:
                console.print(f"  [yellow]left[/] {left['table']}: {left['value']!r} x{left['rows']}")
    if incomplete_result:
        raise typer.Exit(1)


def _run_mutation(
    engine: Engine,
    url: str,
    columns: list[Any],
    *,
    metadata_allocations: list[Any],
    options: runner.RunOptions,
    apply: bool,
    resume: bool,
    rollback: str | None,
    confirm: str | None,
    backup_file: Path | None,
    backup_dir: Path,
    max_age: timedelta,
    max_listed_rows: int,
    as_json: bool,
) -> runner.RunResult | None:
    console = _stderr()
    interactive = sys.stdin.isatty()
    incomplete = runner.find_incomplete_run(engine)
    if rollback is not None:
        return _run_rollback(engine, url, columns, rollback, incomplete, options, confirm, as_json)
    if incomplete is not None and incomplete["kind"] != runner.KIND_NORMALIZE:
        # Resuming it here would put the legacy values back: only --rollback continues a rollback.
        raise OperationRefusedError(
            f"rollback run {incomplete['id']} of run {incomplete['target_run_id']} is unfinished "
            f"({incomplete['status']}); --apply and --resume only continue normalization runs: finish "
            f"the rollback with `{runner.resume_hint(incomplete)}`, then normalize again"
        )

    def backup_gate() -> runner.BackupReference:
        now = datetime.now(UTC)
        verified = require_fresh_backup(
            make_url(url),
            [column.table_name for column in columns],
            backup_dir=backup_dir,
            max_age=max_age,
            explicit_file=backup_file,
            now=now,
        )
        console.print(f"backup gate passed: {verified.describe(now)}")
        return runner.BackupReference(file=str(verified.file), sha256=str(verified.manifest["sha256"]))

    if incomplete is not None:
        # The run may have stopped long ago: a resume changes rows too, so it needs a fresh backup
        # just like a new run (the one the run started with still counts while it is fresh).
        backup = backup_gate()
        console.print(f"resuming {incomplete['kind']} run {incomplete['id']} ({incomplete['status']})")
        with _progress_bars(not as_json) as bars:
            resumed = runner.normalize_to_completion(
                engine, columns, incomplete["id"], options, backup=backup, progress=bars, resumed=True
            )
        return _with_unknown_left(engine, columns, resumed, max_listed_rows)
    if resume:
        raise OperationRefusedError("no interrupted run to resume")
    with engine.connect() as connection:
        plan = build_plan(connection, columns, metadata_allocations, max_listed_rows=max_listed_rows)
    if plan.has_unknown:
        listing = "; ".join(f"{t.table}: {u.value!r} x{u.rows}" for t in plan.tables for u in t.unknown)[:400]
        if not options.force_unknown:
            raise OperationRefusedError(
                f"unknown stage values block the run ({listing}); fix them, or pass "
                "--force-unknown to normalize the rest and leave them untouched",
                extra={"plan": plan.to_json()},
            )
        require_confirmation(
            confirm,
            action=f"Leave {plan.unknown_rows} rows with unknown stages untouched ({listing})",
            interactive=interactive,
            ask=lambda text: typer.prompt(text, err=True),
        )
    if plan.rows_to_change == 0:
        if as_json:
            _print_json({"ok": True, "mode": "apply", "rows_changed": 0, "plan": plan.to_json()})
        else:
            console.print("nothing to change: every known stage is already canonical")
        return None
    backup = backup_gate()
    run_id = runner.create_run(engine, columns, plan, options, backup=backup)
    console.print(f"run {run_id}: {plan.rows_to_change} rows to change")
    with _progress_bars(not as_json) as bars:
        result = runner.normalize_to_completion(
            engine, columns, run_id, options, backup=backup, progress=bars
        )
    return _with_unknown_left(engine, columns, result, max_listed_rows)


def _run_rollback(
    engine: Engine,
    url: str,
    columns: list[Any],
    target_run_id: str,
    incomplete: dict[str, Any] | None,
    options: runner.RunOptions,
    confirm: str | None,
    as_json: bool,
) -> runner.RunResult:
    """Roll back one run, or continue the interrupted rollback of that same run."""
    resuming = (
        incomplete is not None
        and incomplete["kind"] == runner.KIND_ROLLBACK
        and incomplete["target_run_id"] == target_run_id
    )
    if incomplete is not None and not resuming:
        raise OperationRefusedError(
            f"{incomplete['kind']} run {incomplete['id']} is unfinished; "
            f"finish it with `{runner.resume_hint(incomplete)}` first"
        )
    require_confirmation(
        confirm,
        action=(
            f"{'Continue rolling back' if resuming else 'Roll back'} run {target_run_id} on {_redacted(url)}"
        ),
        interactive=sys.stdin.isatty(),
        ask=lambda text: typer.prompt(text, err=True),
    )
    if resuming:
        assert incomplete is not None
        run_id, resumed = str(incomplete["id"]), True
        _stderr().print(f"resuming rollback run {run_id} of run {target_run_id} ({incomplete['status']})")
    else:
        run_id, resumed = runner.create_rollback_run(engine, columns, target_run_id, options), False
    with _progress_bars(not as_json) as bars:
        return runner.execute_rollback(engine, columns, run_id, options, progress=bars, resumed=resumed)


def _with_unknown_left(
    engine: Engine, columns: list[Any], result: runner.RunResult, max_listed_rows: int
) -> runner.RunResult:
    """List the unknown values a run left untouched (with their rows), as the plan did."""
    if result.rows_unknown_seen:
        with engine.connect() as connection:
            after = build_plan(connection, columns, max_listed_rows=max_listed_rows)
        result.unknown_left = [
            {"table": table.table, "value": u.value, "rows": u.rows, "row_ids": list(u.row_ids)}
            for table in after.tables
            for u in table.unknown
        ]
    return result


def constrain_stages(
    drop: Annotated[bool, typer.Option("--drop", help="Remove the constraints instead.")] = False,
    lock_timeout_ms: Annotated[int, typer.Option("--lock-timeout-ms", min=1)] = 5000,
    database_url: DatabaseUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add the canonical-stage CHECK (SQLite: guard triggers); refuses while legacy values remain."""
    with _one_line_errors(as_json):
        engine = open_engine(_database_url(database_url))
        try:
            columns = stage_columns(stage_metadata())
            if drop:
                report = drop_stage_constraints(engine, columns)
            else:
                report = add_stage_constraints(engine, columns, lock_timeout_ms=lock_timeout_ms)
        finally:
            engine.dispose()
    if as_json:
        _print_json({"ok": True, **report.to_json()})
        return
    console = _stderr()
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
    with _one_line_errors(as_json):
        engine = open_engine(_database_url(database_url))
        try:
            metadata = stage_metadata()
            names = [c.table_name for c in stage_columns(metadata)]
            names += [c.table_name for c in allocation_columns(metadata)]
            names += [t for t in metadata.tables if t.startswith("stage_normalization_")]
            result = create_backup(engine, backup_tables(metadata, names), backup_dir, retain=retain)
        finally:
            engine.dispose()
    if as_json:
        _print_json(
            {
                **result.manifest,
                "ok": True,
                "file": str(result.file),
                "manifest_file": str(result.manifest_file),
                "pruned": [str(p) for p in result.pruned],
            }
        )
        return
    console = _stderr()
    console.print(f"backup written: {result.file} ({result.manifest['size_bytes']} bytes)")
    console.print(f"sha256 {result.manifest['sha256']}")
    for table in result.manifest["tables"]:
        console.print(f"  {table['name']}: {table['rows']} rows")
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
    with _one_line_errors(as_json):
        server = scratch_url
        if server is None:
            candidate = _database_url(database_url)
            server = candidate if candidate.startswith("postgresql") else None
        report = verify_backup(file, scratch_server_url=server)
    record = verification_path_for(file)
    if as_json:
        _print_json({**report.to_json(), "verification_record": str(record) if report.ok else None})
    else:
        _render_backup_report(report, _stderr(), "verified")
    if not report.ok:
        if not as_json:
            typer.echo("error: restored row counts differ from the manifest", err=True)
        raise typer.Exit(1)
    if not as_json:
        _stderr().print(f"verification recorded in {record.name}: the backup gates accept this file now")


def restore(
    file: Annotated[Path, typer.Argument(help="Backup file (its manifest sits next to it).")],
    target: Annotated[str, typer.Option("--target", help="Database URL to restore into (explicit).")],
    confirm: ConfirmOption = None,
    as_json: JsonOption = False,
) -> None:
    """Restore a backup's tables into the target database in a single transaction."""
    with _one_line_errors(as_json):
        require_confirmation(
            confirm,
            action=f"Restore {file.name} into {_redacted(target)}, replacing its backed-up tables",
            interactive=sys.stdin.isatty(),
            ask=lambda text: typer.prompt(text, err=True),
        )
        report = restore_backup(file, target)
    if as_json:
        _print_json(report.to_json())
    else:
        console = _stderr()
        _render_backup_report(report, console, "restored")
        for name, (before, after) in report.guard_changes().items():
            console.print(f"stage guard {name}: {before.replace('_', ' ')} -> {after.replace('_', ' ')}")
        if any(after == "absent" for _before, after in report.guard_changes().values()):
            console.print(
                "note: the backup predates `fundmodel db constrain-stages`; the restored tables hold "
                "their state of then, without the guard (add it again once the stages are canonical)"
            )
    if not report.ok:
        raise typer.Exit(1)


def verify(
    database_url: DatabaseUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Integrity report: canonical stages, audit log and run bookkeeping. Exit 1 on any failed check."""
    with _one_line_errors(as_json):
        engine = open_engine(_database_url(database_url))
        try:
            metadata = stage_metadata()
            report = run_integrity_checks(engine, stage_columns(metadata), allocation_columns(metadata))
        finally:
            engine.dispose()
    if as_json:
        _print_json(report.to_json())
    else:
        table = Table("check", "status", "detail")
        colours = {"pass": "green", "fail": "red", "warn": "yellow"}
        for check in report.checks:
            table.add_row(check.name, f"[{colours[check.status]}]{check.status}[/]", check.detail)
        Console().print(table)
    if not report.ok:
        raise typer.Exit(1)


def register_db_ops(db_group: typer.Typer) -> None:
    """Add the data-operation commands to the ``db`` command group."""
    db_group.command("normalize-stages")(normalize_stages)
    db_group.command("constrain-stages")(constrain_stages)
    db_group.command("backup")(backup)
    db_group.command("verify-backup")(verify_backup_command)
    db_group.command("restore")(restore)
    db_group.command("verify")(verify)
