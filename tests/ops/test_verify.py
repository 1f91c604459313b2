from __future__ import annotations

from sqlalchemy import Engine, text

from fundmodel.ops import normalize as runner
from fundmodel.ops.stage_columns import StageColumn, allocation_columns, stage_metadata
from fundmodel.ops.verify import IntegrityReport, run_integrity_checks
from tests.ops.legacy_data import seed_legacy
from tests.ops.test_normalize import apply


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
    assert set(statuses(after).values()) == {"pass"}


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
    assert runner.find_incomplete_run(engine)["id"] == result.run_id  # type: ignore[index]


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
