"""Keeping stages canonical once they are: a CHECK constraint (PostgreSQL) or guard triggers (SQLite).

PostgreSQL adds the constraint ``NOT VALID`` (a brief lock, no scan) and then ``VALIDATE``s it, which
scans without blocking writers. SQLite cannot add a CHECK to an existing table without rebuilding it
(Alembic batch mode copies the whole table under an exclusive lock), so it gets ``BEFORE INSERT`` and
``BEFORE UPDATE OF`` triggers that abort on a non-canonical value: instant, reversible and equivalent
for every write path. NULL is left to the column's own NOT NULL rule in both cases.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Connection, Engine, func, select, text
from sqlalchemy.exc import DBAPIError

from fundmodel.db.stage_guard import guard_constraint_name, sqlite_guard_message
from fundmodel.errors import OperationRefusedError
from fundmodel.ops.connection import is_postgresql
from fundmodel.ops.planning import classify_stage_value
from fundmodel.ops.stage_columns import CANONICAL_VALUES, StageColumn

_LISTED_ROWS = 100
_HINTED_VALUES = 5  # unknown values spelled out as --map items in the refusal

# Per stage column: the guard fully in force (PostgreSQL: VALIDATED; SQLite: both triggers), in force
# for new writes only (PostgreSQL NOT VALID), half there (SQLite: one of its two triggers), or absent.
GuardState = Literal["validated", "not_valid", "partial", "absent"]
GUARD_VALIDATED: GuardState = "validated"
GUARD_NOT_VALID: GuardState = "not_valid"
GUARD_PARTIAL: GuardState = "partial"
GUARD_ABSENT: GuardState = "absent"


def constraint_name(column: StageColumn) -> str:
    return guard_constraint_name(column.table_name, column.column.name)


def _in_list() -> str:
    return ", ".join(f"'{value}'" for value in CANONICAL_VALUES)


@dataclass(frozen=True)
class OffendingRow:
    row_id: str
    value: str


@dataclass(frozen=True)
class OffendingValues:
    """The non-canonical values of one stage column: how many rows, which spellings, the first rows."""

    table: str
    rows: int
    values: tuple[str, ...]
    listed: tuple[OffendingRow, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "rows": self.rows,
            "row_ids": [row.row_id for row in self.listed],
            "values": list(self.values),
            "listed": [{"row_id": row.row_id, "value": row.value} for row in self.listed],
        }


@dataclass
class ConstraintReport:
    added: list[str] = field(default_factory=list)
    already_present: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    offending: list[OffendingValues] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "already_present": self.already_present,
            "dropped": self.dropped,
            "offending": [found.to_json() for found in self.offending],
        }


def offending_rows(connection: Connection, columns: Sequence[StageColumn]) -> list[OffendingValues]:
    """Per table, non-canonical (non-NULL) values with their counts and the first rows (id and value)."""
    found = []
    for column in columns:
        bad = column.column.not_in(CANONICAL_VALUES) & column.column.is_not(None)
        count = connection.execute(select(func.count()).where(bad)).scalar_one()
        if count:
            listed = connection.execute(
                select(column.key, column.column).where(bad).order_by(column.key).limit(_LISTED_ROWS)
            ).all()
            values = connection.scalars(select(column.column).where(bad).distinct().limit(20)).all()
            found.append(
                OffendingValues(
                    table=column.table_name,
                    rows=int(count),
                    values=tuple(sorted(values)),
                    listed=tuple(OffendingRow(str(row_id), value) for row_id, value in listed),
                )
            )
    return found


def offending_extra(found: Sequence[OffendingValues]) -> dict[str, Any]:
    """A refusal's ``extra``: the offending rows as the error document carries them (``--json``)."""
    return {"offending": [values.to_json() for values in found]}


def _postgresql_state(connection: Connection, column: StageColumn) -> bool | None:
    """None when absent, else whether the constraint is validated (also None when the table is missing)."""
    row = connection.execute(
        text(
            "SELECT convalidated FROM pg_constraint WHERE conname = :name AND conrelid = to_regclass(:table)"
        ),
        {"name": constraint_name(column), "table": column.table_name},
    ).first()
    return None if row is None else bool(row[0])


def sqlite_guard_triggers(column: StageColumn) -> tuple[str, str]:
    """Names of the two SQLite guard triggers of a stage column (insert, update)."""
    base = f"trg_{column.table_name}_{column.column.name}_canonical"
    return f"{base}_insert", f"{base}_update"


def _sqlite_trigger_count(connection: Connection, column: StageColumn) -> int:
    names = sqlite_guard_triggers(column)
    present = connection.scalars(
        text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name IN (:a, :b)"),
        {"a": names[0], "b": names[1]},
    ).all()
    return len(present)


def _sqlite_present(connection: Connection, column: StageColumn) -> bool:
    return _sqlite_trigger_count(connection, column) == 2


def guard_state(connection: Connection, column: StageColumn) -> GuardState:
    if is_postgresql(connection):
        validated = _postgresql_state(connection, column)
        if validated is None:
            return GUARD_ABSENT
        return GUARD_VALIDATED if validated else GUARD_NOT_VALID
    triggers = _sqlite_trigger_count(connection, column)
    return GUARD_VALIDATED if triggers == 2 else GUARD_PARTIAL if triggers == 1 else GUARD_ABSENT


def guard_states(connection: Connection, columns: Sequence[StageColumn]) -> dict[str, GuardState]:
    """Per constraint name, how far the canonical-stage guard is in place (read-only)."""
    return {constraint_name(column): guard_state(connection, column) for column in columns}


def constraints_present(engine: Engine, columns: Sequence[StageColumn]) -> dict[str, bool]:
    """Whether any part of each guard is in place. A NOT VALID constraint (or one SQLite trigger) counts:
    it already refuses non-canonical values on write, which is what the rollback guard cares about."""
    with engine.connect() as connection:
        return {name: state != GUARD_ABSENT for name, state in guard_states(connection, columns).items()}


def normalize_first_hint(values: Sequence[str]) -> str:
    """The commands that make ``values`` canonical: ``--apply`` normalizes known spellings; unknown values
    need the operator to say which stage they are (``--map``), so the hint names each of them."""
    unknown = [value for value in values if classify_stage_value(value)[0] == "unknown"]
    fixes = []
    if len(unknown) < len(values):
        fixes.append("`fundmodel db normalize-stages --apply` for the known legacy spellings")
    if unknown:
        shown = unknown[:_HINTED_VALUES]
        maps = " ".join("--map " + _single_quoted(f"{value}=STAGE") for value in shown)
        more = f" (and {len(unknown) - len(shown)} more)" if len(unknown) > len(shown) else ""
        fixes.append(
            f"`fundmodel db normalize-stages --apply {maps}` for the unknown values "
            f"{', '.join(map(repr, shown))}{more}, STAGE being one of {', '.join(CANONICAL_VALUES)}"
        )
    return "; ".join(fixes)


def _single_quoted(argument: str) -> str:
    """A shell word, always quoted (``'mezzanine=STAGE'``) so every --map item reads the same."""
    quoted = shlex.quote(argument)
    return quoted if quoted.startswith("'") else f"'{quoted}'"


def add_stage_constraints(
    engine: Engine, columns: Sequence[StageColumn], *, lock_timeout_ms: int = 5000
) -> ConstraintReport:
    """Add the guard to every stage column; refuses, listing the rows, while any value is not canonical."""
    report = ConstraintReport()
    with engine.connect() as connection:
        report.offending = offending_rows(connection, columns)
    if report.offending:
        summary = ", ".join(f"{found.table}: {found.rows} rows" for found in report.offending)
        values = sorted({value for found in report.offending for value in found.values})
        raise OperationRefusedError(
            f"non-canonical stages remain ({summary}); normalize them first: {normalize_first_hint(values)}",
            extra=offending_extra(report.offending),
        )
    for column in columns:
        name = constraint_name(column)
        if is_postgresql(engine):
            _add_postgresql(engine, column, lock_timeout_ms, report)
        else:
            with engine.begin() as connection:
                if _sqlite_present(connection, column):
                    report.already_present.append(name)
                    continue
                _add_sqlite(connection, column)
            report.added.append(name)
    return report


def _add_postgresql(
    engine: Engine, column: StageColumn, lock_timeout_ms: int, report: ConstraintReport
) -> None:
    name = constraint_name(column)
    preparer = engine.dialect.identifier_preparer
    table = preparer.format_table(column.table)
    stage = preparer.quote(column.column.name)
    with engine.begin() as connection:
        state = _postgresql_state(connection, column)
        if state is True:
            report.already_present.append(name)
            return
        connection.exec_driver_sql(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}")
        if state is None:
            connection.exec_driver_sql(
                f"ALTER TABLE {table} ADD CONSTRAINT {preparer.quote(name)} "
                f"CHECK ({stage} IN ({_in_list()})) NOT VALID"
            )
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}")
            connection.exec_driver_sql(f"ALTER TABLE {table} VALIDATE CONSTRAINT {preparer.quote(name)}")
    except DBAPIError as exc:
        # A writer slipped a legacy value in between the check and VALIDATE; the NOT VALID
        # constraint already guards new writes, so keep it and report the rows.
        with engine.connect() as connection:
            offending = offending_rows(connection, [column])
        raise OperationRefusedError(
            f"{name} added NOT VALID but could not be validated ({exc.orig}); "
            "normalize the listed rows and run constrain-stages again",
            extra=offending_extra(offending),
        ) from exc
    report.added.append(name)


def _add_sqlite(connection: Connection, column: StageColumn) -> None:
    insert_name, update_name = sqlite_guard_triggers(column)
    table = connection.dialect.identifier_preparer.format_table(column.table)
    stage = connection.dialect.identifier_preparer.quote(column.column.name)
    message = sqlite_guard_message(column.table_name, column.column.name)
    condition = f"NEW.{stage} IS NOT NULL AND NEW.{stage} NOT IN ({_in_list()})"
    connection.exec_driver_sql(
        f"CREATE TRIGGER IF NOT EXISTS {insert_name} BEFORE INSERT ON {table} "
        f"WHEN {condition} BEGIN SELECT RAISE(ABORT, '{message}'); END"
    )
    connection.exec_driver_sql(
        f"CREATE TRIGGER IF NOT EXISTS {update_name} BEFORE UPDATE OF {stage} ON {table} "
        f"WHEN {condition} BEGIN SELECT RAISE(ABORT, '{message}'); END"
    )


def drop_stage_constraints(engine: Engine, columns: Sequence[StageColumn]) -> ConstraintReport:
    """Remove the guards (needed before rolling a run back to legacy values)."""
    report = ConstraintReport()
    for column in columns:
        name = constraint_name(column)
        with engine.begin() as connection:
            if is_postgresql(connection):
                if _postgresql_state(connection, column) is None:
                    continue
                preparer = connection.dialect.identifier_preparer
                connection.exec_driver_sql(
                    f"ALTER TABLE {preparer.format_table(column.table)} "
                    f"DROP CONSTRAINT IF EXISTS {preparer.quote(name)}"
                )
            else:
                if _sqlite_trigger_count(connection, column) == 0:
                    continue
                for trigger in sqlite_guard_triggers(column):
                    connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {trigger}")
        report.dropped.append(name)
    return report


def stage_guard_violation(exc: DBAPIError) -> bool:
    """Whether a database error is one of these guards refusing a value."""
    message = str(exc.orig)
    return "_canonical" in message or "must be a canonical stage" in message
