from __future__ import annotations

import random
import threading

import pytest
from sqlalchemy import Engine, select, text, update

from fundmodel.db.tables import portfolio_companies
from fundmodel.errors import OperationRefusedError
from fundmodel.ops import normalize as runner
from fundmodel.ops.constraints import add_stage_constraints, drop_stage_constraints
from fundmodel.ops.planning import build_plan, classify_stage_value
from fundmodel.ops.stage_columns import (
    CANONICAL_VALUES,
    StageColumn,
    allocation_columns,
    stage_metadata,
)
from fundmodel.ops.verify import run_integrity_checks
from tests.ops.legacy_data import LEGACY, Seeded, audit_rows, current_values, seed_legacy


def apply(engine: Engine, columns: list[StageColumn], batch_size: int = 37) -> runner.RunResult:
    with engine.connect() as connection:
        plan = build_plan(connection, columns)
    options = runner.RunOptions(batch_size=batch_size)
    run_id = runner.create_run(engine, columns, plan, options, backup=None)
    return runner.execute_run(engine, columns, run_id, options)


def expected_final(seeded: Seeded, table: str) -> dict[int, str]:
    return {
        row_id: classify_stage_value(value)[1] or value for row_id, value in seeded.original(table).items()
    }


def verify_ok(engine: Engine, columns: list[StageColumn]) -> runner.RunResult | None:
    report = run_integrity_checks(engine, columns, allocation_columns(stage_metadata()))
    assert report.ok, report.to_json()
    return None


def test_apply_normalizes_every_row_once_with_one_audit_row_each(
    engine: Engine, columns: list[StageColumn]
) -> None:
    seeded = seed_legacy(engine, companies=250, deals=90)
    result = apply(engine, columns)
    assert result.status == "completed"
    assert result.rows_changed == seeded.expected_changes()
    for table in ("portfolio_companies", "deal_opportunities"):
        assert current_values(engine, table) == expected_final(seeded, table)
    audit = audit_rows(engine, result.run_id)
    assert len(audit) == seeded.expected_changes()
    for _run, table, row_id, before, after in audit:
        assert seeded.original(table)[int(row_id)] == before
        assert classify_stage_value(before) == ("change", after)
    verify_ok(engine, columns)


def test_second_apply_changes_nothing(engine: Engine, columns: list[StageColumn]) -> None:
    seed_legacy(engine, companies=80, deals=20)
    apply(engine, columns)
    with engine.connect() as connection:
        assert build_plan(connection, columns).rows_to_change == 0
    second = apply(engine, columns)
    assert second.rows_changed == 0
    assert audit_rows(engine, second.run_id) == []


def test_unknown_values_are_left_untouched(engine: Engine, columns: list[StageColumn]) -> None:
    seeded = seed_legacy(engine, companies=60, deals=10, unknown=3)
    result = apply(engine, columns)
    final = current_values(engine, "portfolio_companies")
    for row_id, value in seeded.companies.items():
        verdict, after = classify_stage_value(value)
        assert final[row_id] == (value if verdict == "unknown" else after)
    assert result.rows_unknown_seen == 3


def test_rollback_restores_before_values_and_refuses_rows_changed_since(
    engine: Engine, columns: list[StageColumn]
) -> None:
    seeded = seed_legacy(engine, companies=100, deals=30)
    run = apply(engine, columns)
    changed = sorted(
        (int(row[2]), row[4]) for row in audit_rows(engine, run.run_id) if row[1] == "portfolio_companies"
    )
    touched, audited_after = changed[0]
    later_value = "growth" if audited_after != "growth" else "seed"
    with engine.begin() as connection:
        connection.execute(
            update(portfolio_companies).where(portfolio_companies.c.id == touched).values(stage=later_value)
        )
    options = runner.RunOptions(batch_size=16)
    rollback_id = runner.create_rollback_run(engine, columns, run.run_id, options)
    result = runner.execute_rollback(engine, columns, rollback_id, options)
    assert [(r["table"], r["row_id"]) for r in result.refused] == [("portfolio_companies", str(touched))]
    assert result.rows_changed == seeded.expected_changes() - 1
    companies = current_values(engine, "portfolio_companies")
    assert companies[touched] == later_value
    assert {k: v for k, v in companies.items() if k != touched} == {
        k: v for k, v in seeded.companies.items() if k != touched
    }
    assert current_values(engine, "deal_opportunities") == seeded.deals
    assert runner.get_run(engine, run.run_id)["status"] == "rolled_back"  # type: ignore[index]
    with pytest.raises(OperationRefusedError, match="already rolled back"):
        runner.create_rollback_run(engine, columns, run.run_id, options)


def test_rollback_refuses_while_the_constraint_is_in_place(
    engine: Engine, columns: list[StageColumn]
) -> None:
    seed_legacy(engine, companies=30, deals=5)
    run = apply(engine, columns)
    add_stage_constraints(engine, columns)
    with pytest.raises(OperationRefusedError, match="constrain-stages --drop"):
        runner.create_rollback_run(engine, columns, run.run_id, runner.RunOptions())
    drop_stage_constraints(engine, columns)
    rollback_id = runner.create_rollback_run(engine, columns, run.run_id, runner.RunOptions())
    assert runner.execute_rollback(engine, columns, rollback_id, runner.RunOptions()).refused == []


def test_failed_run_resumes_from_its_last_committed_batch(engine: Engine, columns: list[StageColumn]) -> None:
    seeded = seed_legacy(engine, companies=200, deals=50)
    with engine.connect() as connection:
        plan = build_plan(connection, columns)
    options = runner.RunOptions(batch_size=20)
    run_id = runner.create_run(engine, columns, plan, options, backup=None)

    class BoomError(Exception):
        pass

    class StopAfter:
        calls = 0

        def start_table(self, table: str, total: int, done: int) -> None:
            return None

        def advance(self, table: str, rows: int) -> None:
            self.calls += 1
            if self.calls == 4:
                raise BoomError

    with pytest.raises(BoomError):
        runner.execute_run(engine, columns, run_id, options, progress=StopAfter())
    incomplete = runner.find_incomplete_run(engine)
    assert incomplete is not None
    assert incomplete["id"] == run_id
    result = runner.execute_run(engine, columns, run_id, options, resumed=True)
    assert result.rows_changed == seeded.expected_changes()
    assert len(audit_rows(engine, run_id)) == seeded.expected_changes()
    assert current_values(engine, "portfolio_companies") == expected_final(seeded, "portfolio_companies")
    verify_ok(engine, columns)


def test_concurrent_writer_is_never_overwritten_blindly(
    engine: Engine, columns: list[StageColumn], database_url: str
) -> None:
    seeded = seed_legacy(engine, companies=600, deals=10, seed=11)
    company_ids = sorted(seeded.companies)
    written: dict[int, list[str]] = {}
    stop = threading.Event()
    rng = random.Random(5)
    writer_engine = runner_engine(database_url)

    def writer() -> None:
        while not stop.is_set():
            row_id = rng.choice(company_ids)
            value = rng.choice([*LEGACY, "seed", "growth"])
            with writer_engine.begin() as connection:
                connection.execute(
                    update(portfolio_companies).where(portfolio_companies.c.id == row_id).values(stage=value)
                )
            written.setdefault(row_id, []).append(value)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        apply(engine, columns, batch_size=10)
    finally:
        stop.set()
        thread.join()
        writer_engine.dispose()
    assert written, "the writer never ran"
    final = current_values(engine, "portfolio_companies")
    audit = [row for row in audit_rows(engine) if row[1] == "portfolio_companies"]
    audited: dict[int, list[tuple[str, str]]] = {}
    for _run, _table, row_id, before, after in audit:
        audited.setdefault(int(row_id), []).append((before, after))
    for row_id, original in seeded.companies.items():
        held = [original, *written.get(row_id, [])]
        for before, after in audited.get(row_id, []):
            assert before in held  # the job only ever changed a value the row really held
            assert classify_stage_value(before) == ("change", after)
        if row_id in written:
            last = written[row_id][-1]
            # Either the writer's value survived, or the job normalized exactly that value.
            assert final[row_id] == last or (final[row_id], (last, final[row_id])) == (
                classify_stage_value(last)[1],
                audited[row_id][-1],
            )
        else:
            assert final[row_id] == (classify_stage_value(original)[1] or original)
    second = apply(engine, columns)
    assert second.status == "completed"
    with engine.connect() as connection:
        remaining = connection.execute(
            select(portfolio_companies.c.id).where(portfolio_companies.c.stage.not_in(CANONICAL_VALUES))
        ).all()
    assert remaining == []


def runner_engine(url: str) -> Engine:
    from fundmodel.ops.connection import open_engine

    return open_engine(url)


def test_counts_per_run_are_recorded(engine: Engine, columns: list[StageColumn]) -> None:
    seed_legacy(engine, companies=10, deals=4)
    result = apply(engine, columns)
    run = runner.get_run(engine, result.run_id)
    assert run is not None
    assert (
        run["row_counts_start"]
        == run["row_counts_end"]
        == {
            "portfolio_companies": 10,
            "deal_opportunities": 4,
        }
    )
    with engine.connect() as connection:
        statuses = connection.execute(text("SELECT DISTINCT status FROM stage_normalization_batches")).all()
    assert statuses == [("committed",)]
