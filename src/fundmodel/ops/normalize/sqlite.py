"""The SQLite backend: batches under ``BEGIN IMMEDIATE``, classified in Python, written by executemany.

The batch transaction takes the database's write lock before its first read (``ops/connection.py``), so
the values a batch reads stay current until it commits and nobody else can add or remove rows meanwhile:
a changed row count in the batch's range is the batch's own doing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.exc import DBAPIError

from fundmodel.db.normalization_tables import stage_normalization_audit as audit_table
from fundmodel.errors import StoreUnavailableError
from fundmodel.ops.normalize.backend import BatchCounts, BatchOutcome, Change, Cursor, RowCountChange
from fundmodel.ops.normalize.runs import RunOptions, now
from fundmodel.ops.planning import classify_stage_value
from fundmodel.ops.stage_columns import CANONICAL_VALUES, StageColumn


@dataclass(frozen=True)
class _RowCount:
    """The batch's rows counted again after its writes; the lock rules out anyone else's."""

    column: StageColumn
    rows: ColumnElement[bool]
    before: int

    def measure(self, connection: Connection) -> RowCountChange:
        after = int(
            connection.execute(
                select(func.count()).select_from(self.column.table).where(self.rows)
            ).scalar_one()
        )
        return RowCountChange(inserted=max(after - self.before, 0), deleted=max(self.before - after, 0))


def _key_window(column: StageColumn, after_key: Any, last_key: Any) -> ColumnElement[bool]:
    """The batch's keys: after the cursor, up to its last key."""
    window: ColumnElement[bool] = column.key <= last_key
    return window if after_key is None else and_(column.key > after_key, window)


class SQLiteBackend:
    def begin_bookkeeping(self, connection: Connection) -> None:
        return None

    def begin_batch(self, connection: Connection, options: RunOptions) -> None:
        # BEGIN IMMEDIATE (the connection's execution option) already waits for the write lock, up to
        # the engine's busy timeout; there is nothing per batch to set.
        return None

    def is_lock_timeout(self, exc: DBAPIError) -> bool:
        return "database is locked" in str(exc.orig)

    def track_row_effect(
        self, connection: Connection, column: StageColumn, rows: ColumnElement[bool], rows_before: int
    ) -> _RowCount:
        return _RowCount(column, rows, rows_before)

    def lock_values(
        self, connection: Connection, column: StageColumn, keys: Sequence[Any]
    ) -> dict[Any, str | None]:
        # The transaction's write lock already covers every row.
        return {
            row[0]: row[1]
            for row in connection.execute(select(column.key, column.column).where(column.key.in_(keys)))
        }

    def normalize_batch(
        self,
        connection: Connection,
        column: StageColumn,
        run_id: str,
        cursor: Cursor,
        batch_size: int,
        mapping: dict[str, str],
    ) -> BatchOutcome | None:
        scanned, last_key = self.key_range(connection, column, cursor.after_key, batch_size)
        if scanned == 0:
            return None
        window = _key_window(column, cursor.after_key, last_key)
        effect = self.track_row_effect(connection, column, window, scanned)
        rows = connection.execute(
            select(column.key, column.column)
            .where(window, or_(column.column.is_(None), column.column.not_in(CANONICAL_VALUES)))
            .order_by(column.key)
        )
        changes: list[Change] = []
        replanned = unknown = 0
        for row_key, value in rows:
            if value is None:
                unknown += 1
                continue
            after = mapping.get(value)
            if after is None:
                # Not in the plan: written after planning (a concurrent writer); plan it now.
                verdict, after = classify_stage_value(value)
                if verdict != "change" or after is None:
                    unknown += verdict == "unknown"
                    continue
                replanned += 1
            changes.append(Change(row_key, value, after))
        changed = self.write_changes(connection, column, run_id, cursor.batch_no, changes)
        counts = BatchCounts(changed=changed, replanned=replanned, unknown=unknown)
        return BatchOutcome(
            last_key=last_key, scanned=scanned, counts=counts, row_effect=effect.measure(connection)
        )

    def key_range(
        self, connection: Connection, column: StageColumn, after_key: Any, batch_size: int
    ) -> tuple[int, Any]:
        """How many keys the batch covers after the cursor (up to ``batch_size``), and its last key."""
        keys = select(column.key.label("k")).order_by(column.key).limit(batch_size)
        if after_key is not None:
            keys = keys.where(column.key > after_key)
        sub = keys.subquery()
        scanned, last_key = connection.execute(select(func.count(), func.max(sub.c.k))).one()
        return int(scanned), last_key

    def write_changes(
        self,
        connection: Connection,
        column: StageColumn,
        run_id: str,
        batch_no: int,
        changes: Sequence[Change],
    ) -> int:
        """The batch holds the write lock, so the read values are still current."""
        if not changes:
            return 0
        statement = (
            update(column.table)
            .where(column.key == bindparam("row_key"), column.column == bindparam("before"))
            .values({column.column.name: bindparam("after")})
        )
        result = connection.execute(
            statement, [{"row_key": key, "before": before, "after": after} for key, before, after in changes]
        )
        if result.rowcount != len(changes):
            # Cannot happen while BEGIN IMMEDIATE holds the lock; refuse rather than audit a guess.
            raise StoreUnavailableError("rows changed under the batch's lock; the batch was rolled back")
        changed_at = now()
        connection.execute(
            insert(audit_table),
            [
                {
                    "run_id": run_id,
                    "batch_no": batch_no,
                    "table_name": column.table_name,
                    "row_id": str(key),
                    "before_value": before,
                    "after_value": after,
                    "changed_at": changed_at,
                }
                for key, before, after in changes
            ],
        )
        return len(changes)
