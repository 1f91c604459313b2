"""``fundmodel db normalize-stages``: plan, apply, resume or roll back the normalization of stored
stage spellings (and, with ``--map``, of unknown values the operator maps to stages).

Which run an invocation may start or continue, and what a new run needs first, is decided in
``ops/run_policy.py``; this module reads the state, asks it, takes the step, and renders the outcome.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

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

from fundmodel.cli.actor import resolve_actor
from fundmodel.cli.common import (
    DEFAULT_BACKUP_DIR,
    EXIT_FAILURE,
    EXIT_USAGE,
    LISTED_ROWS,
    BackupDirOption,
    ConfirmOption,
    DatabaseUrlOption,
    JsonOption,
    confirm_or_refuse,
    database_url_or_settings,
    fail,
    one_line_errors,
    print_json,
    redacted_url,
    stderr_console,
)
from fundmodel.ops import normalize as runner
from fundmodel.ops.backup import DEFAULT_MAX_AGE_HOURS, require_fresh_backup
from fundmodel.ops.connection import open_engine
from fundmodel.ops.job_lock import exclusive_job
from fundmodel.ops.planning import Plan, build_plan
from fundmodel.ops.run_policy import (
    ContinueRollback,
    ContinueRun,
    PlanNewRun,
    StartRollback,
    UnfinishedRun,
    decide_new_run,
    decide_next_step,
)
from fundmodel.ops.stage_columns import StageColumn, allocation_columns, stage_columns, stage_metadata

# What every data operation tells an operator who pressed Ctrl-C.
INTERRUPTED_HINT = "interrupted; an apply run is continued with --resume, a rollback with --rollback RUN_ID"


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
    console = stderr_console()
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
                after = f"{change.after} (--map)" if change.mapped else change.after
                table.add_row(repr(change.before), after, str(change.rows))
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


def _result_summary(result: runner.RunResult) -> str:
    """One line: which run, how it ended, what it changed."""
    kind = f"{result.kind}, resumed" if result.resumed else result.kind
    summary = (
        f"run {result.run_id} ({kind}) {result.status}: "
        f"{result.rows_changed} rows changed in {result.batches} batches"
    )
    notes: list[str] = []
    if result.follow_up_runs:
        notes.append(
            f" (with follow-up runs {', '.join(result.follow_up_runs)} for values written meanwhile)"
        )
    if result.rows_replanned:
        notes.append(f", {result.rows_replanned} re-planned")
    if result.rows_unknown_seen:
        notes.append(f", {result.rows_unknown_seen} unknown left untouched")
    return summary + "".join(notes)


def _render_result(result: runner.RunResult, console: Console) -> None:
    console.print(_result_summary(result))
    for unknown in result.unknown_left:
        console.print(
            f"  [yellow]unknown, left untouched[/] {unknown.table}: {unknown.value!r} "
            f"x{unknown.rows} (ids {', '.join(unknown.row_ids)})"
        )
    for row in result.refused[:LISTED_ROWS]:
        console.print(
            f"  [yellow]refused[/] {row.table} id {row.row_id}: changed since the run "
            f"(expected {row.expected!r})"
        )
    if result.non_canonical_left:
        rows = sum(left.rows for left in result.non_canonical_left)
        console.print(
            f"error: {rows} rows still hold legacy spellings written during the run and "
            f"{len(result.follow_up_runs)} follow-up runs; run --apply again once writers send "
            "canonical stages"
        )
        for left in result.non_canonical_left[:LISTED_ROWS]:
            console.print(f"  [yellow]left[/] {left.table}: {left.value!r} x{left.rows}")


# --- the runs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _BackupGate:
    """The apply gate's inputs: a fresh, verified backup of this database (``--backup-file`` or the
    newest in ``--backup-dir``)."""

    url: str
    backup_dir: Path
    max_age: timedelta
    explicit_file: Path | None

    def check(self, columns: Sequence[StageColumn]) -> runner.BackupReference:
        now = datetime.now(UTC)
        verified = require_fresh_backup(
            make_url(self.url),
            [column.table_name for column in columns],
            backup_dir=self.backup_dir,
            max_age=self.max_age,
            explicit_file=self.explicit_file,
            now=now,
        )
        stderr_console().print(f"backup gate passed: {verified.describe(now)}")
        return runner.BackupReference(file=str(verified.file), sha256=verified.manifest.sha256)


@dataclass(frozen=True)
class _Mutation:
    """One ``--apply`` / ``--resume`` / ``--rollback RUN_ID`` invocation on an open database."""

    engine: Engine
    url: str
    columns: list[StageColumn]
    allocations: list[StageColumn]
    options: runner.RunOptions
    resume: bool
    rollback_of: str | None
    confirm: str | None
    backup_gate: _BackupGate
    max_listed_rows: int
    as_json: bool
    operator_map: runner.OperatorMap

    def run(self) -> runner.RunResult | None:
        """Take the step the policy decides; ``None`` when there was nothing to change."""
        incomplete = runner.find_incomplete_run(self.engine)
        unfinished = UnfinishedRun.of(incomplete) if incomplete is not None else None
        step = decide_next_step(resume=self.resume, rollback_of=self.rollback_of, unfinished=unfinished)
        match step:
            case StartRollback(target_run_id=target):
                confirm_or_refuse(self.confirm, f"Roll back run {target} on {redacted_url(self.url)}")
                run_id = runner.create_rollback_run(self.engine, self.columns, target, self.options)
                return self._roll_back(run_id, resumed=False)
            case ContinueRollback(run=run):
                confirm_or_refuse(
                    self.confirm, f"Continue rolling back run {run.target_run_id} on {redacted_url(self.url)}"
                )
                stderr_console().print(
                    f"resuming rollback run {run.id} of run {run.target_run_id} ({run.status})"
                )
                return self._roll_back(run.id, resumed=True)
            case ContinueRun(run=run):
                # The run may have stopped long ago: a resume changes rows too, so it needs a fresh backup
                # just like a new run (the one the run started with still counts while it is fresh).
                backup = self.backup_gate.check(self.columns)
                stderr_console().print(f"resuming {run.kind} run {run.id} ({run.status})")
                return self._normalize(run.id, backup, resumed=True)
            case PlanNewRun():
                return self._new_run()

    def _new_run(self) -> runner.RunResult | None:
        with self.engine.connect() as connection:
            plan = build_plan(
                connection,
                self.columns,
                self.allocations,
                max_listed_rows=self.max_listed_rows,
                operator_map=self.operator_map.targets,
            )
        runner.require_every_source_stored(plan, self.operator_map)
        decision = decide_new_run(plan, force_unknown=self.options.force_unknown)
        if decision.confirmation is not None:
            confirm_or_refuse(self.confirm, decision.confirmation)
        if not decision.has_changes:
            if self.as_json:
                print_json({"ok": True, "mode": "apply", "rows_changed": 0, "plan": plan.to_json()})
            else:
                stderr_console().print("nothing to change: every known stage is already canonical")
            return None
        backup = self.backup_gate.check(self.columns)
        run_id = runner.create_run(self.engine, self.columns, plan, self.options, backup=backup)
        stderr_console().print(f"run {run_id}: {plan.rows_to_change} rows to change")
        return self._normalize(run_id, backup, resumed=False)

    def _normalize(self, run_id: str, backup: runner.BackupReference, *, resumed: bool) -> runner.RunResult:
        with _progress_bars(not self.as_json) as bars:
            result = runner.normalize_to_completion(
                self.engine, self.columns, run_id, self.options, backup=backup, progress=bars, resumed=resumed
            )
        return self._with_unknown_left(result)

    def _roll_back(self, run_id: str, *, resumed: bool) -> runner.RunResult:
        with _progress_bars(not self.as_json) as bars:
            return runner.execute_rollback(
                self.engine, self.columns, run_id, self.options, progress=bars, resumed=resumed
            )

    def _with_unknown_left(self, result: runner.RunResult) -> runner.RunResult:
        """List the unknown values a run left untouched (with their rows), as the plan did."""
        if result.rows_unknown_seen:
            with self.engine.connect() as connection:
                after = build_plan(connection, self.columns, max_listed_rows=self.max_listed_rows)
            result.unknown_left = [
                runner.UnknownLeft(table=table.table, value=u.value, rows=u.rows, row_ids=u.row_ids)
                for table in after.tables
                for u in table.unknown
            ]
        return result


# --- the command ---------------------------------------------------------------------------------


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
    map_values: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            metavar="VALUE=STAGE",
            help="Map an unknown stored value (exact) to a canonical stage, audited like any change; "
            "repeatable, e.g. --map 'mezzanine=series_b'. For a dry run or a new --apply run.",
        ),
    ] = None,
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
    mutates = apply or resume or rollback is not None
    # As before the policy moved to ops/: an empty --rollback "" plans (and so changes nothing).
    dry_run = not (apply or resume or rollback)
    _refuse_conflicting_flags(apply, resume, rollback, map_values, as_json=as_json)
    with one_line_errors(as_json, interrupted=INTERRUPTED_HINT):
        operator_map = runner.OperatorMap.parse(map_values or ())
        options = runner.RunOptions(
            batch_size=batch_size,
            force_unknown=force_unknown,
            lock_timeout_ms=lock_timeout_ms,
            statement_timeout_ms=statement_timeout_ms,
            # A dry run records nothing, so it needs no actor (and must work for any uid).
            actor=resolve_actor(actor) if mutates else None,
        )
        url = database_url_or_settings(database_url)
        engine = open_engine(url)
        try:
            metadata = stage_metadata()
            columns = stage_columns(metadata)
            if dry_run:
                _dry_run(
                    engine,
                    columns,
                    allocation_columns(metadata),
                    max_listed_rows,
                    operator_map=operator_map,
                    as_json=as_json,
                )
                return
            mutation = _Mutation(
                engine,
                url,
                columns,
                allocation_columns(metadata),
                options,
                resume=resume,
                rollback_of=rollback,
                confirm=confirm,
                backup_gate=_BackupGate(
                    url, backup_dir, timedelta(hours=max_backup_age_hours), explicit_file=backup_file
                ),
                max_listed_rows=max_listed_rows,
                as_json=as_json,
                operator_map=operator_map,
            )
            with exclusive_job(engine):
                result = mutation.run()
        finally:
            engine.dispose()
    if result is None:
        return
    incomplete_result = bool(result.refused or result.non_canonical_left)
    if as_json:
        print_json({"ok": not incomplete_result, "result": result.to_json()})
    else:
        _render_result(result, stderr_console())
    if incomplete_result:
        raise typer.Exit(EXIT_FAILURE)


def _refuse_conflicting_flags(
    apply: bool, resume: bool, rollback: str | None, map_values: list[str] | None, *, as_json: bool
) -> None:
    """Exit with a usage error when the flags ask for more than one run (or --map with a stored plan)."""
    if sum((apply, resume, rollback is not None)) > 1:
        fail("--apply, --resume and --rollback exclude each other", EXIT_USAGE, as_json=as_json)
    if map_values and (resume or rollback is not None):
        fail(
            "--map plans a new run; --resume and --rollback continue the plan a run already has",
            EXIT_USAGE,
            as_json=as_json,
        )


def _dry_run(
    engine: Engine,
    columns: list[StageColumn],
    allocations: list[StageColumn],
    max_listed_rows: int,
    *,
    operator_map: runner.OperatorMap,
    as_json: bool,
) -> None:
    with engine.connect() as connection:
        plan = build_plan(
            connection,
            columns,
            allocations,
            max_listed_rows=max_listed_rows,
            operator_map=operator_map.targets,
        )
    runner.require_every_source_stored(plan, operator_map)
    if as_json:
        print_json({"ok": True, "mode": "dry-run", "plan": plan.to_json()})
    else:
        _render_plan(plan, Console())
        stderr_console().print("dry run: nothing changed; add --apply to normalize")
