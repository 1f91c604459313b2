"""`normalize-stages --map`: the operator's mapping of unknown stored values, planned, applied, resumed and
rolled back like any change, on both databases."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, update

from fundmodel.db.tables import portfolio_companies
from fundmodel.errors import InvalidInputError, OperationRefusedError
from fundmodel.ops import normalize as runner
from fundmodel.ops.constraints import add_stage_constraints, drop_stage_constraints, normalize_first_hint
from fundmodel.ops.normalize.operator_map import OperatorMap, require_every_source_stored
from fundmodel.ops.planning import build_plan, classify_stage_value
from fundmodel.ops.stage_columns import CANONICAL_VALUES, StageColumn, allocation_columns, stage_metadata
from fundmodel.ops.verify import run_integrity_checks
from tests.ops.legacy_data import audit_rows, current_values, seed_legacy

ACTOR = "pytest-operator"


def test_parse_takes_exact_sources_and_canonical_targets() -> None:
    parsed = OperatorMap.parse(["mezzanine=series_b", " Mezz =series_c", "=seed", "a=b=seed"])
    assert parsed.to_json() == {"": "seed", " Mezz ": "series_c", "a=b": "seed", "mezzanine": "series_b"}
    assert OperatorMap.parse(["x=seed", "x=seed"]).to_json() == {"x": "seed"}
    assert not OperatorMap.parse([])
    assert OperatorMap.from_json(parsed.to_json()) == parsed
    assert OperatorMap.from_json(None).to_json() == {}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("mezzanine", "is not SOURCE=STAGE"),
        ("mezzanine=Series B", "is not a canonical stage"),
        ("mezzanine=", "is not a canonical stage"),
        ("Series A=series_b", "known spelling of series_a"),
        ("seed=series_b", "known spelling of seed"),
    ],
)
def test_parse_refuses_what_would_be_a_guess_or_a_typo(spec: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message) as refused:
        OperatorMap.parse([spec])
    assert refused.value.field == "--map"


def test_one_source_cannot_name_two_stages() -> None:
    with pytest.raises(InvalidInputError, match="two stages"):
        OperatorMap.parse(["mezzanine=series_b", "mezzanine=series_c"])


@given(
    st.text(min_size=0, max_size=30).filter(lambda value: classify_stage_value(value)[0] == "unknown"),
    st.sampled_from(CANONICAL_VALUES),
)
def test_every_unknown_value_can_be_mapped_to_every_stage(source: str, target: str) -> None:
    assert OperatorMap.parse([f"{source}={target}"]).targets == {source: target}


def _plan(engine: Engine, columns: list[StageColumn], operator_map: OperatorMap) -> runner.RunResult:
    with engine.connect() as connection:
        plan = build_plan(connection, columns, operator_map=operator_map.targets)
    require_every_source_stored(plan, operator_map)
    options = runner.RunOptions(batch_size=7, actor=ACTOR)
    run_id = runner.create_run(engine, columns, plan, options, backup=None)
    return runner.normalize_to_completion(engine, columns, run_id, options, backup=None)


def test_a_plan_with_a_map_turns_those_unknown_values_into_marked_changes(
    engine: Engine, columns: list[StageColumn]
) -> None:
    seed_legacy(engine, companies=40, deals=5, unknown=4)  # mezzanine, "", pre, a
    operator_map = OperatorMap.parse(["mezzanine=series_b", "pre=pre_seed"])
    with engine.connect() as connection:
        plan = build_plan(connection, columns, operator_map=operator_map.targets)
    mapped = {(c.before, c.after, c.rows) for t in plan.tables for c in t.changes if c.mapped}
    assert mapped == {("mezzanine", "series_b", 1), ("pre", "pre_seed", 1)}
    assert {u.value for t in plan.tables for u in t.unknown} == {"", "a"}
    document = plan.to_json()
    assert document["operator_map"] == {"mezzanine": "series_b", "pre": "pre_seed"}
    assert any(c["mapped"] for t in document["tables"] for c in t["changes"])
    typo = OperatorMap.parse(["mezzanin=seed", "mezzanine=seed"])
    with engine.connect() as connection:
        typo_plan = build_plan(connection, columns, operator_map=typo.targets)
    with pytest.raises(InvalidInputError, match=r"no stage column holds: 'mezzanin'; .*'a', 'mezzanine'"):
        require_every_source_stored(typo_plan, typo)


def test_mapped_values_are_audited_verified_guarded_and_rolled_back(
    engine: Engine, columns: list[StageColumn]
) -> None:
    seeded = seed_legacy(engine, companies=60, deals=10, unknown=4)
    operator_map = OperatorMap.parse(["mezzanine=series_b", "=seed", "pre=pre_seed", "a=series_a"])
    result = _plan(engine, columns, operator_map)
    assert result.rows_unknown_seen == 0
    final = current_values(engine, "portfolio_companies")
    assert set(final.values()) <= set(CANONICAL_VALUES)
    unknown_rows = {i: v for i, v in seeded.companies.items() if classify_stage_value(v)[0] == "unknown"}
    assert len(unknown_rows) == 4
    audited = {
        (int(row_id), before, after) for _r, table, row_id, before, after in audit_rows(engine, result.run_id)
    }
    for row_id, value in unknown_rows.items():
        assert final[row_id] == operator_map.targets[value]
        assert (row_id, value, operator_map.targets[value]) in audited
    report = run_integrity_checks(engine, columns, allocation_columns(stage_metadata()))
    assert report.ok, report.to_json()
    assert add_stage_constraints(engine, columns).added  # nothing left for the guard to refuse
    with pytest.raises(OperationRefusedError, match="constrain-stages --drop"):
        runner.create_rollback_run(engine, columns, result.run_id, runner.RunOptions(actor=ACTOR))
    drop_stage_constraints(engine, columns)
    rollback_id = runner.create_rollback_run(engine, columns, result.run_id, runner.RunOptions(actor=ACTOR))
    rolled_back = runner.execute_rollback(engine, columns, rollback_id, runner.RunOptions(actor=ACTOR))
    assert rolled_back.refused == []
    restored = current_values(engine, "portfolio_companies")
    for row_id, value in unknown_rows.items():
        assert restored[row_id] == value
    assert restored == seeded.companies


def test_an_interrupted_mapped_run_resumes_with_its_map(engine: Engine, columns: list[StageColumn]) -> None:
    seeded = seed_legacy(engine, companies=120, deals=10, unknown=2)
    operator_map = OperatorMap.parse(["mezzanine=series_b", "=seed"])
    with engine.connect() as connection:
        plan = build_plan(connection, columns, operator_map=operator_map.targets)
    options = runner.RunOptions(batch_size=10, actor=ACTOR)
    run_id = runner.create_run(engine, columns, plan, options, backup=None)

    class StopAfterTwoBatches:
        calls = 0

        def start_table(self, table: str, total: int, done: int) -> None:
            return None

        def advance(self, table: str, rows: int) -> None:
            self.calls += 1
            if self.calls == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runner.execute_run(engine, columns, run_id, options, progress=StopAfterTwoBatches())
    unfinished = runner.find_incomplete_run(engine)
    assert unfinished is not None
    assert unfinished.id == run_id
    assert unfinished.plan["operator_map"] == {"": "seed", "mezzanine": "series_b"}
    # A writer stores the mapped value again meanwhile: the follow-up run maps it too.
    with engine.begin() as connection:
        first_id = min(seeded.companies)
        connection.execute(
            update(portfolio_companies).where(portfolio_companies.c.id == first_id).values(stage="mezzanine")
        )
    result = runner.normalize_to_completion(engine, columns, run_id, options, backup=None, resumed=True)
    assert result.status == "completed"
    final = current_values(engine, "portfolio_companies")
    assert set(final.values()) <= set(CANONICAL_VALUES)
    assert final[first_id] == "series_b"


def test_the_constrain_hint_names_each_unknown_value_as_a_map_item() -> None:
    hint = normalize_first_hint(["Series A", "mezzanine", "bridge round"])
    assert "`fundmodel db normalize-stages --apply` for the known legacy spellings" in hint
    assert "--map 'mezzanine=STAGE'" in hint
    assert "--map 'bridge round=STAGE'" in hint
    assert "values 'mezzanine', 'bridge round'," in hint
    assert "series_a" in hint  # the stages to choose from
    only_known = normalize_first_hint(["Series A"])
    assert "--map" not in only_known
    many = normalize_first_hint([f"x{i}" for i in range(8)])
    assert many.count("--map") == 5
    assert "(and 3 more)" in many


def test_constrain_stages_refusal_points_to_map(engine: Engine, columns: list[StageColumn]) -> None:
    seed_legacy(engine, companies=20, deals=2, unknown=1)
    with pytest.raises(OperationRefusedError) as refused:
        add_stage_constraints(engine, columns)
    assert "--map 'mezzanine=STAGE'" in refused.value.detail
