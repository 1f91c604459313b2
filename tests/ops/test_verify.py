from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, text

from fundmodel.db.tables import deal_opportunities, portfolio_companies
from fundmodel.ops import normalize as runner
from fundmodel.ops.connection import open_engine
from fundmodel.ops.constraints import add_stage_constraints
from fundmodel.ops.stage_columns import StageColumn, allocation_columns, stage_metadata
from fundmodel.ops.verify import IntegrityReport, run_integrity_checks
from tests.ops.legacy_data import seed_legacy
from tests.ops.test_normalize import apply


def check(report: IntegrityReport, name: str) -> Any:
    return next(c for c in report.checks if c.name == name)


def report_for(engine: Engine, columns: list[StageColumn]) -> IntegrityReport:
    return run_integrity_checks(engine, columns, allocation_columns(stage_metadata()))


def statuses(report: IntegrityReport) -> dict[str, str]:
    return {check.name: check.status for check in report.checks}


def test_legacy_data_fails_and_a_normalized_database_passes(
    engine: Engine, columns: list[StageColumn]
) -> None:
    seed_legacy(engine, companies=40, deals=10)
    before = report_for(engine, columns)
    assert not before.ok
    assert statuses(before)["portfolio_companies.stage_canonical"] == "fail"
    apply(engine, columns)
    after = report_for(engine, columns)
    assert after.ok, after.to_json()
    # Normalized but not yet guarded: the procedure verifies before `constrain-stages`, so a warning.
    assert {name: status for name, status in statuses(after).items() if status != "pass"} == {
        "stage_guard_present": "warn"
    }
    add_stage_constraints(engine, columns)
    assert set(statuses(report_for(engine, columns)).values()) == {"pass"}


def test_empty_stage_fails(engine: Engine, columns: list[StageColumn]) -> None:
    seed_legacy(engine, companies=5, deals=1, legacy_share=0)
    with engine.begin() as connection:
        connection.execute(text("UPDATE deal_opportunities SET stage = '  '"))
    assert statuses(report_for(engine, columns))["deal_opportunities.stage_present"] == "fail"


def test_tampered_audit_log_fails(engine: Engine, columns: list[StageColumn]) -> None:
    seed_legacy(engine, companies=40, deals=10)
    apply(engine, columns)
    with engine.begin() as connection:
        victim = connection.execute(text("SELECT min(id) FROM stage_normalization_audit")).scalar()
        connection.execute(text("DELETE FROM stage_normalization_audit WHERE id = :id"), {"id": victim})
    report = report_for(engine, columns)
    assert statuses(report)["audit_matches_progress"] == "fail"
    assert not report.ok


def test_incomplete_run_fails_and_later_changes_only_warn(engine: Engine, columns: list[StageColumn]) -> None:
    seed_legacy(engine, companies=40, deals=10)
    result = apply(engine, columns)
    with engine.connect() as connection:
        row_id = connection.execute(
            text(
                "SELECT min(row_id) FROM stage_normalization_audit "
                "WHERE table_name = 'portfolio_companies' AND after_value <> 'late_stage'"
            )
        ).scalar_one()
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE portfolio_companies SET stage = 'late_stage' WHERE id = :id"),
            {"id": int(row_id)},
        )
    report = report_for(engine, columns)
    assert report.ok
    assert statuses(report)["audit_after_is_current"] == "warn"
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE stage_normalization_runs SET status = 'running' WHERE id = :id"),
            {"id": result.run_id},
        )
    assert statuses(report_for(engine, columns))["runs_complete"] == "fail"
    assert runner.find_incomplete_run(engine).id == result.run_id  # type: ignore[union-attr]


def test_non_canonical_allocation_keys_fail(engine: Engine, columns: list[StageColumn]) -> None:
    seed_legacy(engine, companies=2, deals=1, legacy_share=0)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO portfolio_strategies (name, stage_allocation) "
                """VALUES ('old', '{"Series A": 1.0}')"""
            )
        )
    report = report_for(engine, columns)
    assert statuses(report)["allocations_canonical"] == "fail"


def test_ordinary_inserts_and_deletes_during_and_after_a_run_do_not_fail_row_counts(
    engine: Engine, columns: list[StageColumn], database_url: str
) -> None:
    """`row_counts_unchanged` means "unchanged by runs": the application keeps writing meanwhile."""
    seed_legacy(engine, companies=60, deals=20)
    app = open_engine(database_url)

    def app_writes() -> None:
        with app.begin() as connection:
            fund_id = connection.execute(select(portfolio_companies.c.fund_id).limit(1)).scalar_one()
            connection.execute(
                insert(deal_opportunities).values(fund_id=fund_id, name="new deal", stage="seed")
            )
            oldest = (
                select(deal_opportunities.c.id).order_by(deal_opportunities.c.id).limit(1).scalar_subquery()
            )
            connection.execute(delete(deal_opportunities).where(deal_opportunities.c.id == oldest))
            connection.execute(
                insert(portfolio_companies).values(
                    fund_id=fund_id, name="new co", stage="growth", invested=1.0, reserve_allocation=1.0
                )
            )

    class WritesWhileRunning(runner.NullProgress):
        writes_left = 3  # bounded: a row inserted after every batch would keep the pass going for ever

        def advance(self, table: str, rows: int) -> None:
            if self.writes_left:
                self.writes_left -= 1
                app_writes()

    try:
        result = apply(engine, columns, batch_size=16, progress=WritesWhileRunning())
        app_writes()  # and after the run
    finally:
        app.dispose()
    run = runner.get_run(engine, result.run_id)
    assert run is not None
    assert run.row_counts_start != run.row_counts_end  # the table sizes did change meanwhile
    report = report_for(engine, columns)
    assert check(report, "row_counts_unchanged").status == "pass", report.to_json()
    assert report.ok, report.to_json()


def test_a_run_that_deletes_a_row_fails_row_counts(engine: Engine, columns: list[StageColumn]) -> None:
    """Still a real check: a batch whose own transaction removes a row is caught (both backends)."""
    seed_legacy(engine, companies=40, deals=10)
    deleted: list[int] = []

    def also_delete_the_first_company(connection: Connection, column: StageColumn) -> None:
        if not deleted and column.table_name == "portfolio_companies":
            victim = connection.execute(
                select(portfolio_companies.c.id).order_by(portfolio_companies.c.id).limit(1)
            ).scalar_one()
            connection.execute(delete(portfolio_companies).where(portfolio_companies.c.id == victim))
            deleted.append(victim)

    # The batch's write step (per backend) is where a buggy job would remove a row.
    class DeletingPostgreSQL(runner.PostgreSQLBackend):
        def apply_mapping(self, connection: Connection, column: StageColumn, *args: Any) -> Any:
            written = super().apply_mapping(connection, column, *args)
            also_delete_the_first_company(connection, column)
            return written

    class DeletingSQLite(runner.SQLiteBackend):
        def write_changes(self, connection: Connection, column: StageColumn, *args: Any) -> int:
            written = super().write_changes(connection, column, *args)
            also_delete_the_first_company(connection, column)
            return written

    backend = DeletingPostgreSQL() if engine.dialect.name == "postgresql" else DeletingSQLite()
    result = apply(engine, columns, batch_size=16, backend=backend)
    assert deleted
    report = report_for(engine, columns)
    row_counts = check(report, "row_counts_unchanged")
    assert row_counts.status == "fail"
    assert row_counts.data["runs"] == [result.run_id]
    assert row_counts.data["batches"][0]["rows_deleted"] == 1
    assert not report.ok


def test_guard_check_warns_while_missing_and_passes_once_added(
    engine: Engine, columns: list[StageColumn]
) -> None:
    seed_legacy(engine, companies=10, deals=3, legacy_share=0)
    guard = check(report_for(engine, columns), "stage_guard_present")
    assert guard.status == "warn"
    assert "no normalization run has completed" in guard.detail
    assert set(guard.data["guards"].values()) == {"absent"}
    with engine.begin() as connection:
        connection.execute(text("UPDATE portfolio_companies SET stage = 'Series A'"))
    result = apply(engine, columns)
    guard = check(report_for(engine, columns), "stage_guard_present")
    assert guard.status == "warn"
    assert f"normalized by run {result.run_id}" in guard.detail
    assert "constrain-stages" in guard.detail
    add_stage_constraints(engine, columns)
    guard = check(report_for(engine, columns), "stage_guard_present")
    assert guard.status == "pass"
    assert set(guard.data["guards"].values()) == {"validated"}
