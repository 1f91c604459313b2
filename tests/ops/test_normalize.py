from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event, func, select, text, update

from fundmodel.db.tables import portfolio_companies
from fundmodel.errors import InvalidInputError, OperationRefusedError
from fundmodel.ops import normalize as runner
from fundmodel.ops.constraints import add_stage_constraints, constraints_present, drop_stage_constraints
from fundmodel.ops.planning import build_plan, classify_stage_value
from fundmodel.ops.stage_columns import (
    CANONICAL_VALUES,
    StageColumn,
    allocation_columns,
    stage_metadata,
)
from fundmodel.ops.verify import run_integrity_checks
from tests.ops.legacy_data import LEGACY, Seeded, audit_rows, current_values, seed_legacy

TEST_ACTOR = "pytest-operator"


def apply(
    engine: Engine,
    columns: list[StageColumn],
    batch_size: int = 37,
    progress: runner.Progress | None = None,
    *,
    backend: runner.NormalizationBackend | None = None,
    max_follow_up_runs: int = runner.MAX_FOLLOW_UP_RUNS,
) -> runner.RunResult:
    """What `normalize-stages --apply` does after its gates: one run plus any follow-up runs."""
    with engine.connect() as connection:
        plan = build_plan(connection, columns)
    options = runner.RunOptions(batch_size=batch_size, actor=TEST_ACTOR)
    run_id = runner.create_run(engine, columns, plan, options, backup=None)
    return runner.normalize_to_completion(
        engine,
        columns,
        run_id,
        options,
        backup=None,
        progress=progress,
        backend=backend,
        max_follow_up_runs=max_follow_up_runs,
    )


@pytest.mark.parametrize("actor", [None, "", "   "])
def test_a_run_without_an_actor_is_refused_before_anything_is_recorded(
    engine: Engine, columns: list[StageColumn], actor: str | None
) -> None:
    seed_legacy(engine, companies=5, deals=2)
    with engine.connect() as connection:
        plan = build_plan(connection, columns)
    with pytest.raises(InvalidInputError, match="needs an actor"):
        runner.create_run(engine, columns, plan, runner.RunOptions(actor=actor), backup=None)
    assert runner.find_incomplete_run(engine) is None
    run = apply(engine, columns)
    with pytest.raises(InvalidInputError, match="needs an actor"):
        runner.create_rollback_run(engine, columns, run.run_id, runner.RunOptions(actor=actor))
    assert runner.get_run(engine, run.run_id).actor == TEST_ACTOR  # type: ignore[union-attr]


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
    options = runner.RunOptions(batch_size=16, actor=TEST_ACTOR)
    rollback_id = runner.create_rollback_run(engine, columns, run.run_id, options)
    result = runner.execute_rollback(engine, columns, rollback_id, options)
    assert [(r.table, r.row_id) for r in result.refused] == [("portfolio_companies", str(touched))]
    assert result.rows_unknown_seen == 0  # a refused row is listed as such, not counted as unknown
    assert result.rows_changed == seeded.expected_changes() - 1
    companies = current_values(engine, "portfolio_companies")
    assert companies[touched] == later_value
    assert {k: v for k, v in companies.items() if k != touched} == {
        k: v for k, v in seeded.companies.items() if k != touched
    }
    assert current_values(engine, "deal_opportunities") == seeded.deals
    assert runner.get_run(engine, run.run_id).status == "rolled_back"  # type: ignore[union-attr]
    with pytest.raises(OperationRefusedError, match="already rolled back"):
        runner.create_rollback_run(engine, columns, run.run_id, options)


def test_rollback_refuses_while_the_constraint_is_in_place(
    engine: Engine, columns: list[StageColumn]
) -> None:
    seed_legacy(engine, companies=30, deals=5)
    run = apply(engine, columns)
    add_stage_constraints(engine, columns)
    with pytest.raises(OperationRefusedError, match="constrain-stages --drop"):
        runner.create_rollback_run(engine, columns, run.run_id, runner.RunOptions(actor=TEST_ACTOR))
    drop_stage_constraints(engine, columns)
    rollback_id = runner.create_rollback_run(engine, columns, run.run_id, runner.RunOptions(actor=TEST_ACTOR))
    assert (
        runner.execute_rollback(engine, columns, rollback_id, runner.RunOptions(actor=TEST_ACTOR)).refused
        == []
    )


def test_failed_run_resumes_from_its_last_committed_batch(engine: Engine, columns: list[StageColumn]) -> None:
    seeded = seed_legacy(engine, companies=200, deals=50)
    with engine.connect() as connection:
        plan = build_plan(connection, columns)
    options = runner.RunOptions(batch_size=20, actor=TEST_ACTOR)
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
    assert incomplete.id == run_id
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

    class StopWriterAfterCompanies(runner.NullProgress):
        """The writer works on companies while the run goes through them, then stops for good, so
        everything it wrote is the run's to normalize (writes after a run are the next run's)."""

        def start_table(self, table: str, total: int, done: int) -> None:
            if table != "portfolio_companies":
                stop.set()
                thread.join()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        result = apply(engine, columns, batch_size=10, progress=StopWriterAfterCompanies())
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
            # The writer's last value survived when canonical, or the job normalized exactly that value.
            assert final[row_id] == last or (final[row_id], (last, final[row_id])) == (
                classify_stage_value(last)[1],
                audited[row_id][-1],
            )
        else:
            assert final[row_id] == (classify_stage_value(original)[1] or original)
    # One apply suffices: rows the writer changed between a batch's survey and its lock are re-planned
    # in that batch, and legacy values it put behind the cursor get a follow-up run.
    assert result.status == "completed"
    assert result.non_canonical_left == []
    with engine.connect() as connection:
        remaining = connection.execute(
            select(portfolio_companies.c.id).where(portfolio_companies.c.stage.not_in(CANONICAL_VALUES))
        ).all()
    assert remaining == []
    verify_ok(engine, columns)


def runner_engine(url: str) -> Engine:
    from fundmodel.ops.connection import open_engine

    return open_engine(url)


def test_counts_per_run_are_recorded(engine: Engine, columns: list[StageColumn]) -> None:
    seed_legacy(engine, companies=10, deals=4)
    result = apply(engine, columns)
    run = runner.get_run(engine, result.run_id)
    assert run is not None
    assert (
        run.row_counts_start
        == run.row_counts_end
        == {
            "portfolio_companies": 10,
            "deal_opportunities": 4,
        }
    )
    with engine.connect() as connection:
        statuses = connection.execute(text("SELECT DISTINCT status FROM stage_normalization_batches")).all()
    assert statuses == [("committed",)]


class _FailAfter(runner.NullProgress):
    """Progress that raises after ``batches`` batches: a run interrupted mid-way."""

    def __init__(self, batches: int) -> None:
        self.left = batches

    def advance(self, table: str, rows: int) -> None:
        self.left -= 1
        if self.left == 0:
            raise _InterruptedError


class _InterruptedError(Exception):
    pass


def interrupted_rollback(engine: Engine, columns: list[StageColumn], target_run_id: str) -> str:
    """A rollback of ``target_run_id`` that failed after its first batch."""
    options = runner.RunOptions(batch_size=4, actor=TEST_ACTOR)
    rollback_id = runner.create_rollback_run(engine, columns, target_run_id, options)
    with pytest.raises(_InterruptedError):
        runner.execute_rollback(engine, columns, rollback_id, options, progress=_FailAfter(1))
    return rollback_id


def test_a_normalization_resume_never_continues_a_rollback(
    engine: Engine, columns: list[StageColumn]
) -> None:
    seed_legacy(engine, companies=40, deals=10)
    run = apply(engine, columns)
    rollback_id = interrupted_rollback(engine, columns, run.run_id)
    assert runner.find_incomplete_run(engine, runner.KIND_NORMALIZE) is None
    assert runner.find_incomplete_run(engine).id == rollback_id  # type: ignore[union-attr]
    with pytest.raises(OperationRefusedError, match=f"--rollback {run.run_id}"):
        runner.execute_run(engine, columns, rollback_id, runner.RunOptions(actor=TEST_ACTOR), resumed=True)
    # The rollback itself is continued by its own runner and finishes what it started.
    runner.execute_rollback(engine, columns, rollback_id, runner.RunOptions(actor=TEST_ACTOR), resumed=True)
    assert runner.get_run(engine, run.run_id).status == "rolled_back"  # type: ignore[union-attr]


def _half_guard(engine: Engine, columns: list[StageColumn]) -> None:
    """A guard that refuses new legacy values without being complete: PostgreSQL NOT VALID, or one of
    the two SQLite triggers."""
    if engine.dialect.name == "postgresql":
        canonical = ", ".join(f"'{value}'" for value in CANONICAL_VALUES)
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "ALTER TABLE portfolio_companies ADD CONSTRAINT ck_portfolio_companies_stage_canonical "
                f"CHECK (stage IN ({canonical})) NOT VALID"
            )
    else:
        canonical = ", ".join(f"'{value}'" for value in CANONICAL_VALUES)
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "CREATE TRIGGER trg_portfolio_companies_stage_canonical_update "
                "BEFORE UPDATE OF stage ON portfolio_companies "
                f"WHEN NEW.stage NOT IN ({canonical}) BEGIN SELECT RAISE(ABORT, 'not canonical'); END"
            )


def test_a_guard_not_fully_in_place_still_blocks_a_rollback(
    engine: Engine, columns: list[StageColumn]
) -> None:
    seed_legacy(engine, companies=30, deals=5)
    run = apply(engine, columns)
    _half_guard(engine, columns)
    assert constraints_present(engine, columns) == {
        "ck_portfolio_companies_stage_canonical": True,
        "ck_deal_opportunities_stage_canonical": False,
    }
    with pytest.raises(OperationRefusedError, match="constrain-stages --drop"):
        runner.create_rollback_run(engine, columns, run.run_id, runner.RunOptions(actor=TEST_ACTOR))
    drop_stage_constraints(engine, columns)
    assert not any(constraints_present(engine, columns).values())
    rollback_id = runner.create_rollback_run(engine, columns, run.run_id, runner.RunOptions(actor=TEST_ACTOR))
    assert (
        runner.execute_rollback(engine, columns, rollback_id, runner.RunOptions(actor=TEST_ACTOR)).refused
        == []
    )


def test_resuming_a_rollback_rechecks_the_guard(engine: Engine, columns: list[StageColumn]) -> None:
    seed_legacy(engine, companies=40, deals=10)
    run = apply(engine, columns)
    rollback_id = interrupted_rollback(engine, columns, run.run_id)
    _half_guard(engine, columns)
    # Refused up front, before any batch runs into the guard.
    with pytest.raises(OperationRefusedError, match="would refuse the old values"):
        runner.execute_rollback(
            engine, columns, rollback_id, runner.RunOptions(actor=TEST_ACTOR), resumed=True
        )


def test_rollback_completes_itself_and_its_target_in_one_transaction(
    engine: Engine, columns: list[StageColumn]
) -> None:
    seeded = seed_legacy(engine, companies=40, deals=10)
    run = apply(engine, columns)
    options = runner.RunOptions(batch_size=8, actor=TEST_ACTOR)
    rollback_id = runner.create_rollback_run(engine, columns, run.run_id, options)

    class CrashError(Exception):
        pass

    crashed: list[str] = []

    def crash_on_marking_the_target(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        values = list(params.values() if isinstance(params, dict) else params)
        if crashed or (statement.startswith("UPDATE stage_normalization_runs") and "rolled_back" in values):
            # The process dies right there (kill -9): nothing after it reaches the database, not even
            # the run's failure record.
            crashed.append(statement)
            raise CrashError

    event.listen(engine, "before_cursor_execute", crash_on_marking_the_target)
    try:
        with pytest.raises(CrashError):
            runner.execute_rollback(engine, columns, rollback_id, options)
    finally:
        event.remove(engine, "before_cursor_execute", crash_on_marking_the_target)
    # The target's status, then (at least) the failure record, which the dead process never writes.
    assert crashed[0].startswith("UPDATE stage_normalization_runs")
    assert len(crashed) >= 2, crashed
    # Neither status changed: the rollback is not complete while its target still looks un-rolled-back.
    assert runner.get_run(engine, rollback_id).status == "running"  # type: ignore[union-attr]
    assert runner.get_run(engine, run.run_id).status == "completed"  # type: ignore[union-attr]
    result = runner.execute_rollback(engine, columns, rollback_id, options, resumed=True)
    assert result.rows_changed == seeded.expected_changes()
    assert runner.get_run(engine, rollback_id).status == "completed"  # type: ignore[union-attr]
    assert runner.get_run(engine, run.run_id).status == "rolled_back"  # type: ignore[union-attr]
    assert current_values(engine, "portfolio_companies") == seeded.companies


def test_legacy_values_written_behind_the_cursor_get_a_follow_up_run(
    engine: Engine, columns: list[StageColumn], database_url: str
) -> None:
    seed_legacy(engine, companies=60, deals=10)
    before = current_values(engine, "portfolio_companies")
    normalized_first = min(k for k, v in before.items() if classify_stage_value(v)[0] == "change")
    canonical_first = min(k for k, v in before.items() if v in CANONICAL_VALUES)
    writer = runner_engine(database_url)

    class WriteBehindTheCursor(runner.NullProgress):
        """Once companies are done, a writer puts legacy values into rows the run already passed:
        one it normalized, one that was canonical."""

        fired = False

        def start_table(self, table: str, total: int, done: int) -> None:
            if table == "deal_opportunities" and not self.fired:
                self.fired = True
                with writer.begin() as connection:
                    for row_id, value in ((normalized_first, "Series A"), (canonical_first, "SEED")):
                        connection.execute(
                            update(portfolio_companies)
                            .where(portfolio_companies.c.id == row_id)
                            .values(stage=value)
                        )

    try:
        result = apply(engine, columns, progress=WriteBehindTheCursor())
    finally:
        writer.dispose()
    assert len(result.follow_up_runs) == 1
    assert result.non_canonical_left == []
    final = current_values(engine, "portfolio_companies")
    assert (final[normalized_first], final[canonical_first]) == ("series_a", "seed")
    follow_up = audit_rows(engine, result.follow_up_runs[0])
    assert sorted((int(r[2]), r[3], r[4]) for r in follow_up) == sorted(
        [(normalized_first, "Series A", "series_a"), (canonical_first, "SEED", "seed")]
    )
    verify_ok(engine, columns)


def test_legacy_values_left_after_the_last_follow_up_are_reported(
    engine: Engine, columns: list[StageColumn], database_url: str
) -> None:
    seed_legacy(engine, companies=30, deals=5)
    writer = runner_engine(database_url)

    class WriteOnce(runner.NullProgress):
        fired = False

        def start_table(self, table: str, total: int, done: int) -> None:
            if table == "deal_opportunities" and not self.fired:
                self.fired = True
                with writer.begin() as connection:
                    connection.execute(
                        update(portfolio_companies)
                        .where(
                            portfolio_companies.c.id
                            == select(func.min(portfolio_companies.c.id)).scalar_subquery()
                        )
                        .values(stage="Series B")
                    )

    try:
        result = apply(engine, columns, progress=WriteOnce(), max_follow_up_runs=0)
    finally:
        writer.dispose()
    assert result.follow_up_runs == []
    assert result.non_canonical_left == [
        runner.LegacyLeft(table="portfolio_companies", value="Series B", after="series_b", rows=1)
    ]


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
@pytest.mark.parametrize("timing", ["committed_before_the_lock", "committed_while_the_batch_waits"])
def test_postgresql_batch_replans_a_row_changed_between_survey_and_lock(
    engine: Engine,
    columns: list[StageColumn],
    database_url: str,
    timing: str,
) -> None:
    """The PostgreSQL batch surveys its range without locks; a row rewritten to another legacy spelling
    before the lock must be normalized in that batch, from the value it then holds. (SQLite has no such
    window: its batch takes the write lock before reading.)"""
    seed_legacy(engine, companies=40, deals=5, legacy_share=0.5)
    writer = runner_engine(database_url)
    victim: dict[str, Any] = {}
    committers: list[threading.Thread] = []

    class RewriteAfterTheSurvey(runner.PostgreSQLBackend):
        """The real backend, with a concurrent writer striking between a batch's survey and its lock."""

        def survey_range(
            self, connection: Connection, column: StageColumn, after_key: Any, batch_size: int
        ) -> tuple[int, Any, dict[str | None, int]]:
            scanned, last_key, present = super().survey_range(connection, column, after_key, batch_size)
            if not victim and column.table_name == "portfolio_companies" and len(present) >= 2:
                rewrite_a_surveyed_row(last_key, present)
            return scanned, last_key, present

    def rewrite_a_surveyed_row(last_key: Any, present: dict[str | None, int]) -> None:
        with writer.connect() as probe:
            row_id, value = probe.execute(
                select(portfolio_companies.c.id, portfolio_companies.c.stage)
                .where(
                    portfolio_companies.c.id <= last_key,
                    portfolio_companies.c.stage.not_in(CANONICAL_VALUES),
                )
                .order_by(portfolio_companies.c.id)
                .limit(1)
            ).one()
        if timing == "committed_before_the_lock":
            # A spelling the batch did not see at all.
            new_value = next(v for v in LEGACY if v not in present and classify_stage_value(v)[0] == "change")
        else:
            # A spelling the batch maps too, committed only once the batch's lock statement waits for it.
            new_value = next(v for v in present if v is not None and v != value)
        victim.update(row_id=row_id, value=new_value)
        holder = writer.connect()
        transaction = holder.begin()
        holder.execute(
            update(portfolio_companies).where(portfolio_companies.c.id == row_id).values(stage=new_value)
        )
        if timing == "committed_before_the_lock":
            transaction.commit()
            holder.close()
            return
        holder_pid = holder.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()

        def commit_once_the_batch_waits() -> None:
            # Commit only after the batch is seen blocked on this transaction's row lock, so this case
            # cannot silently turn into "committed before the lock".
            deadline = time.monotonic() + 10
            with writer.connect() as observer:
                while time.monotonic() < deadline:
                    blocked = observer.execute(
                        text("SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"),
                        {"pid": holder_pid},
                    ).scalar_one()
                    if blocked:
                        victim["batch_waited"] = True
                        break
                    time.sleep(0.01)
            transaction.commit()
            holder.close()

        committer = threading.Thread(target=commit_once_the_batch_waits)
        committers.append(committer)
        committer.start()

    try:
        result = apply(engine, columns, batch_size=10, backend=RewriteAfterTheSurvey())
    finally:
        for committer in committers:
            committer.join(timeout=30)
        writer.dispose()
    assert not any(committer.is_alive() for committer in committers)
    assert victim.get("batch_waited", False) == (timing == "committed_while_the_batch_waits"), victim
    assert victim, "the survey hook never fired"
    assert result.follow_up_runs == []  # handled inside the batch, not by a later run
    assert result.non_canonical_left == []
    final = current_values(engine, "portfolio_companies")
    assert final[victim["row_id"]] == classify_stage_value(victim["value"])[1]
    [entry] = [
        r
        for r in audit_rows(engine, result.run_id)
        if r[1:3] == ("portfolio_companies", str(victim["row_id"]))
    ]
    assert entry[3] == victim["value"]
    assert all(value in CANONICAL_VALUES for value in final.values())
    verify_ok(engine, columns)
