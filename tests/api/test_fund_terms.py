"""Fund terms a forecast needs: stored, read back, checked by the engine's own rules; a strategy by id."""

from __future__ import annotations

from typing import Any

import pytest

from fundmodel.engines.montecarlo.config import SimulationConfig
from fundmodel.funds.models import FundTerms
from tests.conftest import ApiClient

FUND = {
    "name": "Terms Fund",
    "vintageYear": 2023,
    "committedCapital": 1e8,
    "managementFeeRate": 0.02,
    "carriedInterestRate": 0.2,
}
TERMS = {
    "managementFeeStepDownRate": 0.01,
    "fundExpenseRatio": 0.005,
    "preferredReturn": 0.06,
    "fundLifeYears": 12,
    "investmentPeriodYears": 4,
    "reserveRatio": 0.45,
    "recyclingRatio": 0.1,
    "paidIn": 35_000_000,
    "distributed": 4_000_000.25,
}
ENGINE_TERMS = [
    name for name in FundTerms.model_fields if name not in {"strategy_id", "paid_in", "distributed"}
]


def _strategy(api: ApiClient) -> int:
    body = {"name": "Seed-led", "stageAllocation": {"seed": 0.6, "series_a": 0.4}}
    response = api.request("POST", "/api/portfolio/strategies", json=body)
    assert response.status_code == 201, response.text
    strategy_id: int = response.json()["id"]
    return strategy_id


def _problem(response: Any, code: str) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


def test_terms_and_strategy_are_stored_and_read_back(api: ApiClient) -> None:
    strategy = _strategy(api)
    created = api.request("POST", "/api/funds", json={**FUND, **TERMS, "strategyId": strategy})
    assert created.status_code == 201, created.text
    fund = created.json()
    assert {key: fund[key] for key in TERMS} == TERMS
    assert fund["strategyId"] == strategy
    assert api.request("GET", f"/api/funds/{fund['id']}").json() == fund
    assert api.request("GET", "/api/funds").json()["items"] == [fund]


def test_a_fund_without_terms_reads_them_as_null(api: ApiClient) -> None:
    fund = api.request("POST", "/api/funds", json=FUND).json()
    for key in [*TERMS, "strategyId"]:
        assert fund[key] is None


def test_an_unknown_strategy_is_a_422_naming_the_field(api: ApiClient) -> None:
    problem = _problem(
        api.request("POST", "/api/funds", json={**FUND, "strategyId": 4242}), "UNKNOWN_STRATEGY"
    )
    assert problem["field"] == "strategyId"


@pytest.mark.parametrize(
    ("terms", "field"),
    [
        ({"investmentPeriodYears": 8, "fundLifeYears": 6}, "investmentPeriodYears"),
        # Without a fund life the engine's default of 10 years applies.
        ({"investmentPeriodYears": 11}, "investmentPeriodYears"),
        (
            {"managementFeeRate": 0.1, "managementFeeStepDownRate": 0.1, "fundLifeYears": 25},
            "managementFeeRate",
        ),
    ],
)
def test_terms_the_engine_would_refuse_are_a_422(api: ApiClient, terms: dict[str, Any], field: str) -> None:
    problem = _problem(api.request("POST", "/api/funds", json={**FUND, **terms}), "INVALID_FUND_TERMS")
    assert problem["field"] == field
    assert field in problem["detail"]


def test_paid_in_above_the_commitments_is_a_422(api: ApiClient) -> None:
    problem = _problem(
        api.request("POST", "/api/funds", json={**FUND, "paidIn": 1e8 + 1}), "INVALID_FUND_TERMS"
    )
    assert problem["field"] == "paidIn"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("reserveRatio", 0.96),
        ("fundLifeYears", 0.5),
        ("fundLifeYears", 26),
        ("investmentPeriodYears", 0.1),
        ("preferredReturn", -0.01),
        ("recyclingRatio", 0.6),
        ("managementFeeStepDownRate", 0.2),
        ("fundExpenseRatio", 0.3),
        ("distributed", -1),
        ("strategyId", 0),
    ],
)
def test_a_term_out_of_range_is_a_422_naming_it(api: ApiClient, field: str, value: float) -> None:
    problem = _problem(api.request("POST", "/api/funds", json={**FUND, field: value}), "INVALID_INPUT")
    assert field in {error["field"] for error in problem["errors"]}


def test_deleting_the_strategy_leaves_the_fund_without_one(api: ApiClient) -> None:
    strategy = _strategy(api)
    fund = api.request("POST", "/api/funds", json={**FUND, "strategyId": strategy}).json()
    with api.state.engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA foreign_keys = ON")
        connection.exec_driver_sql(f"DELETE FROM portfolio_strategies WHERE id = {strategy}")
    assert api.request("GET", f"/api/funds/{fund['id']}").json()["strategyId"] is None


@pytest.mark.parametrize("name", ENGINE_TERMS)
def test_each_term_has_the_engines_bounds(name: str) -> None:
    fund_schema = FundTerms.model_json_schema()["properties"][_camel(name)]
    engine_schema = SimulationConfig.model_json_schema(by_alias=True)["properties"][_camel(name)]
    assert _bounds(fund_schema) == _bounds(engine_schema)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _bounds(schema: dict[str, Any]) -> tuple[object, ...]:
    # An optional field is anyOf [the number, null]; the bounds sit on the number.
    number = next(
        (option for option in schema.get("anyOf", [schema]) if option.get("type") != "null"), schema
    )
    return tuple(
        float(number[key]) if key in number else None
        for key in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum")
    )
