"""The normalization plan: per table, each distinct stage spelling and what it becomes.

Planning works per distinct value (a table holds few spellings), so it costs one grouped scan per
table, never a row list held in memory. Unknown values are listed with the rows they sit in and are
never guessed; an operator may map them to stages (``operator_map``, see
:mod:`fundmodel.ops.normalize.operator_map`), and a mapped value is planned as a change like a legacy
spelling, marked ``mapped``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Connection, func, select

from fundmodel.ops.stage_columns import StageColumn
from fundmodel.stages import normalize_stage

ValueVerdict = Literal["canonical", "change", "unknown"]

DEFAULT_MAX_LISTED_ROWS = 100


def classify_stage_value(value: object) -> tuple[ValueVerdict, str | None]:
    """Whether a stored value is already canonical, becomes a canonical value, or is unknown.

    A value needs a change whenever it is not exactly its canonical string (``" Seed "``, ``"SEED"``).
    """
    if not isinstance(value, str):
        return "unknown", None
    match = normalize_stage(value)
    if match.canonical is None:
        return "unknown", None
    canonical = match.canonical.value
    return ("canonical", canonical) if value == canonical else ("change", canonical)


@dataclass(frozen=True)
class ValueChange:
    before: str
    after: str
    rows: int
    # An unknown value the operator mapped (--map), not a spelling the taxonomy knows.
    mapped: bool = False


@dataclass(frozen=True)
class UnknownValue:
    value: str | None
    rows: int
    row_ids: tuple[str, ...]
    suggestions: tuple[str, ...] = ()


@dataclass(frozen=True)
class TablePlan:
    table: str
    column: str
    total_rows: int
    canonical_rows: int
    changes: tuple[ValueChange, ...]
    unknown: tuple[UnknownValue, ...]

    @property
    def rows_to_change(self) -> int:
        return sum(change.rows for change in self.changes)

    @property
    def unknown_rows(self) -> int:
        return sum(value.rows for value in self.unknown)

    def mapping(self) -> dict[str, str]:
        return {change.before: change.after for change in self.changes}


@dataclass(frozen=True)
class Plan:
    tables: tuple[TablePlan, ...]
    allocation_issues: tuple[dict[str, Any], ...] = field(default=())
    # The operator's --map (exact stored value -> canonical stage), stored with the run for its follow-ups.
    operator_map: Mapping[str, str] = field(default_factory=dict)

    @property
    def rows_to_change(self) -> int:
        return sum(table.rows_to_change for table in self.tables)

    @property
    def unknown_rows(self) -> int:
        return sum(table.unknown_rows for table in self.tables)

    @property
    def has_unknown(self) -> bool:
        return self.unknown_rows > 0

    def table(self, name: str) -> TablePlan:
        for table in self.tables:
            if table.table == name:
                return table
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        return {
            "rows_to_change": self.rows_to_change,
            "unknown_rows": self.unknown_rows,
            "tables": [
                {
                    "table": table.table,
                    "column": table.column,
                    "total_rows": table.total_rows,
                    "canonical_rows": table.canonical_rows,
                    "rows_to_change": table.rows_to_change,
                    "unknown_rows": table.unknown_rows,
                    "changes": [
                        {"before": c.before, "after": c.after, "rows": c.rows, "mapped": c.mapped}
                        for c in table.changes
                    ],
                    "unknown": [
                        {
                            "value": u.value,
                            "rows": u.rows,
                            "row_ids": list(u.row_ids),
                            "suggestions": list(u.suggestions),
                        }
                        for u in table.unknown
                    ],
                }
                for table in self.tables
            ],
            "allocation_issues": list(self.allocation_issues),
            "operator_map": dict(sorted(self.operator_map.items())),
        }


def _unknown_row_ids(
    connection: Connection, column: StageColumn, value: str | None, limit: int
) -> tuple[str, ...]:
    condition = column.column.is_(None) if value is None else column.column == value
    query = select(column.key).where(condition).order_by(column.key).limit(limit)
    return tuple(str(row_id) for row_id in connection.scalars(query))


def plan_table(
    connection: Connection,
    column: StageColumn,
    *,
    max_listed_rows: int = DEFAULT_MAX_LISTED_ROWS,
    operator_map: Mapping[str, str] | None = None,
) -> TablePlan:
    """Plan one stage column from a single grouped scan; unknown values in ``operator_map`` become changes."""
    operator_map = operator_map or {}
    counts = connection.execute(select(column.column, func.count()).group_by(column.column)).all()
    total = canonical_rows = 0
    changes: list[ValueChange] = []
    unknown: list[UnknownValue] = []
    for value, rows in counts:
        total += rows
        verdict, after = classify_stage_value(value)
        if verdict == "canonical":
            canonical_rows += rows
        elif verdict == "change":
            assert after is not None
            changes.append(ValueChange(before=value, after=after, rows=rows))
        elif isinstance(value, str) and value in operator_map:
            changes.append(ValueChange(before=value, after=operator_map[value], rows=rows, mapped=True))
        else:
            suggestions = (
                tuple(s.value for s in normalize_stage(value).suggestions) if isinstance(value, str) else ()
            )
            unknown.append(
                UnknownValue(
                    value=value,
                    rows=rows,
                    row_ids=_unknown_row_ids(connection, column, value, max_listed_rows),
                    suggestions=suggestions,
                )
            )
    changes.sort(key=lambda c: (c.after, c.before))
    unknown.sort(key=lambda u: (u.value is not None, u.value or ""))
    return TablePlan(
        table=column.table_name,
        column=column.column.name,
        total_rows=total,
        canonical_rows=canonical_rows,
        changes=tuple(changes),
        unknown=tuple(unknown),
    )


def allocation_issues(connection: Connection, columns: list[StageColumn]) -> list[dict[str, Any]]:
    """Stored allocations whose keys are not exactly canonical (the API stores them canonical)."""
    issues: list[dict[str, Any]] = []
    for column in columns:
        for row_id, allocation in connection.execute(select(column.key, column.column).order_by(column.key)):
            if isinstance(allocation, str):  # some drivers hand JSON back as text
                try:
                    allocation = json.loads(allocation)
                except ValueError:
                    allocation = None
            if not isinstance(allocation, dict):
                issues.append({"table": column.table_name, "row_id": str(row_id), "problem": "not an object"})
                continue
            bad = sorted(key for key in allocation if classify_stage_value(key)[0] != "canonical")
            if bad:
                issues.append(
                    {
                        "table": column.table_name,
                        "row_id": str(row_id),
                        "problem": "non-canonical keys",
                        "keys": bad,
                    }
                )
    return issues


def build_plan(
    connection: Connection,
    columns: list[StageColumn],
    allocations: Sequence[StageColumn] = (),
    *,
    max_listed_rows: int = DEFAULT_MAX_LISTED_ROWS,
    operator_map: Mapping[str, str] | None = None,
) -> Plan:
    """Plan every stage column; read-only."""
    operator_map = dict(operator_map or {})
    return Plan(
        tables=tuple(
            plan_table(connection, column, max_listed_rows=max_listed_rows, operator_map=operator_map)
            for column in columns
        ),
        allocation_issues=tuple(allocation_issues(connection, list(allocations))),
        operator_map=operator_map,
    )
