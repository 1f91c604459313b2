"""The backend protocol: what a batch needs from the database, one implementation per backend.

Like httpx's ``BaseTransport`` with one module per transport: :mod:`.postgresql` and :mod:`.sqlite`
each hold every dialect-specific statement (locking, bulk writes, counting what a batch did to its table,
which errors are lock timeouts), and the batch driver, the normalization run and the rollback stay free
of backend checks. ``backend_for`` picks the implementation from the engine; tests pass a subclass that
fails on purpose to the ``backend=`` parameter of the runners.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from sqlalchemy import ColumnElement, Connection, Engine
from sqlalchemy.exc import DBAPIError

from fundmodel.ops.connection import is_postgresql
from fundmodel.ops.normalize.runs import RunOptions
from fundmodel.ops.planning import classify_stage_value
from fundmodel.ops.stage_columns import StageColumn


@dataclass(frozen=True)
class Cursor:
    """Where the next batch of a table starts: after ``after_key`` (``None``: the beginning)."""

    after_key: Any
    batch_no: int


@dataclass(frozen=True)
class BatchCounts:
    changed: int
    # Normalization: rows holding a spelling written after planning, planned by the batch itself.
    replanned: int = 0
    # Normalization: rows holding an unknown value (or none), left untouched.
    unknown: int = 0
    # Rollback: rows the target run changed that have changed again since, so are left alone.
    refused: int = 0


class RowCountChange(NamedTuple):
    """What a batch's own transaction did to its table's row count. The job only updates, so both
    stay 0, and `fundmodel db verify` fails when they do not."""

    inserted: int
    deleted: int


NO_ROW_COUNT_CHANGE = RowCountChange(inserted=0, deleted=0)


@dataclass(frozen=True)
class BatchOutcome:
    last_key: Any
    scanned: int
    counts: BatchCounts
    row_effect: RowCountChange = NO_ROW_COUNT_CHANGE


class Change(NamedTuple):
    """One row to change from the value it holds under the batch's lock, audited as such."""

    key: Any
    before: str | None
    after: str | None


class RowEffect(Protocol):
    """Started before a batch writes; tells what the batch's own writes did to its table's row count."""

    def measure(self, connection: Connection) -> RowCountChange:
        """Rows inserted and deleted by this transaction so far."""
        ...


class NormalizationBackend(Protocol):
    def begin_bookkeeping(self, connection: Connection) -> None:
        """Prepare a short bookkeeping transaction (a batch's ``in_progress`` marker)."""
        ...

    def begin_batch(self, connection: Connection, options: RunOptions) -> None:
        """Prepare a batch transaction (timeouts, durability) before its first statement."""
        ...

    def is_lock_timeout(self, exc: DBAPIError) -> bool:
        """Whether the batch lost a wait for locks (and may be retried) rather than failed."""
        ...

    def normalize_batch(
        self,
        connection: Connection,
        column: StageColumn,
        run_id: str,
        cursor: Cursor,
        batch_size: int,
        mapping: dict[str, str],
    ) -> BatchOutcome | None:
        """Normalize the next ``batch_size`` keys after the cursor, locked and audited; ``None``: done."""
        ...

    def lock_values(
        self, connection: Connection, column: StageColumn, keys: Sequence[Any]
    ) -> dict[Any, str | None]:
        """The current stage value of the rows with these keys, locked until the transaction ends."""
        ...

    def write_changes(
        self,
        connection: Connection,
        column: StageColumn,
        run_id: str,
        batch_no: int,
        changes: Sequence[Change],
    ) -> int:
        """Update the rows still holding ``before`` to ``after``, one audit row each; rows written."""
        ...

    def track_row_effect(
        self, connection: Connection, column: StageColumn, rows: ColumnElement[bool], rows_before: int
    ) -> RowEffect:
        """Start measuring what the batch does to the table; ``rows``/``rows_before``: the batch's rows."""
        ...


def backend_for(engine: Engine | Connection) -> NormalizationBackend:
    """The backend of this engine's database: PostgreSQL, else SQLite (the two the job supports)."""
    # Imported here: each backend module imports this one for the shared types.
    if is_postgresql(engine):
        from fundmodel.ops.normalize.postgresql import PostgreSQLBackend

        return PostgreSQLBackend()
    from fundmodel.ops.normalize.sqlite import SQLiteBackend

    return SQLiteBackend()


def planned_after(value: str | None, mapping: dict[str, str]) -> str | None:
    """What a stored value becomes: the run's plan, else (written after planning) planned now."""
    if value is None:
        return None
    if value in mapping:
        return mapping[value]
    verdict, after = classify_stage_value(value)
    return after if verdict == "change" else None
