"""Batches: the keyset cursor, resuming after the last committed batch, lock-timeout retries.

Every batch runs in one transaction that holds its rows' locks, changes them, audits them and commits
its own progress row, so a run killed at any point leaves whole batches only. Before the batch starts,
a short transaction of its own leaves an ``in_progress`` marker, so a killed batch stays visible to
``fundmodel db verify``. What a batch does to the rows is the backend's and the run kind's business
(:mod:`.backend`, :mod:`.apply`, :mod:`.rollback`); this module only drives them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from fundmodel.db.normalization_tables import stage_normalization_batches as batches_table
from fundmodel.db.normalization_tables import stage_normalization_runs as runs_table
from fundmodel.errors import StoreUnavailableError
from fundmodel.ops.connection import SQLITE_IMMEDIATE
from fundmodel.ops.normalize.backend import BatchOutcome, Cursor, NormalizationBackend
from fundmodel.ops.normalize.runs import Progress, RunOptions, RunResult, now

COMMITTED_BATCH = "committed"
IN_PROGRESS_BATCH = "in_progress"


# One batch's work inside its transaction; ``None`` when nothing is left after the cursor.
BatchWork = Callable[[Connection, Cursor], BatchOutcome | None]


def resume_cursor(
    connection: Connection, run_id: str, table_name: str, key_from_text: Callable[[str], Any]
) -> tuple[Cursor, int]:
    """Where a table's batches continue, and how many rows its committed batches already scanned."""
    committed = (
        batches_table.c.run_id == run_id,
        batches_table.c.table_name == table_name,
        batches_table.c.status == COMMITTED_BATCH,
    )
    row = connection.execute(
        select(batches_table.c.batch_no, batches_table.c.last_key)
        .where(*committed)
        .order_by(batches_table.c.batch_no.desc())
        .limit(1)
    ).first()
    scanned = connection.execute(
        select(func.coalesce(func.sum(batches_table.c.rows_scanned), 0)).where(*committed)
    ).scalar_one()
    if row is None:
        return Cursor(after_key=None, batch_no=1), int(scanned)
    return Cursor(after_key=key_from_text(row.last_key), batch_no=row.batch_no + 1), int(scanned)


def drive_table(
    engine: Engine,
    backend: NormalizationBackend,
    run_id: str,
    table_name: str,
    cursor: Cursor,
    options: RunOptions,
    batch: BatchWork,
    progress: Progress,
    result: RunResult,
) -> None:
    """Run batches for one table until one finds nothing left, each in its own transaction."""
    while True:
        _mark_batch_started(engine, backend, run_id, table_name, cursor)
        outcome = _with_retries(engine, backend, options, run_id, table_name, cursor, batch)
        if outcome is None:
            return
        counts = outcome.counts
        result.batches += 1
        result.rows_changed += counts.changed
        result.rows_replanned += counts.replanned
        result.rows_unknown_seen += counts.unknown
        result.per_table[table_name] = result.per_table.get(table_name, 0) + counts.changed
        progress.advance(table_name, outcome.scanned)
        cursor = Cursor(after_key=outcome.last_key, batch_no=cursor.batch_no + 1)


def _this_batch(run_id: str, table_name: str, batch_no: int) -> tuple[ColumnElement[bool], ...]:
    return (
        batches_table.c.run_id == run_id,
        batches_table.c.table_name == table_name,
        batches_table.c.batch_no == batch_no,
    )


def _mark_batch_started(
    engine: Engine, backend: NormalizationBackend, run_id: str, table_name: str, cursor: Cursor
) -> None:
    # Its own short transaction, so a killed batch leaves a visible in_progress row behind.
    with engine.begin() as connection:
        backend.begin_bookkeeping(connection)
        connection.execute(
            delete(batches_table).where(
                batches_table.c.run_id == run_id,
                batches_table.c.table_name == table_name,
                batches_table.c.batch_no >= cursor.batch_no,
            )
        )
        connection.execute(
            insert(batches_table).values(
                run_id=run_id,
                table_name=table_name,
                batch_no=cursor.batch_no,
                status=IN_PROGRESS_BATCH,
                after_key=None if cursor.after_key is None else str(cursor.after_key),
                started_at=now(),
            )
        )


def _with_retries(
    engine: Engine,
    backend: NormalizationBackend,
    options: RunOptions,
    run_id: str,
    table_name: str,
    cursor: Cursor,
    batch: BatchWork,
) -> BatchOutcome | None:
    """Run the batch and its progress row in one transaction, retrying lock timeouts a few times."""
    attempts = max(1, options.lock_retries)
    for attempt in range(1, attempts + 1):
        try:
            with _batch_connection(engine) as connection, connection.begin():
                backend.begin_batch(connection, options)
                outcome = batch(connection, cursor)
                _record_batch(connection, run_id, table_name, cursor, outcome)
                return outcome
        except IntegrityError:
            raise
        except DBAPIError as exc:
            if not backend.is_lock_timeout(exc):
                raise
            if attempt == attempts:
                raise StoreUnavailableError(
                    f"batch could not get its row locks in time ({exc.orig}); "
                    "re-run with --resume when the competing writer is done"
                ) from exc
    raise AssertionError("unreachable")


def _batch_connection(engine: Engine) -> Connection:
    # SQLite: BEGIN IMMEDIATE, so the batch holds the write lock before its first read.
    return engine.connect().execution_options(**{SQLITE_IMMEDIATE: True})


def _record_batch(
    connection: Connection, run_id: str, table_name: str, cursor: Cursor, outcome: BatchOutcome | None
) -> None:
    this_batch = _this_batch(run_id, table_name, cursor.batch_no)
    if outcome is None:
        # Nothing left after the cursor: the in_progress marker goes away with the (empty) batch.
        connection.execute(delete(batches_table).where(*this_batch))
        return
    connection.execute(
        update(batches_table)
        .where(*this_batch)
        .values(
            status=COMMITTED_BATCH,
            last_key=str(outcome.last_key),
            rows_scanned=outcome.scanned,
            rows_changed=outcome.counts.changed,
            rows_replanned=outcome.counts.replanned,
            rows_unknown=outcome.counts.unknown,
            rows_inserted=outcome.row_effect.inserted,
            rows_deleted=outcome.row_effect.deleted,
            committed_at=now(),
        )
    )
    connection.execute(
        update(runs_table)
        .where(runs_table.c.id == run_id)
        .values(rows_changed=runs_table.c.rows_changed + outcome.counts.changed, updated_at=now())
    )
