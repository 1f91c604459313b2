"""The PostgreSQL backend: server-side batches that lock with ``FOR UPDATE`` and audit in one statement.

A batch surveys its key range without locks (one grouped scan), then one statement locks the range's
non-canonical rows, updates the ones the batch's mapping covers and audits exactly what changed; only
the distinct-value mapping travels, never the rows. Spellings written between the survey and the lock
are re-planned inside the same transaction. What a batch did to its table's row count is read from the
statistics collector's per-transaction counters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, literal, null, or_, select, text, union_all
from sqlalchemy.exc import DBAPIError

from fundmodel.db.normalization_tables import stage_normalization_audit as audit_table
from fundmodel.ops.normalize.backend import (
    BatchCounts,
    BatchOutcome,
    Change,
    Cursor,
    RowCountChange,
    planned_after,
)
from fundmodel.ops.normalize.runs import RunOptions
from fundmodel.ops.planning import classify_stage_value
from fundmodel.ops.stage_columns import CANONICAL_VALUES, StageColumn

# 55P03 lock_not_available, 57014 query_canceled (statement_timeout), 40P01 deadlock.
_LOCK_TIMEOUT_STATES = frozenset({"55P03", "57014", "40P01"})

# A batch re-plans spellings found under its lock this many times; each round needs a spelling no
# earlier round saw, so this only bounds a writer inventing new ones (a follow-up run gets the rest).
MAX_REPLANS_PER_BATCH = 3


@dataclass(frozen=True)
class _TransactionCounters:
    """Rows this transaction inserted into and deleted from the table when tracking started."""

    column: StageColumn
    inserted: int
    deleted: int

    def measure(self, connection: Connection) -> RowCountChange:
        inserted, deleted = _row_counters(connection, self.column)
        return RowCountChange(inserted - self.inserted, deleted - self.deleted)


def _row_counters(connection: Connection, column: StageColumn) -> tuple[int, int]:
    """Rows this session inserted into and deleted from the table, as the statistics collector counts
    them. The counters are flushed only between transactions, so the difference of two readings inside
    one batch transaction is exactly what that transaction did (ordinary writers' rows never count)."""
    inserted, deleted = connection.execute(
        text(
            "SELECT pg_stat_get_xact_tuples_inserted(to_regclass(:t)), "
            "pg_stat_get_xact_tuples_deleted(to_regclass(:t))"
        ),
        {"t": connection.dialect.identifier_preparer.format_table(column.table)},
    ).one()
    return int(inserted or 0), int(deleted or 0)


def _batch_mapping(present: dict[str | None, int], mapping: dict[str, str]) -> tuple[dict[str, str], int]:
    """The batch's own mapping: the planned spellings the survey found, plus any spelling written after
    planning (a concurrent writer), planned now, with the rows of the latter. Unknown values are
    counted by the caller, never touched."""
    batch_mapping: dict[str, str] = {}
    replanned = 0
    for value, count in present.items():
        after = planned_after(value, mapping)
        if after is not None and value is not None:
            batch_mapping[value] = after
            if value not in mapping:
                replanned += count
    return batch_mapping, replanned


class PostgreSQLBackend:
    def begin_bookkeeping(self, connection: Connection) -> None:
        connection.exec_driver_sql("SET LOCAL synchronous_commit = off")

    def begin_batch(self, connection: Connection, options: RunOptions) -> None:
        # SET LOCAL cannot take bind parameters; the values are validated integers. A batch lost
        # to a server crash after its asynchronous commit is simply redone by the resume: its
        # progress row and audit rows are in the same transaction as the changes.
        connection.exec_driver_sql(
            f"SET LOCAL lock_timeout = {int(options.lock_timeout_ms)}; "
            f"SET LOCAL statement_timeout = {int(options.statement_timeout_ms)}; "
            "SET LOCAL synchronous_commit = off"
        )

    def is_lock_timeout(self, exc: DBAPIError) -> bool:
        return getattr(exc.orig, "sqlstate", None) in _LOCK_TIMEOUT_STATES

    def track_row_effect(
        self, connection: Connection, column: StageColumn, rows: ColumnElement[bool], rows_before: int
    ) -> _TransactionCounters:
        # The counters cover the whole table, so the batch's rows need no counting here.
        return _TransactionCounters(column, *_row_counters(connection, column))

    def lock_values(
        self, connection: Connection, column: StageColumn, keys: Sequence[Any]
    ) -> dict[Any, str | None]:
        query = select(column.key, column.column).where(column.key.in_(keys)).with_for_update()
        return {row[0]: row[1] for row in connection.execute(query)}

    def normalize_batch(
        self,
        connection: Connection,
        column: StageColumn,
        run_id: str,
        cursor: Cursor,
        batch_size: int,
        mapping: dict[str, str],
    ) -> BatchOutcome | None:
        effect = _TransactionCounters(column, *_row_counters(connection, column))
        scanned, last_key, present = self.survey_range(connection, column, cursor.after_key, batch_size)
        if scanned == 0:
            return None
        if not present:
            # Every value canonical when surveyed; a legacy value written since is a follow-up run's job.
            return BatchOutcome(last_key=last_key, scanned=scanned, counts=BatchCounts(changed=0))
        batch_mapping, replanned = _batch_mapping(present, mapping)
        changed, leftover = self.apply_mapping(connection, column, run_id, cursor, last_key, batch_mapping)
        for _round in range(MAX_REPLANS_PER_BATCH):
            # Rows rewritten between the survey and the lock to a spelling the mapping lacks: this
            # transaction holds their locks, so plan them from the value they hold now and go again.
            extra = {
                value: after
                for value in leftover
                if value is not None and (after := planned_after(value, mapping)) is not None
            }
            if not extra:
                break
            replanned += sum(leftover[value] for value in extra)
            batch_mapping.update(extra)
            more, leftover = self.apply_mapping(connection, column, run_id, cursor, last_key, batch_mapping)
            changed += more
        unknown = sum(rows for value, rows in leftover.items() if classify_stage_value(value)[0] == "unknown")
        counts = BatchCounts(changed=changed, replanned=replanned, unknown=unknown)
        return BatchOutcome(
            last_key=last_key, scanned=scanned, counts=counts, row_effect=effect.measure(connection)
        )

    def survey_range(
        self, connection: Connection, column: StageColumn, after_key: Any, batch_size: int
    ) -> tuple[int, Any, dict[str | None, int]]:
        """One scan of the batch's key range: its size, its last key and its non-canonical values."""
        window = select(column.key.label("k"), column.column.label("v")).order_by(column.key)
        if after_key is not None:
            window = window.where(column.key > after_key)
        batch = window.limit(batch_size).cte("batch_window")
        totals = select(
            literal(True).label("is_total"),
            null().label("v"),
            func.count().label("n"),
            func.max(batch.c.k).label("last_key"),
        ).select_from(batch)
        values = (
            select(literal(False), batch.c.v, func.count(), null())
            .where(or_(batch.c.v.is_(None), batch.c.v.not_in(CANONICAL_VALUES)))
            .group_by(batch.c.v)
        )
        scanned, last_key = 0, None
        found: dict[str | None, int] = {}
        for is_total, value, count, last in connection.execute(union_all(totals, values)):
            if is_total:
                scanned, last_key = int(count), last
            else:
                found[value] = int(count)
        return scanned, last_key, found

    def apply_mapping(
        self,
        connection: Connection,
        column: StageColumn,
        run_id: str,
        cursor: Cursor,
        last_key: Any,
        mapping: dict[str, str],
    ) -> tuple[int, dict[str | None, int]]:
        """One statement, all server-side: lock every non-canonical row of the batch's key range (in key
        order), update the locked rows whose value the mapping covers by id, and audit exactly the rows
        that changed.

        Returns the rows changed and the locked values the mapping did not cover, with their row counts:
        unknown values, and spellings written between the survey and the lock, which the caller re-plans
        while this transaction still holds their locks.

        The update joins on the *locked* value, never on ``t.stage`` again: ``FOR UPDATE`` re-reads a row
        a concurrent writer changed and locks its newest version, but a second look at ``t.stage`` inside
        the same statement would see the statement's older snapshot and skip the row. The lock keeps the
        locked value current until the batch commits, so the row changes only from what it really holds.
        """
        preparer = connection.dialect.identifier_preparer
        table = preparer.format_table(column.table)
        key = preparer.quote(column.key.name)
        stage = preparer.quote(column.column.name)
        audit = preparer.format_table(audit_table)
        lower = f"t.{key} > :after_key AND " if cursor.after_key is not None else ""
        statement = text(
            f"""
            WITH mapping AS (
                SELECT * FROM unnest(CAST(:befores AS text[]), CAST(:afters AS text[]))
                    AS m(before_value, after_value)
            ), locked AS (
                SELECT t.{key} AS id, t.{stage} AS stage FROM {table} AS t
                WHERE {lower}t.{key} <= :last_key
                  AND (t.{stage} IS NULL OR t.{stage} <> ALL(CAST(:canonical AS text[])))
                ORDER BY t.{key}
                FOR UPDATE
            ), changed AS (
                UPDATE {table} AS t SET {stage} = mapping.after_value
                FROM locked JOIN mapping ON locked.stage = mapping.before_value
                WHERE t.{key} = locked.id
                RETURNING t.{key} AS id, mapping.before_value, mapping.after_value
            ), audited AS (
                INSERT INTO {audit} (run_id, batch_no, table_name, row_id, before_value, after_value,
                                     changed_at)
                SELECT :run_id, :batch_no, :table_name, CAST(changed.id AS text), changed.before_value,
                       changed.after_value, now()
                FROM changed
                RETURNING 1
            ), leftover AS (
                SELECT locked.stage AS value, count(*) AS row_count FROM locked
                WHERE NOT EXISTS (SELECT 1 FROM mapping WHERE mapping.before_value = locked.stage)
                GROUP BY locked.stage
            )
            SELECT (SELECT count(*) FROM audited) AS changed,
                   (SELECT json_agg(json_build_array(value, row_count)) FROM leftover) AS leftover
            """  # noqa: S608  (identifiers come from the schema and are quoted by the dialect)
        )
        befores = list(mapping)
        parameters: dict[str, Any] = {
            "befores": befores,
            "afters": [mapping[before] for before in befores],
            "canonical": list(CANONICAL_VALUES),
            "last_key": last_key,
            "run_id": run_id,
            "batch_no": cursor.batch_no,
            "table_name": column.table_name,
        }
        if cursor.after_key is not None:
            parameters["after_key"] = cursor.after_key
        changed, leftover = connection.execute(statement, parameters).one()
        return int(changed), {value: int(rows) for value, rows in (leftover or [])}

    def write_changes(
        self,
        connection: Connection,
        column: StageColumn,
        run_id: str,
        batch_no: int,
        changes: Sequence[Change],
    ) -> int:
        """One statement: update by id where the value is still ``before``, audit exactly what changed."""
        preparer = connection.dialect.identifier_preparer
        table = preparer.format_table(column.table)
        key = preparer.quote(column.key.name)
        stage = preparer.quote(column.column.name)
        key_type = column.key.type.compile(dialect=connection.dialect)
        audit = preparer.format_table(audit_table)
        statement = text(
            f"""
            WITH planned AS (
                SELECT * FROM unnest(CAST(:ids AS {key_type}[]), CAST(:befores AS text[]),
                                     CAST(:afters AS text[])) AS p(id, before_value, after_value)
            ), changed AS (
                UPDATE {table} AS t SET {stage} = planned.after_value
                FROM planned
                WHERE t.{key} = planned.id AND t.{stage} = planned.before_value
                RETURNING t.{key} AS id, planned.before_value, planned.after_value
            )
            INSERT INTO {audit} (run_id, batch_no, table_name, row_id, before_value, after_value,
                                 changed_at)
            SELECT :run_id, :batch_no, :table_name, CAST(changed.id AS text), changed.before_value,
                   changed.after_value, now()
            FROM changed
            """  # noqa: S608  (identifiers come from the schema and are quoted by the dialect)
        )
        result = connection.execute(
            statement,
            {
                "ids": [change.key for change in changes],
                "befores": [change.before for change in changes],
                "afters": [change.after for change in changes],
                "run_id": run_id,
                "batch_no": batch_no,
                "table_name": column.table_name,
            },
        )
        return int(result.rowcount)
