"""Rollback: put back the ``before`` values of a completed normalization run, skipping rows changed since.

A rollback is a run of its own (kind ``rollback``, audited the same way), batched over the target run's
audit rows in id order. A row is reverted only while it still holds the value the target run wrote; any
other row is *refused* and listed. The rollback completes together with marking its target rolled back.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.exc import IntegrityError

from fundmodel.db.normalization_tables import stage_normalization_audit as audit_table
from fundmodel.db.normalization_tables import stage_normalization_runs as runs_table
from fundmodel.errors import OperationRefusedError
from fundmodel.ops.normalize.backend import (
    BatchCounts,
    BatchOutcome,
    Change,
    Cursor,
    NormalizationBackend,
    backend_for,
)
from fundmodel.ops.normalize.batches import drive_table, resume_cursor
from fundmodel.ops.normalize.runs import (
    COMPLETED,
    KIND_ROLLBACK,
    ROLLED_BACK,
    RUNNING,
    NullProgress,
    Progress,
    RefusedRow,
    RunOptions,
    RunResult,
    claim_run,
    get_run,
    now,
    record_failure,
    refuse_while_guarded,
    stored_total,
)
from fundmodel.ops.stage_columns import StageColumn


def execute_rollback(
    engine: Engine,
    columns: Sequence[StageColumn],
    run_id: str,
    options: RunOptions,
    *,
    progress: Progress | None = None,
    resumed: bool = False,
    backend: NormalizationBackend | None = None,
) -> RunResult:
    """Put back the ``before`` values of the target run, skipping rows changed since.

    Also continues an interrupted rollback run (``resumed``); the stage guard is checked again then,
    since it may have been added while the rollback stood still.
    """
    progress = progress or NullProgress()
    backend = backend or backend_for(engine)
    run = get_run(engine, run_id)
    if run is None or run.kind != KIND_ROLLBACK or run.target_run_id is None:
        raise OperationRefusedError(f"{run_id!r} is not a rollback run")
    target_run_id = run.target_run_id
    refuse_while_guarded(engine, columns)
    claim_run(engine, run_id)
    result = RunResult(run_id=run_id, kind=KIND_ROLLBACK, status=RUNNING, resumed=resumed)
    try:
        for column in columns:
            with engine.connect() as connection:
                cursor, done = resume_cursor(connection, run_id, column.table_name, int)
                total = connection.execute(
                    select(func.count()).where(
                        audit_table.c.run_id == target_run_id,
                        audit_table.c.table_name == column.table_name,
                    )
                ).scalar_one()
            progress.start_table(column.table_name, int(total), done)
            batch = _RollbackBatches(backend, column, run_id, target_run_id, run.batch_size)
            try:
                drive_table(
                    engine, backend, run_id, column.table_name, cursor, options, batch, progress, result
                )
            except IntegrityError as exc:
                raise OperationRefusedError(
                    "the database refuses the old values (a stage constraint is in place); "
                    "drop it first with `fundmodel db constrain-stages --drop`"
                ) from exc
        result.refused = refused_rollback_rows(engine, run_id, target_run_id)
        _finish_rollback(engine, run_id, target_run_id, refused_rows=len(result.refused))
    except BaseException as exc:
        record_failure(engine, run_id, exc)
        raise
    result.status = COMPLETED
    if resumed:
        result.rows_changed = stored_total(engine, run_id)
    return result


class _RollbackBatches:
    """The batch work of one table's rollback: the next ``batch_size`` audit rows of the target run."""

    def __init__(
        self,
        backend: NormalizationBackend,
        column: StageColumn,
        run_id: str,
        target_run_id: str,
        batch_size: int,
    ) -> None:
        self.backend = backend
        self.column = column
        self.run_id = run_id
        self.target_run_id = target_run_id
        self.batch_size = batch_size

    def __call__(self, connection: Connection, cursor: Cursor) -> BatchOutcome | None:
        column = self.column
        query = (
            select(
                audit_table.c.id, audit_table.c.row_id, audit_table.c.before_value, audit_table.c.after_value
            )
            .where(audit_table.c.run_id == self.target_run_id, audit_table.c.table_name == column.table_name)
            .order_by(audit_table.c.id)
            .limit(self.batch_size)
        )
        if cursor.after_key is not None:
            query = query.where(audit_table.c.id > cursor.after_key)
        entries = connection.execute(query).all()
        if not entries:
            return None
        keys = [column.key_from_text(entry.row_id) for entry in entries]
        current = self.backend.lock_values(connection, column, keys)
        effect = self.backend.track_row_effect(connection, column, column.key.in_(keys), len(current))
        reverts = [
            Change(key, entry.after_value, entry.before_value)
            for key, entry in zip(keys, entries, strict=True)
            if key in current and current[key] == entry.after_value
        ]
        changed = (
            self.backend.write_changes(connection, column, self.run_id, cursor.batch_no, reverts)
            if reverts
            else 0
        )
        counts = BatchCounts(changed=changed, refused=len(entries) - len(reverts))
        return BatchOutcome(
            last_key=entries[-1].id,
            scanned=len(entries),
            counts=counts,
            row_effect=effect.measure(connection),
        )


def refused_rollback_rows(
    engine: Engine, rollback_run_id: str, target_run_id: str, limit: int = 1000
) -> list[RefusedRow]:
    """Rows of the target run the rollback left alone because they changed since."""
    reverted = audit_table.alias("reverted")
    query = (
        select(audit_table.c.table_name, audit_table.c.row_id, audit_table.c.after_value)
        .where(audit_table.c.run_id == target_run_id)
        .where(
            ~select(reverted.c.id)
            .where(
                reverted.c.run_id == rollback_run_id,
                reverted.c.table_name == audit_table.c.table_name,
                reverted.c.row_id == audit_table.c.row_id,
            )
            .exists()
        )
        .order_by(audit_table.c.id)
        .limit(limit)
    )
    with engine.connect() as connection:
        return [
            RefusedRow(table=row.table_name, row_id=row.row_id, expected=row.after_value)
            for row in connection.execute(query)
        ]


def _finish_rollback(engine: Engine, run_id: str, target_run_id: str, *, refused_rows: int) -> None:
    """Complete the rollback run and mark its target rolled back in one transaction: either both or
    neither, so a crash in between can neither leave the target open to a second rollback nor a
    finished rollback that a resume would redo."""
    finished = now()
    with engine.begin() as connection:
        connection.execute(
            update(runs_table)
            .where(runs_table.c.id == run_id)
            .values(
                status=COMPLETED,
                finished_at=finished,
                updated_at=finished,
                owner=None,
                plan={"target_run_id": target_run_id, "refused_rows": refused_rows},
            )
        )
        connection.execute(
            update(runs_table)
            .where(runs_table.c.id == target_run_id)
            .values(status=ROLLED_BACK, updated_at=finished)
        )
