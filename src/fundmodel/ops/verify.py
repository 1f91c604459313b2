"""The integrity report: stored stages, the audit log and run bookkeeping agree with each other."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Connection, Engine, and_, cast, func, or_, select

from fundmodel.db.normalization_tables import (
    stage_normalization_audit as audit_table,
)
from fundmodel.db.normalization_tables import (
    stage_normalization_batches as batches_table,
)
from fundmodel.db.normalization_tables import (
    stage_normalization_runs as runs_table,
)
from fundmodel.ops.constraints import GUARD_VALIDATED, guard_states
from fundmodel.ops.normalize import COMMITTED_BATCH, COMPLETED, FAILED, KIND_NORMALIZE, RUNNING, resume_hint
from fundmodel.ops.planning import allocation_issues
from fundmodel.ops.stage_columns import CANONICAL_VALUES, StageColumn

CheckStatus = Literal["pass", "fail", "warn"]
_SAMPLE = 20


@dataclass
class Check:
    name: str
    status: CheckStatus
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class IntegrityReport:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.status != "fail" for check in self.checks)

    def add(self, name: str, failures: int, ok_detail: str, fail_detail: str, **data: Any) -> None:
        self.checks.append(
            Check(name, "fail" if failures else "pass", fail_detail if failures else ok_detail, data)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checks": [
                {
                    "name": c.name,
                    "status": c.status,
                    "detail": c.detail,
                    **({"data": c.data} if c.data else {}),
                }
                for c in self.checks
            ],
        }


def _sample_ids(connection: Connection, column: StageColumn, condition: Any) -> list[str]:
    query = select(column.key).where(condition).order_by(column.key).limit(_SAMPLE)
    return [str(key) for key in connection.scalars(query)]


def _check_stage_values(
    connection: Connection, columns: Sequence[StageColumn], report: IntegrityReport
) -> None:
    for column in columns:
        value = column.column
        not_canonical = and_(value.is_not(None), func.trim(value) != "", value.not_in(CANONICAL_VALUES))
        bad = connection.execute(select(func.count()).where(not_canonical)).scalar_one()
        report.add(
            f"{column.table_name}.stage_canonical",
            bad,
            "every stage is canonical",
            f"{bad} rows hold a non-canonical stage",
            **({"row_ids": _sample_ids(connection, column, not_canonical)} if bad else {}),
        )
        missing = or_(value.is_(None), func.trim(value) == "")
        empty = connection.execute(select(func.count()).where(missing)).scalar_one()
        report.add(
            f"{column.table_name}.stage_present",
            empty,
            "no NULL or empty stage",
            f"{empty} rows have a NULL or empty stage",
            **({"row_ids": _sample_ids(connection, column, missing)} if empty else {}),
        )


def _check_runs(connection: Connection, report: IntegrityReport) -> None:
    unfinished = connection.execute(
        select(runs_table.c.id, runs_table.c.kind, runs_table.c.status, runs_table.c.target_run_id).where(
            runs_table.c.status.in_((RUNNING, FAILED))
        )
    ).all()
    hints = sorted({f"`{resume_hint(run.kind, run.target_run_id)}`" for run in unfinished}) or [
        "`fundmodel db normalize-stages --resume`"
    ]
    open_batches = connection.execute(
        select(batches_table.c.run_id, batches_table.c.table_name, batches_table.c.batch_no).where(
            batches_table.c.status != COMMITTED_BATCH
        )
    ).all()
    report.add(
        "runs_complete",
        len(unfinished) + len(open_batches),
        "no incomplete run or batch",
        f"{len(unfinished)} incomplete runs, {len(open_batches)} incomplete batches "
        f"(finish them with {' / '.join(hints)})",
        **(
            {
                "runs": [{"run_id": r.id, "kind": r.kind, "status": r.status} for r in unfinished],
                "batches": [
                    {"run_id": b.run_id, "table": b.table_name, "batch_no": b.batch_no}
                    for b in open_batches[:_SAMPLE]
                ],
            }
            if unfinished or open_batches
            else {}
        ),
    )
    _check_row_effects(connection, report)


def _check_row_effects(connection: Connection, report: IntegrityReport) -> None:
    """Row counts unchanged *by runs*: every committed batch recorded what its own transaction did to
    its table's row count (the job only updates, so 0 inserted and 0 deleted). Ordinary inserts and
    deletes by the application during or after a run are not the run's doing and never count here."""
    offending = connection.execute(
        select(
            batches_table.c.run_id,
            batches_table.c.table_name,
            batches_table.c.batch_no,
            batches_table.c.rows_inserted,
            batches_table.c.rows_deleted,
        )
        .where(
            batches_table.c.status == COMMITTED_BATCH,
            or_(batches_table.c.rows_inserted != 0, batches_table.c.rows_deleted != 0),
        )
        .order_by(batches_table.c.run_id, batches_table.c.table_name, batches_table.c.batch_no)
    ).all()
    unmeasured = connection.execute(
        select(func.count()).where(
            batches_table.c.status == COMMITTED_BATCH,
            or_(batches_table.c.rows_inserted.is_(None), batches_table.c.rows_deleted.is_(None)),
        )
    ).scalar_one()
    runs = sorted({row.run_id for row in offending})
    ok_detail = "no run inserted or deleted a row (every batch only updated)"
    if unmeasured:
        ok_detail += f"; {unmeasured} batches from before revision 0004 were not measured"
    report.add(
        "row_counts_unchanged",
        len(offending),
        ok_detail,
        f"{len(runs)} runs inserted or deleted rows themselves "
        f"({sum(row.rows_inserted or 0 for row in offending)} inserted, "
        f"{sum(row.rows_deleted or 0 for row in offending)} deleted)",
        **(
            {
                "runs": runs,
                "batches": [
                    {
                        "run_id": row.run_id,
                        "table": row.table_name,
                        "batch_no": row.batch_no,
                        "rows_inserted": row.rows_inserted,
                        "rows_deleted": row.rows_deleted,
                    }
                    for row in offending[:_SAMPLE]
                ],
            }
            if offending
            else {}
        ),
    )


def _check_stage_guard(
    connection: Connection, columns: Sequence[StageColumn], report: IntegrityReport
) -> None:
    """Whether the canonical-stage guard (CHECK constraint / SQLite triggers) is in place.

    A warning, never a failure, when it is not: the documented procedure runs `verify` after the apply
    and before `constrain-stages`, and a restore of a backup older than the guard legitimately brings
    back a database without it. The detail says which of the two it probably is.
    """
    states = guard_states(connection, columns)
    missing = {name: state for name, state in states.items() if state != GUARD_VALIDATED}
    if not missing:
        report.checks.append(
            Check("stage_guard_present", "pass", "the canonical-stage guard is in place", {"guards": states})
        )
        return
    normalized_by = connection.execute(
        select(runs_table.c.id)
        .where(runs_table.c.kind == KIND_NORMALIZE, runs_table.c.status == COMPLETED)
        .order_by(runs_table.c.finished_at.desc())
        .limit(1)
    ).scalar()
    described = ", ".join(f"{name} {state.replace('_', ' ')}" for name, state in sorted(missing.items()))
    context = (
        f"stages were normalized by run {normalized_by} but nothing keeps legacy values out "
        "(not added yet, or restored from a backup older than it)"
        if normalized_by
        else "no normalization run has completed"
    )
    report.checks.append(
        Check(
            "stage_guard_present",
            "warn",
            f"{described}: {context}; add it with `fundmodel db constrain-stages`",
            {"guards": states, **({"normalized_by": normalized_by} if normalized_by else {})},
        )
    )


def _check_audit(connection: Connection, columns: Sequence[StageColumn], report: IntegrityReport) -> None:
    duplicates = connection.execute(
        select(audit_table.c.run_id, audit_table.c.table_name, audit_table.c.row_id)
        .group_by(audit_table.c.run_id, audit_table.c.table_name, audit_table.c.row_id)
        .having(func.count() > 1)
        .limit(_SAMPLE)
    ).all()
    report.add(
        "audit_one_row_per_change",
        len(duplicates),
        "every changed row has exactly one audit row per run",
        "rows with more than one audit row in the same run",
        **({"rows": [list(map(str, d)) for d in duplicates]} if duplicates else {}),
    )
    per_batch = (
        select(
            audit_table.c.run_id,
            audit_table.c.table_name,
            audit_table.c.batch_no,
            func.count().label("n"),
        )
        .group_by(audit_table.c.run_id, audit_table.c.table_name, audit_table.c.batch_no)
        .subquery()
    )
    mismatched_batches = connection.execute(
        select(batches_table.c.run_id, batches_table.c.table_name, batches_table.c.batch_no)
        .select_from(
            batches_table.outerjoin(
                per_batch,
                and_(
                    per_batch.c.run_id == batches_table.c.run_id,
                    per_batch.c.table_name == batches_table.c.table_name,
                    per_batch.c.batch_no == batches_table.c.batch_no,
                ),
            )
        )
        .where(
            batches_table.c.status == COMMITTED_BATCH,
            func.coalesce(per_batch.c.n, 0) != batches_table.c.rows_changed,
        )
        .limit(_SAMPLE)
    ).all()
    orphan_audit = connection.execute(
        select(func.count())
        .select_from(
            audit_table.outerjoin(
                batches_table,
                and_(
                    batches_table.c.run_id == audit_table.c.run_id,
                    batches_table.c.table_name == audit_table.c.table_name,
                    batches_table.c.batch_no == audit_table.c.batch_no,
                ),
            )
        )
        .where(or_(batches_table.c.run_id.is_(None), batches_table.c.status != COMMITTED_BATCH))
    ).scalar_one()
    per_run = select(audit_table.c.run_id, func.count().label("n")).group_by(audit_table.c.run_id).subquery()
    mismatched_runs = (
        connection.execute(
            select(runs_table.c.id)
            .select_from(runs_table.outerjoin(per_run, per_run.c.run_id == runs_table.c.id))
            .where(func.coalesce(per_run.c.n, 0) != runs_table.c.rows_changed)
        )
        .scalars()
        .all()
    )
    report.add(
        "audit_matches_progress",
        len(mismatched_batches) + len(mismatched_runs) + int(orphan_audit),
        "audit rows match the committed batches and run totals",
        "audit rows disagree with batch or run progress",
        **(
            {
                "batches": [list(map(str, b)) for b in mismatched_batches],
                "runs": list(mismatched_runs),
                "audit_rows_outside_committed_batches": int(orphan_audit),
            }
            if mismatched_batches or mismatched_runs or orphan_audit
            else {}
        ),
    )
    changed_since: list[dict[str, Any]] = []
    changed_total = 0
    for column in columns:
        latest = (
            select(func.max(audit_table.c.id).label("id"))
            .where(audit_table.c.table_name == column.table_name)
            .group_by(audit_table.c.row_id)
            .subquery()
        )
        joined = audit_table.join(latest, latest.c.id == audit_table.c.id).outerjoin(
            column.table, column.key == cast(audit_table.c.row_id, column.key.type)
        )
        differs = or_(column.key.is_(None), column.column.is_distinct_from(audit_table.c.after_value))
        count = connection.execute(select(func.count()).select_from(joined).where(differs)).scalar_one()
        changed_total += int(count)
        if count:
            for row in connection.execute(
                select(audit_table.c.row_id, audit_table.c.after_value, column.column)
                .select_from(joined)
                .where(differs)
                .limit(_SAMPLE)
            ):
                changed_since.append(
                    {
                        "table": column.table_name,
                        "row_id": row[0],
                        "audit_after": row[1],
                        "current": row[2],
                    }
                )
    report.checks.append(
        Check(
            "audit_after_is_current",
            "warn" if changed_total else "pass",
            (
                f"{changed_total} audited rows changed or vanished after their last audited change "
                "(by writers outside this job)"
                if changed_total
                else "every audited row still holds its last audited value"
            ),
            {"rows": changed_since} if changed_since else {},
        )
    )


def run_integrity_checks(
    engine: Engine, columns: Sequence[StageColumn], allocations: Sequence[StageColumn]
) -> IntegrityReport:
    """Every check, read-only; ``report.ok`` is False when any check fails."""
    report = IntegrityReport()
    with engine.connect() as connection:
        _check_stage_values(connection, columns, report)
        issues = allocation_issues(connection, list(allocations))
        report.add(
            "allocations_canonical",
            len(issues),
            "every stored stage allocation uses canonical keys",
            f"{len(issues)} stored allocations use non-canonical keys",
            **({"rows": issues[:_SAMPLE]} if issues else {}),
        )
        _check_runs(connection, report)
        _check_audit(connection, columns, report)
        _check_stage_guard(connection, columns, report)
    return report
