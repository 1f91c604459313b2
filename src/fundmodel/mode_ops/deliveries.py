"""The Alertmanager deliveries already handled: one row per (groupKey, fingerprint, startsAt) key.

Every delivery that matched the downgrade label is remembered here, whether it lowered the mode or found
it already lenient, so a repeat of it never acts again, not even after an operator raised the mode back
to ``enforce``. The key is the primary key: checking a delivery is one indexed lookup (no scan of the
audit log), and workers recording the same delivery at once insert-or-ignore without a race.

:func:`claim_deliveries` runs inside the transaction that may also change the mode: the first delivery
to insert a key owns it, and a concurrent copy of it waits on that insert (PostgreSQL: the primary-key
index; SQLite: the database write lock) and then finds it taken. So exactly one copy of a delivery acts
and every other copy is a duplicate, and a delivery is never remembered without its effect.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from fundmodel.db.tables import stage_webhook_deliveries
from fundmodel.errors import StoreUnavailableError

__all__ = ["claim_deliveries", "mark_downgraded", "record_deliveries", "seen_deliveries"]

# Far below SQLite's bound-parameter limit, and far above what one notification carries.
_CHUNK = 500


def seen_deliveries(engine: Engine, keys: Sequence[str]) -> frozenset[str]:
    """Those of ``keys`` recorded before. Raises :class:`StoreUnavailableError` when unreadable."""
    table = stage_webhook_deliveries
    seen: set[str] = set()
    try:
        with engine.connect() as connection:
            for chunk in _chunks(keys):
                query = select(table.c.idempotency_key).where(table.c.idempotency_key.in_(chunk))
                seen.update(connection.execute(query).scalars())
    except SQLAlchemyError as exc:
        raise StoreUnavailableError(f"webhook deliveries unreadable: {type(exc).__name__}") from exc
    return frozenset(seen)


def record_deliveries(
    engine: Engine, keys: Sequence[str], *, result: str, audit_id: int | None = None
) -> int:
    """Remember ``keys`` (already known ones are left alone) in a transaction of their own; how many
    were new.

    Raises :class:`StoreUnavailableError` when the write fails (nothing is recorded then).
    """
    if not keys:
        return 0
    try:
        with engine.begin() as connection:
            return len(claim_deliveries(connection, keys, result=result, audit_id=audit_id))
    except SQLAlchemyError as exc:
        raise StoreUnavailableError(f"webhook deliveries not written: {type(exc).__name__}") from exc


def claim_deliveries(
    connection: Connection, keys: Sequence[str], *, result: str, audit_id: int | None = None
) -> frozenset[str]:
    """Insert those of ``keys`` not recorded yet, inside the caller's transaction; the ones inserted.

    A key another open transaction has just inserted blocks until that transaction ends, then counts
    as taken (or as new, if it rolled back). Keys go in sorted, so two deliveries sharing keys lock them
    in the same order and cannot deadlock.
    """
    now = datetime.now(UTC)
    ordered = sorted(set(keys))
    claimed: set[str] = set()
    for chunk in _chunks(ordered):
        claimed.update(_insert_new(connection, [_row(key, now, result, audit_id) for key in chunk]))
    return frozenset(claimed)


def mark_downgraded(connection: Connection, keys: Sequence[str], *, audit_id: int | None) -> None:
    """Record that the claimed ``keys`` lowered the mode, with the audit row that says so (``None``: only a
    brownout window was ended, the stored mode was already lenient)."""
    table = stage_webhook_deliveries
    for chunk in _chunks(sorted(keys)):
        connection.execute(
            update(table)
            .where(table.c.idempotency_key.in_(chunk))
            .values(result="downgraded", audit_id=audit_id)
        )


def _row(key: str, now: datetime, result: str, audit_id: int | None) -> dict[str, Any]:
    return {"idempotency_key": key, "received_at": now, "result": result, "audit_id": audit_id}


def _insert_new(connection: Connection, rows: list[dict[str, Any]]) -> list[str]:
    # RETURNING, not rowcount: drivers disagree on rowcount for multi-row inserts; RETURNING lists exactly
    # the rows inserted (a conflicting one is skipped) on both backends.
    statement = (
        _insert_or_ignore(connection.dialect.name)
        .values(rows)
        .returning(stage_webhook_deliveries.c.idempotency_key)
    )
    return [str(key) for key in connection.execute(statement).scalars()]


def _insert_or_ignore(dialect: str) -> Insert:
    table = stage_webhook_deliveries
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=[table.c.idempotency_key])
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=[table.c.idempotency_key])
    raise StoreUnavailableError(f"webhook deliveries: unsupported database {dialect!r}")


def _chunks(keys: Sequence[str]) -> Iterator[list[str]]:
    for start in range(0, len(keys), _CHUNK):
        yield list(keys[start : start + _CHUNK])
