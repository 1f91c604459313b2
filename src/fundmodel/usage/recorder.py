"""Writing the stage-usage ledger: batches added with an upsert, and pruning past retention.

A batch is written in one transaction: every tally is an ``INSERT .. ON CONFLICT DO UPDATE`` that *adds*
its count to the row's (first seen the earliest, last seen the latest, the client's latest name), so the
workers of every replica add to the same rows; and the batch's flush id is inserted into
``stage_usage_flushes``. A batch whose earlier commit may have succeeded is written only when its flush id
is absent, so no count is ever added twice. Rows are written in key order: two workers upserting
overlapping keys take the row locks in the same order and cannot deadlock.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, case, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from fundmodel.db.availability import unavailable_reason
from fundmodel.db.usage_tables import stage_usage, stage_usage_flushes
from fundmodel.usage.ledger import UsageBatch
from fundmodel.validation.decision_types import UsageKind

FLUSH_MARKER_RETENTION = timedelta(days=7)
"""How long a flush id is remembered: far longer than a batch can wait for its uncertain commit."""
_ROWS_PER_STATEMENT = 500
_CLIENT_NAME_CHARS = 100
"""The ``client_name`` column's length."""
_KEY_COLUMNS = ("day", "client_id", "endpoint", "field", "kind", "spelling")


class FlushOutcome(enum.StrEnum):
    """What writing one batch did (the ``result`` label of ``fundmodel_stage_usage_flushes_total``)."""

    WRITTEN = "written"
    ALREADY_WRITTEN = "already_written"
    """An earlier attempt had committed it after all: nothing added."""
    NOT_WRITTEN = "not_written"
    """Rolled back (or never reached the database): the counts are certainly not in it."""
    UNCERTAIN = "uncertain"
    """The commit failed: it may or may not have been applied."""


@dataclass(frozen=True, slots=True)
class FlushAttempt:
    outcome: FlushOutcome
    rows: int
    """Rows upserted (0 unless written)."""
    reason: str | None = None
    """Why it failed: the outage reason, or the error's class (never the driver's message)."""


@dataclass(frozen=True, slots=True)
class PruneResult:
    before: date
    """Rows of days before this one are (or would be) deleted."""
    rows: int
    dry_run: bool


def write_batch(engine: Engine, batch: UsageBatch, *, now: datetime | None = None) -> FlushAttempt:
    """Add ``batch`` to ``stage_usage`` in one transaction; never raises for a database error."""
    flushed_at = now if now is not None else datetime.now(UTC)
    rows = _rows(batch)
    try:
        connection = engine.connect()
    except SQLAlchemyError as error:
        return FlushAttempt(FlushOutcome.NOT_WRITTEN, 0, _reason(error))
    with connection:
        try:
            transaction = connection.begin()
            if batch.uncertain and _already_written(connection, batch.flush_id):
                transaction.rollback()
                return FlushAttempt(FlushOutcome.ALREADY_WRITTEN, 0)
            upsert = _upsert_statement(engine.dialect.name)
            for start in range(0, len(rows), _ROWS_PER_STATEMENT):
                connection.execute(upsert, rows[start : start + _ROWS_PER_STATEMENT])
            connection.execute(
                stage_usage_flushes.insert().values(flush_id=batch.flush_id, flushed_at=flushed_at)
            )
        except SQLAlchemyError as error:
            # Leaving the block rolls the transaction back: nothing of this batch is in the database.
            return FlushAttempt(FlushOutcome.NOT_WRITTEN, 0, _reason(error))
        try:
            transaction.commit()
        except SQLAlchemyError as error:
            return FlushAttempt(FlushOutcome.UNCERTAIN, 0, _reason(error))
    return FlushAttempt(FlushOutcome.WRITTEN, len(rows))


def forget_old_flushes(engine: Engine, *, now: datetime | None = None) -> int:
    """Delete flush ids older than :data:`FLUSH_MARKER_RETENTION`; how many were deleted."""
    cutoff = (now if now is not None else datetime.now(UTC)) - FLUSH_MARKER_RETENTION
    with engine.begin() as connection:
        result = connection.execute(
            delete(stage_usage_flushes).where(stage_usage_flushes.c.flushed_at < cutoff)
        )
    return int(result.rowcount or 0)


def prune_usage(
    engine: Engine, *, older_than_days: int, dry_run: bool, today: date | None = None
) -> PruneResult:
    """Delete the ledger rows of days more than ``older_than_days`` before ``today`` (UTC).

    ``older_than_days=90`` keeps today and the 90 days before it. A dry run only counts the rows.
    """
    current = today if today is not None else datetime.now(UTC).date()
    before = current - timedelta(days=older_than_days)
    old_rows = stage_usage.c.day < before
    with engine.begin() as connection:
        if dry_run:
            count = connection.execute(
                select(func.count()).select_from(stage_usage).where(old_rows)
            ).scalar_one()
            return PruneResult(before, int(count), dry_run=True)
        deleted = connection.execute(delete(stage_usage).where(old_rows)).rowcount
    forget_old_flushes(engine)
    return PruneResult(before, int(deleted or 0), dry_run=False)


def _already_written(connection: Any, flush_id: str) -> bool:
    found = connection.execute(
        select(stage_usage_flushes.c.flush_id).where(stage_usage_flushes.c.flush_id == flush_id)
    ).first()
    return found is not None


def _rows(batch: UsageBatch) -> list[dict[str, Any]]:
    rows = []
    for key in sorted(batch.tallies):
        tally = batch.tallies[key]
        day, client_id, endpoint, field, kind, spelling = key
        # ``kind`` is a UsageKind: bound as its plain text value.
        row: dict[str, Any] = {
            "day": day,
            "client_id": client_id,
            "endpoint": endpoint,
            "field": field,
            "kind": str(kind.value) if isinstance(kind, UsageKind) else kind,
            "spelling": spelling,
        }
        row["count"] = tally.count
        row["first_seen_at"] = datetime.fromtimestamp(tally.first_seen, UTC)
        row["last_seen_at"] = datetime.fromtimestamp(tally.last_seen, UTC)
        row["client_name"] = tally.client_name[:_CLIENT_NAME_CHARS]
        rows.append(row)
    return rows


def _upsert_statement(dialect: str) -> Any:
    """``INSERT .. ON CONFLICT (key) DO UPDATE`` adding the count, for PostgreSQL or SQLite."""
    table = stage_usage
    if dialect == "postgresql":
        pg_insert = postgresql.insert(table)
        excluded = pg_insert.excluded
        return pg_insert.on_conflict_do_update(
            index_elements=list(_KEY_COLUMNS),
            set_=_added(
                excluded,
                func.least(table.c.first_seen_at, excluded.first_seen_at),
                func.greatest(table.c.last_seen_at, excluded.last_seen_at),
            ),
        )
    if dialect == "sqlite":
        sqlite_insert = sqlite.insert(table)
        excluded = sqlite_insert.excluded
        # SQLite's two-argument min()/max() are scalar; its timestamps are ISO text, ordered as text.
        return sqlite_insert.on_conflict_do_update(
            index_elements=list(_KEY_COLUMNS),
            set_=_added(
                excluded,
                func.min(table.c.first_seen_at, excluded.first_seen_at),
                func.max(table.c.last_seen_at, excluded.last_seen_at),
            ),
        )
    raise ValueError(f"the usage ledger supports PostgreSQL and SQLite, not {dialect}")


def _added(excluded: Any, first_seen_at: Any, last_seen_at: Any) -> dict[str, Any]:
    """The update of a conflicting row: counts added, the earliest first and the latest last sighting."""
    table = stage_usage
    return {
        "count": table.c.count + excluded.count,
        "first_seen_at": first_seen_at,
        "last_seen_at": last_seen_at,
        # The name when last seen (a retried batch may be older than the row).
        "client_name": case(
            (excluded.last_seen_at >= table.c.last_seen_at, excluded.client_name),
            else_=table.c.client_name,
        ),
    }


def _reason(error: SQLAlchemyError) -> str:
    reason = unavailable_reason(error)
    return (
        reason.value if reason is not None else type(error.orig if hasattr(error, "orig") else error).__name__
    )


__all__: Sequence[str] = [
    "FLUSH_MARKER_RETENTION",
    "FlushAttempt",
    "FlushOutcome",
    "PruneResult",
    "forget_old_flushes",
    "prune_usage",
    "write_batch",
]
