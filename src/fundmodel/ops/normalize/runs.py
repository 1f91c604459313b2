"""Normalization runs: options, results, and the run rows (create, read, mark).

A run row is the job's unit of audit and resumption: what it planned, which backup it relied on, who ran
it, its status and its starting and ending row counts. Batches and rollback only ever move a run through
``running -> completed | failed`` (and a normalization to ``rolled_back``) with the helpers here.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, RowMapping, func, insert, select, update

from fundmodel.db.normalization_tables import stage_normalization_runs as runs_table
from fundmodel.errors import InvalidInputError, OperationRefusedError
from fundmodel.ops.constraints import constraints_present
from fundmodel.ops.planning import Plan
from fundmodel.ops.stage_columns import StageColumn

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


@dataclass(frozen=True)
class RefusedRow:
    """A row a rollback left alone: it no longer holds the value the target run wrote (``expected``)."""

    table: str
    row_id: str
    expected: str | None

    def to_json(self) -> dict[str, Any]:
        return {"table": self.table, "row_id": self.row_id, "expected": self.expected}


@dataclass(frozen=True)
class UnknownLeft:
    """An unknown value a run left untouched: how many rows hold it and the first of them."""

    table: str
    value: str | None
    rows: int
    row_ids: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"table": self.table, "value": self.value, "rows": self.rows, "row_ids": list(self.row_ids)}


@dataclass(frozen=True)
class LegacyLeft:
    """A known legacy spelling still stored after the last follow-up run (a writer that never stopped)."""

    table: str
    value: str
    after: str
    rows: int

    def to_json(self) -> dict[str, Any]:
        return {"table": self.table, "value": self.value, "after": self.after, "rows": self.rows}


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
    refused: list[RefusedRow] = field(default_factory=list)
    unknown_left: list[UnknownLeft] = field(default_factory=list)
    non_canonical_left: list[LegacyLeft] = field(default_factory=list)

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
            "refused": [row.to_json() for row in self.refused],
            "unknown_left": [left.to_json() for left in self.unknown_left],
            "non_canonical_left": [left.to_json() for left in self.non_canonical_left],
        }


@dataclass(frozen=True)
class StoredRun:
    """One row of ``stage_normalization_runs``, typed: what :func:`get_run` and :func:`find_incomplete_run`
    return. ``plan`` stays the JSON document stored with the run (:meth:`Plan.to_json`, or a rollback's
    ``target_run_id``): it is read back only by :meth:`planned_mapping` and printed as it is."""

    id: str
    kind: str
    status: str
    target_run_id: str | None
    force_unknown: bool
    batch_size: int
    plan: dict[str, Any]
    backup_file: str | None
    backup_sha256: str | None
    row_counts_start: dict[str, int] | None
    row_counts_end: dict[str, int] | None
    rows_changed: int
    owner: str | None
    actor: str | None
    error: str | None
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None

    @classmethod
    def from_mapping(cls, row: Mapping[str, Any] | RowMapping) -> StoredRun:
        return cls(**{column.name: row[column.name] for column in fields(cls)})

    @property
    def resume_hint(self) -> str:
        """The command that finishes this run if it was interrupted."""
        return resume_hint(self.kind, self.target_run_id)

    def planned_mapping(self, table_name: str) -> dict[str, str]:
        """The plan's ``before -> after`` spellings for one table (empty for a table with none)."""
        for table in self.plan.get("tables", []):
            if table.get("table") == table_name:
                return {change["before"]: change["after"] for change in table.get("changes", [])}
        return {}


def now() -> datetime:
    return datetime.now(UTC)


def process_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def new_run_id() -> str:
    return uuid.uuid4().hex[:16]


def audited_actor(options: RunOptions) -> str:
    """Every run that changes rows is audited with who ran it; the CLI resolves ``--actor`` first."""
    if options.actor is None or not options.actor.strip():
        raise InvalidInputError("a run that changes rows needs an actor: pass --actor NAME", field="actor")
    return options.actor.strip()


def count_rows(connection: Connection, columns: Sequence[StageColumn]) -> dict[str, int]:
    return {
        column.table_name: connection.execute(select(func.count()).select_from(column.table)).scalar_one()
        for column in columns
    }


def find_incomplete_run(engine: Engine, kind: str | None = None) -> StoredRun | None:
    """The run a previous process left running (killed or failed mid-way), if any; of ``kind`` if given."""
    query = select(runs_table).where(runs_table.c.status.in_((RUNNING, FAILED)))
    if kind is not None:
        query = query.where(runs_table.c.kind == kind)
    with engine.connect() as connection:
        row = connection.execute(query.order_by(runs_table.c.started_at.desc()).limit(1)).first()
    return StoredRun.from_mapping(row._mapping) if row is not None else None


def resume_hint(kind: str, target_run_id: str | None) -> str:
    """The command that finishes an interrupted run: a rollback is only ever continued by --rollback."""
    if kind == KIND_ROLLBACK:
        return f"fundmodel db normalize-stages --rollback {target_run_id}"
    return "fundmodel db normalize-stages --resume"


def get_run(engine: Engine, run_id: str) -> StoredRun | None:
    """The run ``run_id``, or None when there is none."""
    with engine.connect() as connection:
        row = connection.execute(select(runs_table).where(runs_table.c.id == run_id)).first()
    return StoredRun.from_mapping(row._mapping) if row is not None else None


def create_run(
    engine: Engine,
    columns: Sequence[StageColumn],
    plan: Plan,
    options: RunOptions,
    *,
    backup: BackupReference | None,
) -> str:
    """Record a new normalization run (its plan, backup and starting row counts)."""
    with engine.begin() as connection:
        return _insert_run(
            connection,
            options,
            kind=KIND_NORMALIZE,
            force_unknown=options.force_unknown,
            plan=plan.to_json(),
            backup_file=backup.file if backup else None,
            backup_sha256=backup.sha256 if backup else None,
            row_counts_start=count_rows(connection, columns),
        )


def create_rollback_run(
    engine: Engine, columns: Sequence[StageColumn], target_run_id: str, options: RunOptions
) -> str:
    """Record a rollback of a completed normalization run; refused for any other run or under a guard."""
    target = get_run(engine, target_run_id)
    if target is None:
        raise OperationRefusedError(f"no normalization run {target_run_id!r}")
    if target.kind != KIND_NORMALIZE:
        raise OperationRefusedError(f"run {target_run_id} is a {target.kind} run, not a normalization")
    if target.status == ROLLED_BACK:
        raise OperationRefusedError(f"run {target_run_id} is already rolled back")
    if target.status != COMPLETED:
        raise OperationRefusedError(
            f"run {target_run_id} is {target.status}; finish it with --resume before rolling back"
        )
    refuse_while_guarded(engine, columns)
    with engine.begin() as connection:
        return _insert_run(
            connection,
            options,
            kind=KIND_ROLLBACK,
            target_run_id=target_run_id,
            force_unknown=False,
            plan={"target_run_id": target_run_id},
        )


def _insert_run(connection: Connection, options: RunOptions, **kind_specific: Any) -> str:
    """Insert a running run owned by this process; refused (nothing written) without an actor."""
    run_id = new_run_id()
    started = now()
    connection.execute(
        insert(runs_table).values(
            id=run_id,
            status=RUNNING,
            batch_size=options.batch_size,
            rows_changed=0,
            owner=process_owner(),
            actor=audited_actor(options),
            started_at=started,
            updated_at=started,
            **kind_specific,
        )
    )
    return run_id


def refuse_while_guarded(engine: Engine, columns: Sequence[StageColumn]) -> None:
    """A rollback writes legacy values back, which a stage constraint would refuse half-way."""
    guarded = [name for name, present in constraints_present(engine, columns).items() if present]
    if guarded:
        raise OperationRefusedError(
            f"stage constraints {guarded} would refuse the old values; "
            "drop them first with `fundmodel db constrain-stages --drop`"
        )


def mark_run(engine: Engine, run_id: str, **values: Any) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(runs_table).where(runs_table.c.id == run_id).values(updated_at=now(), **values)
        )


def claim_run(engine: Engine, run_id: str) -> None:
    """This process now drives the run (again): running, owned here, no error."""
    mark_run(engine, run_id, status=RUNNING, owner=process_owner(), error=None)


def record_failure(engine: Engine, run_id: str, exc: BaseException) -> None:
    if isinstance(exc, KeyboardInterrupt | SystemExit):
        message = "interrupted"
    else:
        message = str(exc).splitlines()[0][:500] if str(exc) else type(exc).__name__
    # The original error matters more than a failed status write; resume works either way.
    with contextlib.suppress(Exception):
        mark_run(engine, run_id, status=FAILED, error=message, owner=None)


def stored_total(engine: Engine, run_id: str) -> int:
    """Rows changed by every committed batch of the run, across all the processes that drove it."""
    with engine.connect() as connection:
        return int(
            connection.execute(
                select(runs_table.c.rows_changed).where(runs_table.c.id == run_id)
            ).scalar_one()
        )
