import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fundmodel.engines.montecarlo import MIN_ITERATIONS, SimulationConfig, load_config, simulate
from fundmodel.engines.montecarlo.companies import MAX_COMPANIES_PER_FUND
from fundmodel.engines.montecarlo.config import MAX_FUND_SIZE, MIN_FUND_SIZE
from fundmodel.engines.montecarlo.profiles import (
    MAX_DOLLARS,
    MAX_MULTIPLE,
    MAX_YEARS,
    MIN_DOLLARS,
    MIN_MULTIPLE,
    MIN_YEARS,
)
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


DENORMAL = 5e-324


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"fundSize": DENORMAL}, "fundSize"),
        ({"fundSize": 99_999.0}, "fundSize"),
        ({"fundSize": 1.000001e13}, "fundSize"),
        ({"investmentPeriodYears": DENORMAL}, "investmentPeriodYears"),
        ({"stageProfiles": {"seed": {"checkSize": DENORMAL}}}, "stageProfiles.seed.checkSize"),
        ({"stageProfiles": {"seed": {"roundSize": 999.0}}}, "stageProfiles.seed.roundSize"),
        (
            {"stageProfiles": {"seed": {"preMoneyValuation": DENORMAL}}},
            "stageProfiles.seed.preMoneyValuation",
        ),
        (
            {"stageProfiles": {"seed": {"exitMultipleMedian": DENORMAL}}},
            "stageProfiles.seed.exitMultipleMedian",
        ),
        ({"stageProfiles": {"seed": {"exitMultipleCap": 0.001}}}, "stageProfiles.seed.exitMultipleCap"),
        ({"stageProfiles": {"seed": {"yearsToExit": DENORMAL}}}, "stageProfiles.seed.yearsToExit"),
        ({"stageProfiles": {"seed": {"yearsToGraduate": 0.2}}}, "stageProfiles.seed.yearsToGraduate"),
        ({"stageProfiles": {"seed": {"roundSize": 1e308}}}, "stageProfiles.seed.roundSize"),
    ],
)
def test_economically_meaningless_magnitudes_are_refused(changes: dict[str, Any], field: str) -> None:
    assert field in [problem["field"] for problem in problems(**changes)]


@pytest.mark.parametrize(
    "changes",
    [
        {"fundSize": True},
        {"catchUp": True},
        {"reserveRatio": False},
        {"managementFeeStepDownRate": False},
        {"fundSize": "1e8"},
        {"stageProfiles": {"seed": {"graduationRate": True}}},
        {"stageProfiles": {"seed": {"exitMultipleCap": True}}},
    ],
)
def test_a_boolean_or_a_string_is_not_a_number(changes: dict[str, Any]) -> None:
    [problem] = problems(**changes)
    assert problem["type"] == "float_type"


def test_json_integers_are_numbers() -> None:
    config = load_config(
        {**BASE, "fundSize": 100_000_000, "catchUp": 1, "stageProfiles": {"seed": {"roundSize": 4_000_000}}}
    )
    assert config.fund_size == 1e8
    assert config.catch_up == 1.0
    assert config.stage_profiles[Stage.SEED].round_size == 4e6


def _extreme_config(
    fund_size: float, dollars: float, median: float, sigma: float, years: float
) -> dict[str, Any]:
    profile = {
        "roundSize": dollars,
        "preMoneyValuation": dollars,
        "checkSize": dollars,
        "exitMultipleMedian": median,
        "exitMultipleSigma": sigma,
        "exitMultipleCap": None,
        "yearsToExit": years,
        "yearsToGraduate": years,
    }
    return {
        "fundSize": fund_size,
        "stageDistribution": {"seed": 0.5, "late_stage": 0.5},
        "recyclingRatio": 0.5,
        "followOnParticipation": 2.0,
        "stageProfiles": {"seed": profile, "late_stage": {**profile, "graduationRate": 0.0}},
    }


@pytest.mark.parametrize("fund_size", [MIN_FUND_SIZE, MAX_FUND_SIZE])
@pytest.mark.parametrize("dollars", [MIN_DOLLARS, MAX_DOLLARS])
@pytest.mark.parametrize(("median", "sigma"), [(MIN_MULTIPLE, 0.0), (MAX_MULTIPLE, 5.0)])
@pytest.mark.parametrize("years", [MIN_YEARS, MAX_YEARS])
def test_every_extreme_the_config_accepts_simulates_to_finite_results_or_a_config_error(
    fund_size: float, dollars: float, median: float, sigma: float, years: float
) -> None:
    # The corners of the accepted ranges (largest products included: the largest post-money times the
    # largest multiple times a 5-sigma lognormal tail, uncapped) must never end in an ArithmeticError.
    config = load_config(_extreme_config(fund_size, dollars, median, sigma, years))
    if fund_size / dollars > MAX_COMPANIES_PER_FUND:
        # The one rule that refuses a corner: a big fund of tiny checks is too many companies.
        with pytest.raises(SimulationConfigError, match="initial investments"):
            simulate(config, iterations=MIN_ITERATIONS, seed=11)
        return
    document = simulate(config, iterations=MIN_ITERATIONS, seed=11).to_json()  # ArithmeticError if not finite
    assert document["netTvpi"]["mean"] >= 0.0
