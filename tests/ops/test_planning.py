from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from fundmodel.ops.planning import build_plan, classify_stage_value
from fundmodel.ops.stage_columns import CANONICAL_VALUES, StageColumn
from fundmodel.stages import normalize_stage
from tests.ops.legacy_data import current_values, seed_legacy


def test_whitespace_and_case_variants_need_a_change() -> None:
    assert classify_stage_value(" Seed ") == ("change", "seed")
    assert classify_stage_value("SEED") == ("change", "seed")
    assert classify_stage_value("series-c+") == ("change", "series_c")
    assert classify_stage_value("seed") == ("canonical", "seed")


def test_unknown_values_are_never_guessed() -> None:
    for value in ("mezzanine", "", "a", "pre", None, 42, "x" * 100):
        assert classify_stage_value(value) == ("unknown", None)


@given(st.one_of(st.text(max_size=40), st.sampled_from(CANONICAL_VALUES)))
def test_classification_agrees_with_the_stage_core(value: str) -> None:
    verdict, after = classify_stage_value(value)
    match = normalize_stage(value)
    if match.canonical is None:
        assert (verdict, after) == ("unknown", None)
    else:
        assert after == match.canonical.value
        assert (verdict == "canonical") == (value == after)
        assert (verdict == "canonical") == (value in CANONICAL_VALUES)


def test_plan_groups_by_value_lists_unknown_rows_and_changes_nothing(
    engine: Engine, columns: list[StageColumn]
) -> None:
    seeded = seed_legacy(engine, companies=120, deals=40, unknown=3)
    with engine.connect() as connection:
        plan = build_plan(connection, columns)
    assert current_values(engine, "portfolio_companies") == seeded.companies
    companies = plan.table("portfolio_companies")
    assert companies.total_rows == 120
    expected_changes: dict[str, int] = {}
    expected_unknown: dict[str, list[int]] = {}
    for row_id, value in seeded.companies.items():
        verdict, _ = classify_stage_value(value)
        if verdict == "change":
            expected_changes[value] = expected_changes.get(value, 0) + 1
        elif verdict == "unknown":
            expected_unknown.setdefault(value, []).append(row_id)
    assert {c.before: c.rows for c in companies.changes} == expected_changes
    assert all(classify_stage_value(c.before)[1] == c.after for c in companies.changes)
    assert {u.value: sorted(int(i) for i in u.row_ids) for u in companies.unknown} == {
        value: sorted(ids) for value, ids in expected_unknown.items()
    }
    assert plan.rows_to_change + plan.unknown_rows + sum(t.canonical_rows for t in plan.tables) == 160
    document = plan.to_json()
    assert document["rows_to_change"] == plan.rows_to_change
    assert {t["table"] for t in document["tables"]} == {"portfolio_companies", "deal_opportunities"}


def test_allocation_issues_report_non_canonical_keys(engine: Engine) -> None:
    from fundmodel.ops.planning import allocation_issues
    from fundmodel.ops.stage_columns import allocation_columns, stage_metadata

    seed_legacy(engine, companies=1, deals=1)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO portfolio_strategies (name, stage_allocation) "
                """VALUES ('legacy', '{"Seed": 0.5, "series_a": 0.5}')"""
            )
        )
    with engine.connect() as connection:
        issues = allocation_issues(connection, allocation_columns(stage_metadata()))
    assert len(issues) == 1
    assert issues[0]["keys"] == ["Seed"]
