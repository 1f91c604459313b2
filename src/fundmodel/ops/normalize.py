"""The batch runner: keyset batches, one transaction each, audited, resumable, reversible.

Each batch locks the rows of its key range that are not canonical (PostgreSQL ``FOR UPDATE``;
SQLite ``BEGIN IMMEDIATE``), classifies every value it finds under the lock (a value written after the
plan is planned then), updates the rows by id to what their locked value becomes, and writes one audit
row per changed row plus its own progress row in the same transaction. A run killed at any point
therefore leaves whole batches only, and resuming continues after the last committed one. Legacy values a
concurrent writer puts behind the cursor are left to a follow-up run (``normalize_to_completion``).
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    bindparam,
    delete,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError

from fundmodel.db.normalization_tables import (
    stage_normalization_audit as audit_table,
)
from fundmodel.db.normalization_tables import (
    stage_normalization_batches as batches_table,
)
from fundmodel.db.normalization_tables import (
    stage_normalization_runs as runs_table,
)
from fundmodel.errors import InvalidInputError, OperationRefusedError, StoreUnavailableError
from fundmodel.ops.connection import SQLITE_IMMEDIATE, is_postgresql
from fundmodel.ops.constraints import constraints_present
from fundmodel.ops.planning import Plan, build_plan, classify_stage_value
from fundmodel.ops.stage_columns import CANONICAL_VALUES, StageColumn

RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
ROLLED_BACK = "rolled_back"
KIND_NORMALIZE = "normalize"
KIND_ROLLBACK = "rollback"


class Progress(Protocol):
    """Receives progress of a run; the CLI draws Rich bars from it."""

    def start_table(self, table: str, total: int, done: int) -> None: ...

    def advance(self, table: str, rows: int) -> None: ...


class NullProgress:
    def start_table(self, table: str, total: int, done: int) -> None:
        return None

    def advance(self, table: str, rows: int) -> None:
        return None


@dataclass(frozen=True)
class RunOptions:
    batch_size: int = 5000
    force_unknown: bool = False
    lock_timeout_ms: int = 5000
    statement_timeout_ms: int = 300_000
    lock_retries: int = 3
    actor: str | None = None


@dataclass(frozen=True)
class BackupReference:
    file: str
    sha256: str


@dataclass
class RunResult:
    run_id: str
    kind: str
    status: str
    resumed: bool
    rows_changed: int = 0
    rows_replanned: int = 0
    rows_unknown_seen: int = 0
    batches: int = 0
    # Runs one apply started after this one for legacy spellings written while it went on.
    follow_up_runs: list[str] = field(default_factory=list)
    per_table: dict[str, int] = field(default_factory=dict)
    refused: list[dict[str, Any]] = field(default_factory=list)
    unknown_left: list[dict[str, Any]] = field(default_factory=list)
    # Known legacy spellings still stored after the last follow-up run (a writer that never stopped).
    non_canonical_left: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "kind": self.kind,
            "status": self.status,
            "resumed": self.resumed,
            "rows_changed": self.rows_changed,
            "rows_replanned": self.rows_replanned,
            "rows_unknown_seen": self.rows_unknown_seen,
            "batches": self.batches,
            "follow_up_runs": self.follow_up_runs,
            "per_table": self.per_table,
            "refused": self.refused,
            "unknown_left": self.unknown_left,
            "non_canonical_left": self.non_canonical_left,
        }


def _now() -> datetime:
    return datetime.now(UTC)


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _audited_actor(options: RunOptions) -> str:
    """Every run that changes rows is audited with who ran it; the CLI resolves ``--actor`` first."""
    if options.actor is None or not options.actor.strip():
        raise InvalidInputError("a run that changes rows needs an actor: pass --actor NAME", field="actor")
    return options.actor.strip()


def count_rows(connection: Connection, columns: Sequence[StageColumn]) -> dict[str, int]:
    return {
        column.table_name: connection.execute(select(func.count()).select_from(column.table)).scalar_one()
        for column in columns
    }


# --- run bookkeeping -----------------------------------------------------------------------------


def find_incomplete_run(engine: Engine, kind: str | None = None) -> dict[str, Any] | None:
    """The run a previous process left running (killed or failed mid-way), if any; of ``kind`` if given."""
    query = select(runs_table).where(runs_table.c.status.in_((RUNNING, FAILED)))
    if kind is not None:
        query = query.where(runs_table.c.kind == kind)
    with engine.connect() as connection:
        row = connection.execute(query.order_by(runs_table.c.started_at.desc()).limit(1)).first()
    return dict(row._mapping) if row is not None else None


def resume_hint(run: dict[str, Any]) -> str:
    """The command that finishes an interrupted run: a rollback is only ever continued by --rollback."""
    if run["kind"] == KIND_ROLLBACK:
        return f"fundmodel db normalize-stages --rollback {run['target_run_id']}"
    return "fundmodel db normalize-stages --resume"


def get_run(engine: Engine, run_id: str) -> dict[str, Any] | None:
    with engine.connect() as connection:
        row = connection.execute(select(runs_table).where(runs_table.c.id == run_id)).first()
    return dict(row._mapping) if row is not None else None


def create_run(
    engine: Engine,
    columns: Sequence[StageColumn],
    plan: Plan,
    options: RunOptions,
    *,
    backup: BackupReference | None,
) -> str:
    """Record a new normalization run (its plan, backup and starting row counts)."""
    run_id = uuid.uuid4().hex[:16]
    now = _now()
    with engine.begin() as connection:
        connection.execute(
            insert(runs_table).values(
                id=run_id,
                kind=KIND_NORMALIZE,
                status=RUNNING,
                force_unknown=options.force_unknown,
                batch_size=options.batch_size,
                plan=plan.to_json(),
                backup_file=backup.file if backup else None,
                backup_sha256=backup.sha256 if backup else None,
                row_counts_start=count_rows(connection, columns),
                rows_changed=0,
                owner=_owner(),
                actor=_audited_actor(options),
                started_at=now,
                updated_at=now,
            )
        )
    return run_id


def create_rollback_run(
    engine: Engine, columns: Sequence[StageColumn], target_run_id: str, options: RunOptions
) -> str:
    target = get_run(engine, target_run_id)
    if target is None:
        raise OperationRefusedError(f"no normalization run {target_run_id!r}")
    if target["kind"] != KIND_NORMALIZE:
        raise OperationRefusedError(f"run {target_run_id} is a {target['kind']} run, not a normalization")
    if target["status"] == ROLLED_BACK:
        raise OperationRefusedError(f"run {target_run_id} is already rolled back")
    if target["status"] != COMPLETED:
        raise OperationRefusedError(
            f"run {target_run_id} is {target['status']}; finish it with --resume before rolling back"
        )
    _refuse_while_guarded(engine, columns)
    run_id = uuid.uuid4().hex[:16]
    now = _now()
    with engine.begin() as connection:
        connection.execute(
            insert(runs_table).values(
                id=run_id,
                kind=KIND_ROLLBACK,
                status=RUNNING,
                target_run_id=target_run_id,
                force_unknown=False,
                batch_size=options.batch_size,
                plan={"target_run_id": target_run_id},
                rows_changed=0,
                owner=_owner(),
                actor=_audited_actor(options),
                started_at=now,
                updated_at=now,
            )
        )
    return run_id


def _refuse_while_guarded(engine: Engine, columns: Sequence[StageColumn]) -> None:
    guarded = [name for name, present in constraints_present(engine, columns).items() if present]
    if guarded:
        raise OperationRefusedError(
            f"stage constraints {guarded} would refuse the old values; "
            "drop them first with `fundmodel db constrain-stages --drop`"
        )


# --- batch machinery -----------------------------------------------------------------------------


@dataclass
class _Cursor:
    after_key: Any
    batch_no: int


def _resume_cursor(connection: Connection, run_id: str, table_name: str, to_key: Any) -> tuple[_Cursor, int]:
    """Where a table's batches continue, and how many rows its committed batches already scanned."""
    row = connection.execute(
        select(batches_table.c.batch_no, batches_table.c.last_key)
        .where(
            batches_table.c.run_id == run_id,
            batches_table.c.table_name == table_name,
            batches_table.c.status == COMMITTED_BATCH,
        )
        .order_by(batches_table.c.batch_no.desc())
        .limit(1)
    ).first()
    scanned = connection.execute(
        select(func.coalesce(func.sum(batches_table.c.rows_scanned), 0)).where(
            batches_table.c.run_id == run_id,
            batches_table.c.table_name == table_name,
            batches_table.c.status == COMMITTED_BATCH,
        )
    ).scalar_one()
    if row is None:
        return _Cursor(after_key=None, batch_no=1), int(scanned)
    return _Cursor(after_key=to_key(row.last_key), batch_no=row.batch_no + 1), int(scanned)


COMMITTED_BATCH = "committed"
IN_PROGRESS_BATCH = "in_progress"


def _mark_batch_started(engine: Engine, run_id: str, table_name: str, cursor: _Cursor) -> None:
    # Its own short transaction, so a killed batch leaves a visible in_progress row behind.
    with engine.begin() as connection:
        if is_postgresql(connection):
            connection.exec_driver_sql("SET LOCAL synchronous_commit = off")
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
                started_at=_now(),
            )
        )


def _begin_batch(connection: Connection, options: RunOptions) -> None:
    if is_postgresql(connection):
        # SET LOCAL cannot take bind parameters; the values are validated integers. A batch lost
        # to a server crash after its asynchronous commit is simply redone by the resume: its
        # progress row and audit rows are in the same transaction as the changes.
        connection.exec_driver_sql(
            f"SET LOCAL lock_timeout = {int(options.lock_timeout_ms)}; "
            f"SET LOCAL statement_timeout = {int(options.statement_timeout_ms)}; "
            "SET LOCAL synchronous_commit = off"
        )


def _batch_transaction(engine: Engine) -> Connection:
    return engine.connect().execution_options(**{SQLITE_IMMEDIATE: True})


def _is_lock_timeout(exc: DBAPIError) -> bool:
    code = getattr(exc.orig, "sqlstate", None)
    # 55P03 lock_not_available, 57014 query_canceled (statement_timeout), 40P01 deadlock;
    # SQLite reports a busy database as OperationalError "database is locked".
    return code in {"55P03", "57014", "40P01"} or "database is locked" in str(exc.orig)


@dataclass
class _BatchOutcome:
    last_key: Any
    scanned: int
    changed: int
    replanned: int
    unknown: int
    # What the batch's own transaction did to its table's row count; the job only updates, so both
    # stay 0 and `fundmodel db verify` fails when they do not.
    rows_inserted: int = 0
    rows_deleted: int = 0


def _postgresql_row_counters(connection: Connection, column: StageColumn) -> tuple[int, int]:
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


def _row_effect(before: int, after: int) -> tuple[int, int]:
    """(inserted, deleted) from a row count taken before and after the batch's writes under its lock."""
    return max(after - before, 0), max(before - after, 0)


def _count_in_range(connection: Connection, column: StageColumn, after_key: Any, last_key: Any) -> int:
    query = select(func.count()).select_from(column.table).where(column.key <= last_key)
    if after_key is not None:
        query = query.where(column.key > after_key)
    return int(connection.execute(query).scalar_one())


def _key_range(
    connection: Connection, column: StageColumn, after_key: Any, batch_size: int
) -> tuple[int, Any]:
    keys = select(column.key.label("k")).order_by(column.key).limit(batch_size)
    if after_key is not None:
        keys = keys.where(column.key > after_key)
    sub = keys.subquery()
    scanned, last_key = connection.execute(select(func.count(), func.max(sub.c.k))).one()
    return int(scanned), last_key


def _locked_non_canonical(
    connection: Connection, column: StageColumn, after_key: Any, last_key: Any
) -> list[tuple[Any, str | None]]:
    query = (
        select(column.key, column.column)
        .where(
            column.key <= last_key,
            or_(column.column.is_(None), column.column.not_in(CANONICAL_VALUES)),
        )
        .order_by(column.key)
    )
    if after_key is not None:
        query = query.where(column.key > after_key)
    if is_postgresql(connection):
        query = query.with_for_update()
    return [(row[0], row[1]) for row in connection.execute(query)]


def _write_changes_postgresql(
    connection: Connection,
    column: StageColumn,
    run_id: str,
    batch_no: int,
    changes: list[tuple[Any, str, str]],
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
            "ids": [change[0] for change in changes],
            "befores": [change[1] for change in changes],
            "afters": [change[2] for change in changes],
            "run_id": run_id,
            "batch_no": batch_no,
            "table_name": column.table_name,
        },
    )
    return int(result.rowcount)


def _write_changes_generic(
    connection: Connection,
    column: StageColumn,
    run_id: str,
    batch_no: int,
    changes: list[tuple[Any, str, str]],
) -> int:
    """SQLite: the batch holds the write lock, so the read values are still current."""
    table: Table = column.table
    statement = (
        update(table)
        .where(column.key == bindparam("row_key"), column.column == bindparam("before"))
        .values({column.column.name: bindparam("after")})
    )
    if not changes:
        return 0
    result = connection.execute(statement, [{"row_key": k, "before": b, "after": a} for k, b, a in changes])
    if result.rowcount != len(changes):
        # Cannot happen while BEGIN IMMEDIATE holds the lock; refuse rather than audit a guess.
        raise StoreUnavailableError("rows changed under the batch's lock; the batch was rolled back")
    now = _now()
    connection.execute(
        insert(audit_table),
        [
            {
                "run_id": run_id,
                "batch_no": batch_no,
                "table_name": column.table_name,
                "row_id": str(k),
                "before_value": b,
                "after_value": a,
                "changed_at": now,
            }
            for k, b, a in changes
        ],
    )
    return len(changes)


def _apply_mapping_postgresql(
    connection: Connection,
    column: StageColumn,
    run_id: str,
    cursor: _Cursor,
    last_key: Any,
    mapping: dict[str, str],
) -> tuple[int, dict[str | None, int]]:
    """One statement, all server-side: lock every non-canonical row of the batch's key range (in key
    order), update the locked rows whose value the mapping covers by id, and audit exactly the rows
    that changed. Only the distinct-value mapping travels, never the rows.

    Returns the rows changed and the locked values the mapping did not cover, with their row counts:
    unknown values, and spellings written between the survey and the lock, which the caller re-plans
    while this transaction still holds their locks.

    The update joins on the *locked* value, never on ``t.stage`` again: ``FOR UPDATE`` re-reads a row a
    concurrent writer changed and locks its newest version, but a second look at ``t.stage`` inside
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


def _survey_range(
    connection: Connection, column: StageColumn, after_key: Any, batch_size: int
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


# A batch re-plans spellings found under its lock this many times; each round needs a spelling no
# earlier round saw, so this only bounds a writer inventing new ones (a follow-up run gets the rest).
_MAX_REPLANS_PER_BATCH = 3


def _planned_after(value: str | None, mapping: dict[str, str]) -> str | None:
    """What a stored value becomes: the run's plan, else (written after planning) planned now."""
    if value is None:
        return None
    if value in mapping:
        return mapping[value]
    verdict, after = classify_stage_value(value)
    return after if verdict == "change" else None


def _normalize_batch_postgresql(
    connection: Connection,
    column: StageColumn,
    run_id: str,
    cursor: _Cursor,
    options: RunOptions,
    mapping: dict[str, str],
) -> _BatchOutcome | None:
    counters_before = _postgresql_row_counters(connection, column)
    scanned, last_key, present = _survey_range(connection, column, cursor.after_key, options.batch_size)
    if scanned == 0:
        return None
    if not present:
        # Every value canonical when surveyed; a legacy value written since is a follow-up run's job.
        return _BatchOutcome(last_key=last_key, scanned=scanned, changed=0, replanned=0, unknown=0)
    # The batch's own mapping: the planned spellings the survey found, plus any spelling written after
    # planning (a concurrent writer), planned now. Unknown values are counted, never touched.
    batch_mapping: dict[str, str] = {}
    replanned = 0
    for value, count in present.items():
        after = _planned_after(value, mapping)
        if after is not None and value is not None:
            batch_mapping[value] = after
            if value not in mapping:
                replanned += count
    changed, leftover = _apply_mapping_postgresql(connection, column, run_id, cursor, last_key, batch_mapping)
    for _round in range(_MAX_REPLANS_PER_BATCH):
        # Rows rewritten between the survey and the lock to a spelling the mapping lacks: this
        # transaction holds their locks, so plan them from the value they hold now and go again.
        extra = {
            value: after
            for value in leftover
            if value is not None and (after := _planned_after(value, mapping)) is not None
        }
        if not extra:
            break
        replanned += sum(leftover[value] for value in extra)
        batch_mapping.update(extra)
        more, leftover = _apply_mapping_postgresql(
            connection, column, run_id, cursor, last_key, batch_mapping
        )
        changed += more
    unknown = sum(rows for value, rows in leftover.items() if classify_stage_value(value)[0] == "unknown")
    inserted_after, deleted_after = _postgresql_row_counters(connection, column)
    return _BatchOutcome(
        last_key=last_key,
        scanned=scanned,
        changed=changed,
        replanned=replanned,
        unknown=unknown,
        rows_inserted=inserted_after - counters_before[0],
        rows_deleted=deleted_after - counters_before[1],
    )


def _run_normalize_batch(
    connection: Connection,
    column: StageColumn,
    run_id: str,
    cursor: _Cursor,
    options: RunOptions,
    mapping: dict[str, str],
) -> _BatchOutcome | None:
    if is_postgresql(connection):
        return _normalize_batch_postgresql(connection, column, run_id, cursor, options, mapping)
    scanned, last_key = _key_range(connection, column, cursor.after_key, options.batch_size)
    if scanned == 0:
        return None
    # SQLite: BEGIN IMMEDIATE already holds the write lock, so the values read here stay current.
    rows = _locked_non_canonical(connection, column, cursor.after_key, last_key)
    changes: list[tuple[Any, str, str]] = []
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
        changes.append((row_key, value, after))
    changed = _write_changes_generic(connection, column, run_id, cursor.batch_no, changes)
    # Nobody else can write while this transaction holds the lock: a changed count is the batch's doing.
    inserted, deleted = _row_effect(scanned, _count_in_range(connection, column, cursor.after_key, last_key))
    return _BatchOutcome(
        last_key=last_key,
        scanned=scanned,
        changed=changed,
        replanned=replanned,
        unknown=unknown,
        rows_inserted=inserted,
        rows_deleted=deleted,
    )


def _commit_batch_progress(
    connection: Connection,
    run_id: str,
    table_name: str,
    cursor: _Cursor,
    outcome: _BatchOutcome,
) -> None:
    connection.execute(
        update(batches_table)
        .where(
            batches_table.c.run_id == run_id,
            batches_table.c.table_name == table_name,
            batches_table.c.batch_no == cursor.batch_no,
        )
        .values(
            status=COMMITTED_BATCH,
            last_key=str(outcome.last_key),
            rows_scanned=outcome.scanned,
            rows_changed=outcome.changed,
            rows_replanned=outcome.replanned,
            rows_unknown=outcome.unknown,
            rows_inserted=outcome.rows_inserted,
            rows_deleted=outcome.rows_deleted,
            committed_at=_now(),
        )
    )
    connection.execute(
        update(runs_table)
        .where(runs_table.c.id == run_id)
        .values(rows_changed=runs_table.c.rows_changed + outcome.changed, updated_at=_now())
    )


def _with_retries(
    engine: Engine, options: RunOptions, work: Callable[[Connection], _BatchOutcome | None]
) -> _BatchOutcome | None:
    """Run ``work(connection)`` in one batch transaction, retrying lock timeouts a few times."""
    attempts = max(1, options.lock_retries)
    for attempt in range(1, attempts + 1):
        try:
            with _batch_transaction(engine) as connection, connection.begin():
                _begin_batch(connection, options)
                return work(connection)
        except IntegrityError:
            raise
        except DBAPIError as exc:
            if not _is_lock_timeout(exc):
                raise
            if attempt == attempts:
                raise StoreUnavailableError(
                    f"batch could not get its row locks in time ({exc.orig}); "
                    "re-run with --resume when the competing writer is done"
                ) from exc
    raise AssertionError("unreachable")


# --- runs ----------------------------------------------------------------------------------------


def _mark_run(engine: Engine, run_id: str, **values: Any) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(runs_table).where(runs_table.c.id == run_id).values(updated_at=_now(), **values)
        )


def _mapping_from_stored_plan(stored_plan: dict[str, Any], table_name: str) -> dict[str, str]:
    for table in stored_plan.get("tables", []):
        if table.get("table") == table_name:
            return {change["before"]: change["after"] for change in table.get("changes", [])}
    return {}


BatchWork = Callable[[Connection, _Cursor], _BatchOutcome | None]


def _drive_table(
    engine: Engine,
    run_id: str,
    table_name: str,
    cursor: _Cursor,
    options: RunOptions,
    batch: BatchWork,
    progress: Progress,
    result: RunResult,
) -> None:
    """Run batches for one table until one finds nothing left, each in its own transaction."""
    while True:
        _mark_batch_started(engine, run_id, table_name, cursor)
        outcome = _with_retries(
            engine, options, partial(_batch_with_progress, run_id, table_name, cursor, batch)
        )
        if outcome is None:
            return
        result.batches += 1
        result.rows_changed += outcome.changed
        result.rows_replanned += outcome.replanned
        result.rows_unknown_seen += outcome.unknown
        result.per_table[table_name] = result.per_table.get(table_name, 0) + outcome.changed
        progress.advance(table_name, outcome.scanned)
        cursor = _Cursor(after_key=outcome.last_key, batch_no=cursor.batch_no + 1)


def _batch_with_progress(
    run_id: str, table_name: str, cursor: _Cursor, batch: BatchWork, connection: Connection
) -> _BatchOutcome | None:
    outcome = batch(connection, cursor)
    if outcome is None:
        # Nothing left after the cursor: the in_progress marker goes away with the (empty) batch.
        connection.execute(
            delete(batches_table).where(
                batches_table.c.run_id == run_id,
                batches_table.c.table_name == table_name,
                batches_table.c.batch_no == cursor.batch_no,
            )
        )
    else:
        _commit_batch_progress(connection, run_id, table_name, cursor, outcome)
    return outcome


def _stored_total(engine: Engine, run_id: str) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                select(runs_table.c.rows_changed).where(runs_table.c.id == run_id)
            ).scalar_one()
        )


def execute_run(
    engine: Engine,
    columns: Sequence[StageColumn],
    run_id: str,
    options: RunOptions,
    *,
    progress: Progress | None = None,
    resumed: bool = False,
) -> RunResult:
    """Drive a normalization run from its last committed batch to the end.

    Only normalization runs: an interrupted rollback is continued by :func:`execute_rollback` (CLI:
    ``--rollback TARGET`` again), never by ``--apply``/``--resume``, which would put legacy values back.
    """
    progress = progress or NullProgress()
    run = get_run(engine, run_id)
    if run is None:
        raise OperationRefusedError(f"no normalization run {run_id!r}")
    if run["kind"] != KIND_NORMALIZE:
        raise OperationRefusedError(
            f"run {run_id} is a {run['kind']} run of run {run['target_run_id']}, not a normalization; "
            f"finish it with `{resume_hint(run)}`"
        )
    _mark_run(engine, run_id, status=RUNNING, owner=_owner(), error=None)
    options = replace(options, batch_size=run["batch_size"], force_unknown=run["force_unknown"])
    result = RunResult(run_id=run_id, kind=KIND_NORMALIZE, status=RUNNING, resumed=resumed)
    counts_start = run["row_counts_start"] or {}
    try:
        for column in columns:
            mapping = _mapping_from_stored_plan(run["plan"], column.table_name)
            with engine.connect() as connection:
                cursor, done = _resume_cursor(connection, run_id, column.table_name, column.key_from_text)
            progress.start_table(column.table_name, int(counts_start.get(column.table_name, 0)), done)
            result.per_table.setdefault(column.table_name, 0)
            batch = partial(_normalize_batch_for, column, run_id, options, mapping)
            _drive_table(engine, run_id, column.table_name, cursor, options, batch, progress, result)
        with engine.connect() as connection:
            counts_end = count_rows(connection, columns)
        _mark_run(
            engine,
            run_id,
            status=COMPLETED,
            row_counts_end=counts_end,
            finished_at=_now(),
            owner=None,
        )
    except BaseException as exc:
        _record_failure(engine, run_id, exc)
        raise
    result.status = COMPLETED
    if resumed:
        result.rows_changed = _stored_total(engine, run_id)
    return result


# How many follow-up runs one apply starts for legacy spellings written while a run went on. Each
# needs a writer to put legacy values behind the previous run's cursor, so this only bounds a writer
# that never stops; whatever is left after the last one is reported.
MAX_FOLLOW_UP_RUNS = 3


def normalize_to_completion(
    engine: Engine,
    columns: Sequence[StageColumn],
    run_id: str,
    options: RunOptions,
    *,
    backup: BackupReference | None,
    progress: Progress | None = None,
    resumed: bool = False,
) -> RunResult:
    """Finish a normalization run, then re-plan until no known legacy spelling is left.

    A keyset pass cannot see what a concurrent writer puts behind its cursor, and a row may change only
    once per run (one audit row per changed row per run), so legacy spellings written meanwhile get a
    follow-up run of their own: a fresh plan from a grouped scan, the same backup reference, its own
    audit. Bounded by ``MAX_FOLLOW_UP_RUNS``; known spellings still stored after that are reported in
    ``non_canonical_left``. The result totals all the runs; ``run_id`` stays the first one.
    """
    result = execute_run(engine, columns, run_id, options, progress=progress, resumed=resumed)
    for _attempt in range(MAX_FOLLOW_UP_RUNS + 1):
        with engine.connect() as connection:
            plan = build_plan(connection, list(columns))
        if plan.rows_to_change == 0 or len(result.follow_up_runs) == MAX_FOLLOW_UP_RUNS:
            break
        follow_up_id = create_run(engine, columns, plan, options, backup=backup)
        follow_up = execute_run(engine, columns, follow_up_id, options, progress=progress)
        result.follow_up_runs.append(follow_up_id)
        result.rows_changed += follow_up.rows_changed
        result.rows_replanned += follow_up.rows_replanned
        result.rows_unknown_seen = follow_up.rows_unknown_seen
        result.batches += follow_up.batches
        for table_name, changed in follow_up.per_table.items():
            result.per_table[table_name] = result.per_table.get(table_name, 0) + changed
    result.non_canonical_left = [
        {"table": table.table, "value": change.before, "after": change.after, "rows": change.rows}
        for table in plan.tables
        for change in table.changes
    ]
    return result


def _normalize_batch_for(
    column: StageColumn,
    run_id: str,
    options: RunOptions,
    mapping: dict[str, str],
    connection: Connection,
    cursor: _Cursor,
) -> _BatchOutcome | None:
    return _run_normalize_batch(connection, column, run_id, cursor, options, mapping)


def _record_failure(engine: Engine, run_id: str, exc: BaseException) -> None:
    if isinstance(exc, KeyboardInterrupt | SystemExit):
        message = "interrupted"
    else:
        message = str(exc).splitlines()[0][:500] if str(exc) else type(exc).__name__
    # The original error matters more than a failed status write; resume works either way.
    with contextlib.suppress(Exception):
        _mark_run(engine, run_id, status=FAILED, error=message, owner=None)


# --- rollback ------------------------------------------------------------------------------------


def _run_rollback_batch(
    connection: Connection,
    column: StageColumn,
    run_id: str,
    target_run_id: str,
    cursor: _Cursor,
    batch_size: int,
) -> _BatchOutcome | None:
    query = (
        select(
            audit_table.c.id,
            audit_table.c.row_id,
            audit_table.c.before_value,
            audit_table.c.after_value,
        )
        .where(audit_table.c.run_id == target_run_id, audit_table.c.table_name == column.table_name)
        .order_by(audit_table.c.id)
        .limit(batch_size)
    )
    if cursor.after_key is not None:
        query = query.where(audit_table.c.id > cursor.after_key)
    postgresql = is_postgresql(connection)
    counters_before = _postgresql_row_counters(connection, column) if postgresql else (0, 0)
    entries = connection.execute(query).all()
    if not entries:
        return None
    keys = [column.key_from_text(entry.row_id) for entry in entries]
    current_query = select(column.key, column.column).where(column.key.in_(keys))
    if postgresql:
        current_query = current_query.with_for_update()
    current = {row[0]: row[1] for row in connection.execute(current_query)}
    changes: list[tuple[Any, str, str]] = []
    refused = 0
    for key, entry in zip(keys, entries, strict=True):
        if key in current and current[key] == entry.after_value:
            changes.append((key, entry.after_value, entry.before_value))
        else:
            refused += 1
    changed = 0
    if changes:
        writer = _write_changes_postgresql if postgresql else _write_changes_generic
        changed = writer(connection, column, run_id, cursor.batch_no, changes)
    if postgresql:
        inserted_after, deleted_after = _postgresql_row_counters(connection, column)
        inserted, deleted = inserted_after - counters_before[0], deleted_after - counters_before[1]
    else:
        # SQLite holds the write lock: the batch's rows can only have come or gone by its own doing.
        still_there = connection.execute(
            select(func.count()).select_from(column.table).where(column.key.in_(keys))
        ).scalar_one()
        inserted, deleted = _row_effect(len(current), int(still_there))
    return _BatchOutcome(
        last_key=entries[-1].id,
        scanned=len(entries),
        changed=changed,
        replanned=0,
        unknown=refused,
        rows_inserted=inserted,
        rows_deleted=deleted,
    )


def refused_rollback_rows(
    engine: Engine, rollback_run_id: str, target_run_id: str, limit: int = 1000
) -> list[dict[str, Any]]:
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
            {"table": row.table_name, "row_id": row.row_id, "expected": row.after_value}
            for row in connection.execute(query)
        ]


def execute_rollback(
    engine: Engine,
    columns: Sequence[StageColumn],
    run_id: str,
    options: RunOptions,
    *,
    progress: Progress | None = None,
    resumed: bool = False,
) -> RunResult:
    """Put back the ``before`` values of the target run, skipping rows changed since.

    Also continues an interrupted rollback run (``resumed``); the stage guard is checked again then,
    since it may have been added while the rollback stood still.
    """
    progress = progress or NullProgress()
    run = get_run(engine, run_id)
    if run is None or run["kind"] != KIND_ROLLBACK or run["target_run_id"] is None:
        raise OperationRefusedError(f"{run_id!r} is not a rollback run")
    target_run_id: str = run["target_run_id"]
    _refuse_while_guarded(engine, columns)
    _mark_run(engine, run_id, status=RUNNING, owner=_owner(), error=None)
    result = RunResult(run_id=run_id, kind=KIND_ROLLBACK, status=RUNNING, resumed=resumed)
    try:
        for column in columns:
            with engine.connect() as connection:
                cursor, done = _resume_cursor(connection, run_id, column.table_name, int)
                total = connection.execute(
                    select(func.count()).where(
                        audit_table.c.run_id == target_run_id,
                        audit_table.c.table_name == column.table_name,
                    )
                ).scalar_one()
            progress.start_table(column.table_name, int(total), done)
            batch = partial(_rollback_batch_for, column, run_id, target_run_id, int(run["batch_size"]))
            try:
                _drive_table(engine, run_id, column.table_name, cursor, options, batch, progress, result)
            except IntegrityError as exc:
                raise OperationRefusedError(
                    "the database refuses the old values (a stage constraint is in place); "
                    "drop it first with `fundmodel db constrain-stages --drop`"
                ) from exc
        result.refused = refused_rollback_rows(engine, run_id, target_run_id)
        _finish_rollback(engine, run_id, target_run_id, refused_rows=len(result.refused))
    except BaseException as exc:
        _record_failure(engine, run_id, exc)
        raise
    result.status = COMPLETED
    if resumed:
        result.rows_changed = _stored_total(engine, run_id)
    return result


def _finish_rollback(engine: Engine, run_id: str, target_run_id: str, *, refused_rows: int) -> None:
    """Complete the rollback run and mark its target rolled back in one transaction: either both or
    neither, so a crash in between can neither leave the target open to a second rollback nor a
    finished rollback that a resume would redo."""
    now = _now()
    with engine.begin() as connection:
        connection.execute(
            update(runs_table)
            .where(runs_table.c.id == run_id)
            .values(
                status=COMPLETED,
                finished_at=now,
                updated_at=now,
                owner=None,
                plan={"target_run_id": target_run_id, "refused_rows": refused_rows},
            )
        )
        connection.execute(
            update(runs_table)
            .where(runs_table.c.id == target_run_id)
            .values(status=ROLLED_BACK, updated_at=now)
        )


def _rollback_batch_for(
    column: StageColumn,
    run_id: str,
    target_run_id: str,
    batch_size: int,
    connection: Connection,
    cursor: _Cursor,
) -> _BatchOutcome | None:
    return _run_rollback_batch(connection, column, run_id, target_run_id, cursor, batch_size)
