import math
from collections import OrderedDict
from types import MappingProxyType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fundmodel.stages import (
    MAX_ENTRIES,
    AliasUse,
    Merge,
    ProblemCode,
    Stage,
    parse_stage_distribution,
)
from fundmodel.stages.distribution import MALFORMED_CODES, WARNING_CODES, Scale
from fundmodel.stages.entry_parser import parse_entry_by_entry
from fundmodel.stages.key_plans import KeyPlans, key_plans

from .strategies import json_values


def test_canonical_distribution_is_ok_and_ordered() -> None:
    result = parse_stage_distribution({"series_a": 0.5, "seed": 0.3, "pre_seed": 0.2})
    assert result.ok
    assert result.problems == ()
    assert list(result.weights) == [Stage.PRE_SEED, Stage.SEED, Stage.SERIES_A]
    assert result.weights[Stage.SERIES_A] == 0.5
    assert result.total == pytest.approx(1.0)


def test_aliases_are_normalized_and_reported_as_deprecated_but_ok() -> None:
    result = parse_stage_distribution({"Series A": 0.6, "pre-seed": 0.4})
    assert result.ok
    assert result.weights == {Stage.PRE_SEED: 0.4, Stage.SERIES_A: 0.6}
    assert result.aliases == (AliasUse("Series A", Stage.SERIES_A), AliasUse("pre-seed", Stage.PRE_SEED))
    assert result.codes() == {ProblemCode.DEPRECATED_ALIAS}
    assert all(problem.severity == "warning" for problem in result.problems)
    assert "deprecated spelling of 'series_a'" in result.problems[0].message


def test_keys_meaning_the_same_stage_are_merged_and_reported() -> None:
    result = parse_stage_distribution({"series_a": 0.25, "Series A": 0.25, "seed": 0.5})
    assert result.ok
    assert result.weights == {Stage.SEED: 0.5, Stage.SERIES_A: 0.5}
    assert result.merged == (Merge(Stage.SERIES_A, ("series_a", "Series A")),)
    assert ProblemCode.MERGED_KEYS in result.codes()


def test_unknown_names_fail_closed_with_suggestions() -> None:
    result = parse_stage_distribution({"seed": 0.5, "Seris A": 0.5})
    assert not result.ok
    assert not result.is_malformed
    assert result.weights == {Stage.SEED: 0.5}
    assert result.total == pytest.approx(1.0)
    [unknown] = result.unknown
    assert unknown.name == "Seris A"
    assert unknown.weight == 0.5
    assert unknown.suggestions[0] is Stage.SERIES_A
    [problem] = result.problems
    assert problem.code is ProblemCode.UNKNOWN_STAGE
    assert problem.key == "Seris A"
    assert "did you mean 'series_a'" in problem.message


@pytest.mark.parametrize(
    "weight",
    [math.nan, math.inf, -math.inf, -0.1, 1.5, True, False, "0.5", None, {"v": 0.5}, [0.5], 10**400],
)
def test_malformed_weights_are_invalid(weight: object) -> None:
    result = parse_stage_distribution({"seed": weight, "series_a": 0.5})
    assert not result.ok
    assert result.is_malformed
    codes = result.codes()
    assert ProblemCode.INVALID_WEIGHT in codes
    assert ProblemCode.SUM_MISMATCH not in codes  # the sum of an unusable distribution means nothing
    assert Stage.SEED not in result.weights


def test_int_weights_are_numbers() -> None:
    assert parse_stage_distribution({"seed": 1}).weights == {Stage.SEED: 1.0}
    assert parse_stage_distribution({"seed": 0, "growth": 1}).ok


@pytest.mark.parametrize(
    ("mapping", "code"),
    [
        ([("seed", 1.0)], ProblemCode.NOT_AN_OBJECT),
        ("seed", ProblemCode.NOT_AN_OBJECT),
        (None, ProblemCode.NOT_AN_OBJECT),
        ({}, ProblemCode.EMPTY),
        ({f"stage {i}": 0.01 for i in range(MAX_ENTRIES + 1)}, ProblemCode.TOO_MANY_ENTRIES),
        ({"x" * 65: 1.0}, ProblemCode.KEY_TOO_LONG),
        ({1: 1.0}, ProblemCode.INVALID_KEY),
    ],
)
def test_malformed_distributions(mapping: object, code: ProblemCode) -> None:
    result = parse_stage_distribution(mapping)
    assert not result.ok
    assert result.is_malformed
    assert code in result.codes()
    assert result.problems[0].message


@pytest.mark.parametrize(("total", "ok"), [(0.9989, False), (0.9991, True), (1.0009, True), (1.0011, False)])
def test_sum_must_be_one_within_the_default_tolerance(total: float, ok: bool) -> None:
    result = parse_stage_distribution({"seed": 0.5, "series_a": total - 0.5})
    assert result.ok is ok
    assert (ProblemCode.SUM_MISMATCH in result.codes()) is not ok


def test_tolerance_is_configurable() -> None:
    assert parse_stage_distribution({"seed": 0.95}, tolerance=0.1).ok
    assert not parse_stage_distribution({"seed": 0.95}).ok
    with pytest.raises(ValueError, match="tolerance"):
        parse_stage_distribution({"seed": 1.0}, tolerance=-1)


def test_percent_scale_only_when_asked() -> None:
    assert parse_stage_distribution({"seed": 60, "series_a": 40}).is_malformed
    result = parse_stage_distribution({"seed": 60, "series_a": 40}, scale="percent")
    assert result.ok
    assert result.weights == {Stage.SEED: 0.6, Stage.SERIES_A: 0.4}
    assert parse_stage_distribution({"seed": 101}, scale="percent").is_malformed
    with pytest.raises(ValueError, match="scale"):
        parse_stage_distribution({"seed": 1.0}, scale="basis-points")  # type: ignore[arg-type]


def test_works_on_any_mapping_type() -> None:
    assert parse_stage_distribution(OrderedDict([("seed", 1.0)])).ok


@given(json_values)
def test_never_raises_on_any_json_value(value: object) -> None:
    result = parse_stage_distribution(value)
    assert result.ok == all(p.code in WARNING_CODES for p in result.problems)
    assert result.is_malformed == any(p.code in MALFORMED_CODES for p in result.problems)
    for problem in result.problems:
        assert isinstance(problem.message, str)
    assert all(isinstance(stage, Stage) for stage in result.weights)
    assert math.isfinite(result.total)


distributions = st.dictionaries(
    st.sampled_from(
        [s.value for s in Stage] + ["Series A", "SEED", "pre-seed", "growth equity", "Seris B", "venture"]
    ),
    st.floats(min_value=0, max_value=1) | st.integers(min_value=0, max_value=1) | st.just(math.nan),
    min_size=1,
    max_size=8,
)


@given(distributions, st.randoms(use_true_random=False))
def test_key_order_does_not_change_the_result(mapping: dict[str, float], rng: object) -> None:
    items = list(mapping.items())
    rng.shuffle(items)  # type: ignore[attr-defined]
    original = parse_stage_distribution(mapping)
    shuffled = parse_stage_distribution(dict(items))
    assert shuffled.ok == original.ok
    assert list(shuffled.weights) == list(original.weights)
    for stage, weight in original.weights.items():
        assert shuffled.weights[stage] == pytest.approx(weight)
    assert shuffled.total == pytest.approx(original.total)
    assert sorted(shuffled.codes()) == sorted(original.codes())
    assert sorted(u.name for u in shuffled.unknown) == sorted(u.name for u in original.unknown)
    assert {m.stage: set(m.names) for m in shuffled.merged} == {
        m.stage: set(m.names) for m in original.merged
    }


@given(distributions)
def test_weights_are_in_canonical_order_and_within_bounds(mapping: dict[str, float]) -> None:
    result = parse_stage_distribution(mapping)
    positions = [stage.position for stage in result.weights]
    assert positions == sorted(positions)
    assert all(w >= 0.0 for w in result.weights.values())


def test_key_order_cannot_flip_the_sum_verdict_at_the_tolerance_edge() -> None:
    # A running sum gives 1.0 in this order and 0.9999999999999999 in reverse; at tolerance 0 the verdict
    # must still be the same, and so must the reported total.
    forward = parse_stage_distribution({"seed": 0.1, "series_a": 0.2, "series_b": 0.7}, tolerance=0.0)
    reverse = parse_stage_distribution({"series_b": 0.7, "series_a": 0.2, "seed": 0.1}, tolerance=0.0)
    assert forward.ok
    assert reverse.ok
    assert forward.total == reverse.total == 1.0


def test_stage_members_and_other_str_subclasses_are_judged_by_their_text() -> None:
    result = parse_stage_distribution({Stage.SEED: 0.5, Stage.SERIES_A: 0.5})
    assert result.ok
    assert result.problems == ()
    assert result.weights == {Stage.SEED: 0.5, Stage.SERIES_A: 0.5}


@given(distributions)
def test_any_mapping_type_gives_the_same_result_as_a_dict(mapping: dict[str, float]) -> None:
    assert parse_stage_distribution(MappingProxyType(mapping)) == parse_stage_distribution(mapping)


_PLAN_KEYS = st.sampled_from(
    [s.value for s in Stage]
    + ["Series A", "SEED", " seed ", "pre-seed", "growth equity", "Seris B", "venture", "x" * 65, ""]
)
_PLAN_WEIGHTS = (
    st.floats(min_value=0, max_value=1)
    | st.integers(min_value=0, max_value=100)
    | st.sampled_from([0.25, 0.5, -0.0, math.nan, math.inf, True, None, "0.5"])
)


@given(
    st.dictionaries(_PLAN_KEYS | st.integers(), _PLAN_WEIGHTS, min_size=1, max_size=8),
    st.sampled_from(["fraction", "percent"]),
    st.sampled_from([0.0, 1e-3, 0.1]),
)
def test_key_plan_fast_path_equals_entry_by_entry_parsing(
    mapping: dict[object, object], scale: Scale, tolerance: float
) -> None:
    # The fast path (per key tuple, cached) must agree exactly with the general path on every input: on
    # the first sighting (general path), the second (plan built) and the third (plan reused).
    divisor = 1.0 if scale == "fraction" else 100.0
    reference = parse_entry_by_entry(mapping, divisor, divisor, tolerance)
    key_plans().forget()
    for _ in range(3):
        assert repr(parse_stage_distribution(mapping, scale=scale, tolerance=tolerance)) == repr(reference)
    assert tuple(mapping) in key_plans().plans


def test_key_plans_are_bounded_and_made_on_the_second_sighting() -> None:
    plans = KeyPlans(capacity=2)
    keys = ("seed", "Series A")
    assert plans.plan_on_second_sighting(keys) is None
    assert keys not in plans.plans
    plan = plans.plan_on_second_sighting(keys)
    assert plan is not None
    assert plan.stages == (Stage.SEED, Stage.SERIES_A)
    assert plan.aliases == (AliasUse("Series A", Stage.SERIES_A),)
    for name in ("growth", "late_stage", "series_b"):
        plans.plan_on_second_sighting((name,))
        plans.plan_on_second_sighting((name,))
    assert len(plans.plans) <= 2
    assert plans.plan_on_second_sighting((1,)) is None
    assert plans.plan_on_second_sighting((1,)) is None  # a malformed key is never planned


@pytest.mark.parametrize("name", ["se\x00ed", "\ud800", "mezzanine\x00"])
def test_a_key_with_nul_or_a_lone_surrogate_is_malformed_and_never_echoed(name: str) -> None:
    for _ in range(3):  # the first, second (planned) and later sightings of the same keys agree
        result = parse_stage_distribution({"seed": 0.5, name: 0.5})
        assert result.is_malformed
        [problem] = [p for p in result.problems if p.code is ProblemCode.INVALID_KEY]
        assert problem.key is None
        assert "NUL" in problem.message
        assert name not in problem.message
        assert result.unknown == ()
