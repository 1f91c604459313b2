import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fundmodel.engines.montecarlo import SimulationConfig, load_config
from fundmodel.errors import SimulationConfigError
from fundmodel.stages import Stage

BASE: dict[str, Any] = {"fundSize": 1e8, "stageDistribution": {"seed": 0.6, "series_a": 0.4}}


def problems(**changes: Any) -> list[dict[str, Any]]:
    with pytest.raises(SimulationConfigError) as raised:
        load_config({**BASE, **changes})
    assert raised.value.code == "INVALID_SIMULATION_CONFIG"
    return [dict(item) for item in raised.value.errors]


def test_json_form_is_camel_case_and_round_trips() -> None:
    config = load_config(BASE)
    document = config.model_dump(mode="json", by_alias=True)
    assert document["fundSize"] == 1e8
    assert document["stageDistribution"] == {"seed": 0.6, "series_a": 0.4}
    assert {"reserveRatio", "managementFeeRate", "stageProfiles", "carryRate"} <= set(document)
    assert load_config(document) == config


def test_snake_case_names_and_stage_keys_are_accepted_in_python() -> None:
    config = SimulationConfig(fund_size=1e8, stage_distribution={Stage.SEED: 1.0})
    assert config.stage_distribution == {Stage.SEED: 1.0}


def test_aliases_are_normalized() -> None:
    config = load_config({**BASE, "stageDistribution": {"Pre Seed": 0.5, "SERIES-A": 0.5}})
    assert config.stage_distribution == {Stage.PRE_SEED: 0.5, Stage.SERIES_A: 0.5}
    config = load_config({**BASE, "stageProfiles": {"Series A": {"graduationRate": 0.5}}})
    assert set(config.stage_profiles) == {Stage.SERIES_A}


@pytest.mark.parametrize(
    ("distribution", "code"),
    [
        ({"seed": 0.6, "seriez_a": 0.4}, "UNKNOWN_STAGE"),
        ({"seed": 0.6, "series_a": 0.6}, "SUM_MISMATCH"),
        ({"seed": math.nan, "series_a": 1.0}, "INVALID_WEIGHT"),
        ({"seed": -0.5, "series_a": 1.5}, "INVALID_WEIGHT"),
        ({"seed": True}, "INVALID_WEIGHT"),
        ({}, "EMPTY"),
        ([0.5, 0.5], "NOT_AN_OBJECT"),
    ],
)
def test_bad_distribution_is_refused_with_its_code(distribution: object, code: str) -> None:
    [problem] = problems(stageDistribution=distribution)
    assert problem["field"] == "stageDistribution"
    assert code in problem["message"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"fundSize": -1.0}, "fundSize"),
        ({"fundSize": math.nan}, "fundSize"),
        ({"fundSize": math.inf}, "fundSize"),
        ({"reserveRatio": 1.5}, "reserveRatio"),
        ({"managementFeeRate": math.nan}, "managementFeeRate"),
        ({"carryRate": -0.1}, "carryRate"),
        ({"unknownField": 1}, "unknownField"),
        ({"investmentPeriodYears": 12.0}, "investmentPeriodYears"),
        ({"initialDeploymentYears": 6.0}, "initialDeploymentYears"),
        ({"catchUp": 0.1}, "catchUp"),
        ({"managementFeeRate": 0.1, "managementFeeStepDownRate": 0.1}, "managementFeeRate"),
        (
            {"stageProfiles": {"seed": {"graduationRate": 0.7, "exitRate": 0.5}}},
            "stageProfiles.seed.exitRate",
        ),
        ({"stageProfiles": {"seed": {"roundSize": -3.0}}}, "stageProfiles.seed.roundSize"),
        (
            {"stageProfiles": {"seed": {"exitMultipleSigma": math.nan}}},
            "stageProfiles.seed.exitMultipleSigma",
        ),
        ({"stageProfiles": {"seed": {"checkSize": 9e9}}}, "stageProfiles.seed.checkSize"),
        (
            {"stageProfiles": {"late_stage": {"graduationRate": 0.2}}},
            "stageProfiles.late_stage.graduationRate",
        ),
        ({"stageProfiles": {"seed": {"bogus": 1}}}, "stageProfiles.seed.bogus"),
        ({"stageProfiles": {"latte": {}}}, "stageProfiles"),
        ({"stageProfiles": {"seed": {}, "Seed": {}}}, "stageProfiles"),
    ],
)
def test_bad_fields_are_named(changes: dict[str, Any], field: str) -> None:
    fields = [problem["field"] for problem in problems(**changes)]
    assert field in fields


def test_unknown_profile_stage_gets_suggestions() -> None:
    [problem] = problems(stageProfiles={"seeed": {}})
    assert "UNKNOWN_STAGE" in problem["message"]
    assert "seed" in problem["message"]


def test_derived_capital() -> None:
    config = load_config(BASE)
    # 2 % for 5 years then 1.5 % for 5 years, plus 1 % expenses.
    assert config.total_management_fees == pytest.approx(17.5e6)
    assert config.investable_capital == pytest.approx(100e6 - 17.5e6 - 1e6)
    assert config.horizon_quarters == 40


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(st.text(max_size=10), st.floats(allow_nan=True), max_size=4))
def test_any_distribution_is_either_valid_or_a_typed_error(distribution: dict[str, float]) -> None:
    body = {**BASE, "stageDistribution": distribution}
    try:
        config = load_config(body)
    except SimulationConfigError:
        with pytest.raises(SimulationConfigError) as raised:
            load_config(body)
        assert raised.value.errors
        assert raised.value.errors[0]["field"] == "stageDistribution"
    else:
        assert sum(config.stage_distribution.values()) == pytest.approx(1.0, abs=1e-3)
