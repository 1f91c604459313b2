import math

import pytest
from hypothesis import given

from fundmodel.errors import InvalidStageDistributionError, InvalidStageError, MalformedStageInputError
from fundmodel.stages import Stage
from fundmodel.validation import (
    Outcome,
    ValidationMode,
    validate_stage,
    validate_stage_distribution,
    validate_stage_keys,
)

from ..stages.strategies import json_values

OFF, WARN, ENFORCE = ValidationMode.OFF, ValidationMode.WARN, ValidationMode.ENFORCE
ALL_MODES = [OFF, WARN, ENFORCE]


@pytest.mark.parametrize("mode", ALL_MODES)
def test_canonical_distribution_is_valid_everywhere(mode: ValidationMode) -> None:
    decision = validate_stage_distribution({"seed": 0.4, "series_a": 0.6}, mode)
    assert decision.outcome is Outcome.VALID
    assert decision.accepted
    assert decision.weights == {Stage.SEED: 0.4, Stage.SERIES_A: 0.6}
    assert decision.warnings == ()
    assert not decision.deprecated_input
    assert decision.offending_names == ()


@pytest.mark.parametrize(("mode", "warned"), [(OFF, False), (WARN, True), (ENFORCE, True)])
def test_aliases_are_normalized_in_every_mode(mode: ValidationMode, warned: bool) -> None:
    decision = validate_stage_distribution({"Seed": 0.4, "Series A": 0.6}, mode)
    assert decision.outcome is Outcome.NORMALIZED_ALIAS
    assert decision.weights == {Stage.SEED: 0.4, Stage.SERIES_A: 0.6}
    assert decision.deprecated_input is warned
    assert bool(decision.warnings) is warned
    assert decision.offending_names == ("Seed", "Series A")
    if warned:
        assert decision.warnings[1].to_json() == {
            "code": "DEPRECATED_ALIAS",
            "field": "stageDistribution",
            "message": "'Series A' is a deprecated spelling of 'series_a'; send 'series_a' instead.",
            "value": "Series A",
            "normalizedTo": "series_a",
        }


@pytest.mark.parametrize(("mode", "outcome"), [(OFF, Outcome.UNKNOWN_ACCEPTED), (WARN, Outcome.WOULD_REJECT)])
def test_unknown_stages_are_dropped_and_renormalized_when_lenient(
    mode: ValidationMode, outcome: Outcome
) -> None:
    decision = validate_stage_distribution({"seed": 0.5, "Seris A": 0.3, "series_b": 0.2}, mode)
    assert decision.outcome is outcome
    assert decision.accepted
    assert decision.weights == pytest.approx({Stage.SEED: 0.5 / 0.7, Stage.SERIES_B: 0.2 / 0.7})
    assert math.isclose(sum(decision.weights.values()), 1.0)
    assert decision.offending_names == ("Seris A",)
    assert decision.deprecated_input is (mode is WARN)
    if mode is WARN:
        [warning] = decision.warnings
        assert warning.code == "UNKNOWN_STAGE"
        assert warning.to_json()["suggestions"][0] == "series_a"


def test_unknown_stages_are_rejected_under_enforce() -> None:
    decision = validate_stage_distribution({"seed": 0.5, "Seris A": 0.5}, ENFORCE)
    assert decision.outcome is Outcome.REJECTED
    assert isinstance(decision.error, InvalidStageError)
    assert decision.error.code == "INVALID_STAGE"
    assert decision.error.extra["invalid"] == ["Seris A"]
    assert decision.error.extra["suggestions"]["Seris A"][0] == "series_a"
    assert decision.error.extra["validStages"][0] == "pre_seed"
    assert decision.weights == {}


@pytest.mark.parametrize("mode", [OFF, WARN])
def test_sum_mismatch_is_renormalized_when_lenient(mode: ValidationMode) -> None:
    decision = validate_stage_distribution({"seed": 0.2, "series_a": 0.2}, mode)
    assert decision.accepted
    assert decision.weights == {Stage.SEED: 0.5, Stage.SERIES_A: 0.5}
    assert [w.code for w in decision.warnings] == ([] if mode is OFF else ["SUM_MISMATCH"])


def test_sum_mismatch_is_rejected_under_enforce() -> None:
    decision = validate_stage_distribution({"seed": 0.2, "series_a": 0.2}, ENFORCE)
    assert decision.outcome is Outcome.REJECTED
    assert isinstance(decision.error, InvalidStageDistributionError)
    assert decision.error.code == "INVALID_STAGE_DISTRIBUTION"


@pytest.mark.parametrize("mode", ALL_MODES)
@pytest.mark.parametrize("raw", [[1], "seed", {}, {"seed": "0.5"}, {"seed": math.nan}, {"seed": True}])
def test_malformed_input_is_refused_in_every_mode(mode: ValidationMode, raw: object) -> None:
    decision = validate_stage_distribution(raw, mode, field="stageAllocation")
    assert decision.outcome is Outcome.MALFORMED
    assert isinstance(decision.error, MalformedStageInputError)
    assert decision.error.field == "stageAllocation"
    assert decision.error.errors


@pytest.mark.parametrize("mode", [OFF, WARN])
def test_nothing_known_left_is_refused_even_when_lenient(mode: ValidationMode) -> None:
    decision = validate_stage_distribution({"Seris A": 1.0}, mode)
    assert decision.outcome is Outcome.MALFORMED
    assert isinstance(decision.error, MalformedStageInputError)


def test_aliases_after_the_sunset_are_rejected_under_enforce_only() -> None:
    rejected = validate_stage_distribution({"Series A": 1.0}, ENFORCE, aliases_accepted=False)
    assert rejected.outcome is Outcome.REJECTED
    assert rejected.error is not None
    assert rejected.error.extra["suggestions"] == {"Series A": ["series_a"]}
    accepted = validate_stage_distribution({"Series A": 1.0}, WARN, aliases_accepted=False)
    assert accepted.outcome is Outcome.NORMALIZED_ALIAS


@pytest.mark.parametrize("mode", ALL_MODES)
@given(raw=json_values)
def test_distribution_decisions_never_raise(mode: ValidationMode, raw: object) -> None:
    decision = validate_stage_distribution(raw, mode)
    assert (decision.error is None) == (decision.outcome not in {Outcome.REJECTED, Outcome.MALFORMED})
    if decision.accepted:
        assert math.isclose(sum(decision.weights.values()), 1.0, abs_tol=1e-3)
    assert len(decision.offending_names) <= 5


# --- single stage names ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ALL_MODES)
def test_canonical_stage(mode: ValidationMode) -> None:
    decision = validate_stage("series_b", mode)
    assert (decision.outcome, decision.stage, decision.stored_value) == (
        Outcome.VALID,
        Stage.SERIES_B,
        "series_b",
    )


@pytest.mark.parametrize("mode", ALL_MODES)
def test_alias_stage_is_stored_canonical(mode: ValidationMode) -> None:
    decision = validate_stage(" Series B ", mode)
    assert decision.outcome is Outcome.NORMALIZED_ALIAS
    assert decision.stored_value == "series_b"
    assert decision.deprecated_input is (mode is not OFF)


@pytest.mark.parametrize(("mode", "outcome"), [(OFF, Outcome.UNKNOWN_ACCEPTED), (WARN, Outcome.WOULD_REJECT)])
def test_unknown_stage_is_kept_as_sent_when_lenient(mode: ValidationMode, outcome: Outcome) -> None:
    decision = validate_stage("  Bridge round ", mode)
    assert decision.outcome is outcome
    assert decision.stage is None
    assert decision.stored_value == "Bridge round"
    assert len(decision.warnings) == (1 if mode is WARN else 0)


def test_unknown_stage_is_rejected_under_enforce() -> None:
    decision = validate_stage("Seris B", ENFORCE)
    assert decision.outcome is Outcome.REJECTED
    assert isinstance(decision.error, InvalidStageError)
    assert decision.error.extra["invalid"] == ["Seris B"]
    assert decision.error.extra["suggestions"]["Seris B"][0] == "series_b"


@pytest.mark.parametrize("mode", ALL_MODES)
@pytest.mark.parametrize("raw", [None, 3, "", "   ", "x" * 65, ["seed"]])
def test_malformed_stage(mode: ValidationMode, raw: object) -> None:
    decision = validate_stage(raw, mode)
    assert decision.outcome is Outcome.MALFORMED
    assert isinstance(decision.error, MalformedStageInputError)


def test_a_sum_mismatch_is_flagged_with_the_deprecation_headers_when_warned() -> None:
    # Renormalizing a bad sum is the lenient legacy behaviour enforce retires: flagged like unknown names.
    warned = validate_stage_distribution({"seed": 0.2, "series_a": 0.2}, WARN)
    assert warned.outcome is Outcome.WOULD_REJECT
    assert warned.deprecated_input
    assert not validate_stage_distribution({"seed": 0.2, "series_a": 0.2}, OFF).deprecated_input


# --- stage names as keys of per-stage overrides ---------------------------------------------------


@pytest.mark.parametrize("mode", ALL_MODES)
def test_canonical_keys_are_valid(mode: ValidationMode) -> None:
    decision = validate_stage_keys(["seed", "growth"], mode)
    assert decision.outcome is Outcome.VALID
    assert decision.stages == {"seed": Stage.SEED, "growth": Stage.GROWTH}
    assert (decision.warnings, decision.deprecated_input, decision.offending_names) == ((), False, ())


@pytest.mark.parametrize(("mode", "warned"), [(OFF, False), (WARN, True), (ENFORCE, True)])
def test_alias_keys_are_normalized(mode: ValidationMode, warned: bool) -> None:
    decision = validate_stage_keys(["Series A", "seed"], mode)
    assert decision.outcome is Outcome.NORMALIZED_ALIAS
    assert decision.stages == {"Series A": Stage.SERIES_A, "seed": Stage.SEED}
    assert decision.deprecated_input is warned
    assert decision.offending_names == ("Series A",)
    assert [w.to_json() for w in decision.warnings] == (
        [
            {
                "code": "DEPRECATED_ALIAS",
                "field": "stageProfiles.Series A",
                "message": "'Series A' is a deprecated spelling of 'series_a'; send 'series_a' instead.",
                "value": "Series A",
                "normalizedTo": "series_a",
            }
        ]
        if warned
        else []
    )


@pytest.mark.parametrize(("mode", "outcome"), [(OFF, Outcome.UNKNOWN_ACCEPTED), (WARN, Outcome.WOULD_REJECT)])
def test_unknown_keys_are_dropped_when_lenient(mode: ValidationMode, outcome: Outcome) -> None:
    decision = validate_stage_keys(["seed", "Seris A", "Series B"], mode)
    assert decision.outcome is outcome
    assert decision.accepted
    assert decision.stages == {"seed": Stage.SEED, "Series B": Stage.SERIES_B}
    assert decision.offending_names == ("Seris A", "Series B")
    assert decision.deprecated_input is (mode is WARN)
    if mode is WARN:
        unknown, alias = (w.to_json() for w in decision.warnings)
        assert alias["code"] == "DEPRECATED_ALIAS"
        assert unknown["code"] == "UNKNOWN_STAGE"
        assert unknown["field"] == "stageProfiles.Seris A"
        assert unknown["suggestions"][0] == "series_a"
        assert "override was ignored and the default stage profiles apply" in unknown["message"]
    else:
        assert decision.warnings == ()


def test_unknown_keys_are_rejected_under_enforce() -> None:
    decision = validate_stage_keys(["seed", "Seris A", "mezzanine"], ENFORCE, field="x")
    assert decision.outcome is Outcome.REJECTED
    assert decision.stages == {}
    assert isinstance(decision.error, InvalidStageError)
    assert decision.error.detail == "x names unknown stages: 'Seris A', 'mezzanine'"
    assert decision.error.extra["invalid"] == ["Seris A", "mezzanine"]
    assert decision.error.extra["suggestions"]["Seris A"][0] == "series_a"
    assert decision.deprecated_input


def test_alias_keys_after_the_sunset_are_rejected_under_enforce_only() -> None:
    rejected = validate_stage_keys(["Series A"], ENFORCE, aliases_accepted=False)
    assert rejected.outcome is Outcome.REJECTED
    assert rejected.error is not None
    assert "no longer accepted" in rejected.error.detail
    assert rejected.error.extra["suggestions"] == {"Series A": ["series_a"]}
    assert validate_stage_keys(["Series A"], WARN, aliases_accepted=False).accepted


@pytest.mark.parametrize("mode", ALL_MODES)
def test_two_keys_for_one_stage_are_malformed_in_every_mode(mode: ValidationMode) -> None:
    decision = validate_stage_keys(["seed", "Seed", "series_a"], mode)
    assert decision.outcome is Outcome.MALFORMED
    assert isinstance(decision.error, MalformedStageInputError)
    assert decision.error.code == "DUPLICATE_STAGE"
    assert decision.error.extra["invalid"] == ["seed", "Seed"]


@pytest.mark.parametrize("mode", ALL_MODES)
@pytest.mark.parametrize("keys", [[""], ["   "], ["x" * 65], [3], [f"s{i}" for i in range(33)]])
def test_malformed_keys(mode: ValidationMode, keys: list[object]) -> None:
    decision = validate_stage_keys(keys, mode)
    assert decision.outcome is Outcome.MALFORMED
    assert isinstance(decision.error, MalformedStageInputError)
    assert decision.error.code == "MALFORMED_STAGE"
    assert "x" * 65 not in decision.error.detail  # the offending key is not echoed back


@pytest.mark.parametrize("mode", ALL_MODES)
@given(raw=json_values)
def test_key_decisions_never_raise(mode: ValidationMode, raw: object) -> None:
    keys = list(raw) if isinstance(raw, dict | list) else [raw]
    decision = validate_stage_keys(keys, mode)
    assert (decision.error is None) == (decision.outcome not in {Outcome.REJECTED, Outcome.MALFORMED})
    assert len(decision.offending_names) <= 5
    assert len(set(decision.stages.values())) == len(decision.stages)


@pytest.mark.parametrize("mode", ALL_MODES)
@pytest.mark.parametrize("raw", ["se\x00ed", "seed\x00", "\ud800"])
def test_a_stage_with_nul_or_a_lone_surrogate_is_malformed_in_every_mode(
    mode: ValidationMode, raw: str
) -> None:
    # Accepting it "as sent" under off/warn would hand the database text it cannot store.
    decision = validate_stage(raw, mode, field="stage")
    assert decision.outcome is Outcome.MALFORMED
    assert isinstance(decision.error, MalformedStageInputError)
    assert decision.error.code == "MALFORMED_STAGE"
    assert decision.error.field == "stage"
    assert decision.error.extra["invalid"] == []
    assert "NUL" in decision.error.detail
    assert decision.offending_names == ()  # nor does it reach the offender log

    keys = validate_stage_keys(["seed", raw], mode, field="stageProfiles")
    assert keys.outcome is Outcome.MALFORMED
    assert keys.error is not None
    assert keys.error.code == "MALFORMED_STAGE"
    assert keys.error.field == "stageProfiles"


@pytest.mark.parametrize("mode", ALL_MODES)
@pytest.mark.parametrize("weight", [math.nan, math.inf, -math.inf, "0.5", None, True, -0.5, [0.5]])
def test_every_malformed_weight_is_the_same_problem_with_field_and_key(
    mode: ValidationMode, weight: object
) -> None:
    decision = validate_stage_distribution({"seed": weight, "series_a": 0.5}, mode, field="stageAllocation")
    assert decision.outcome is Outcome.MALFORMED
    assert isinstance(decision.error, MalformedStageInputError)
    assert decision.error.code == "MALFORMED_STAGE_DISTRIBUTION"
    assert decision.error.field == "stageAllocation"
    assert decision.error.extra["invalid"] == ["seed"]
