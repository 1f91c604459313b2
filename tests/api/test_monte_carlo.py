"""Monte Carlo over HTTP: limits, engine config errors, reproducibility."""

from __future__ import annotations

from typing import Any

from tests.conftest import ApiClient

TERMS: dict[str, Any] = {"fundSize": 5e7, "stageDistribution": {"seed": 0.7, "series_a": 0.3}}


def test_same_seed_same_result(api: ApiClient) -> None:
    body = {**TERMS, "iterations": 200, "seed": 11}
    first = api.request("POST", "/api/monte-carlo/simulate", json=body).json()["result"]
    second = api.request("POST", "/api/monte-carlo/simulate", json=body).json()["result"]
    assert first == second
    assert first["engine"]["seed"] == 11
    assert first["engine"]["iterations"] == 200


def test_iterations_over_the_server_limit_is_422(api: ApiClient) -> None:
    response = api.request("POST", "/api/monte-carlo/simulate", json={**TERMS, "iterations": 100_001})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "ITERATIONS_LIMIT"
    assert "100,000" in body["detail"]


def test_compare_work_limit_and_alternative_count(api: ApiClient) -> None:
    alternatives = [{"label": str(i), "stageDistribution": {"seed": 1}} for i in range(4)]
    too_much = api.request(
        "POST",
        "/api/monte-carlo/compare",
        json={"fundSize": 5e7, "alternatives": alternatives, "iterations": 100_000},
    )
    assert too_much.status_code == 422
    assert too_much.json()["code"] == "ITERATIONS_LIMIT"
    too_many = api.request(
        "POST",
        "/api/monte-carlo/compare",
        json={"fundSize": 5e7, "alternatives": alternatives * 3, "iterations": 100},
    )
    assert too_many.status_code == 422
    assert too_many.json()["code"] == "INVALID_INPUT"


def test_inconsistent_terms_are_a_simulation_config_422(api: ApiClient) -> None:
    response = api.request(
        "POST",
        "/api/monte-carlo/simulate",
        json={**TERMS, "investmentPeriodYears": 12, "fundLifeYears": 10, "iterations": 50},
    )
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "INVALID_SIMULATION_CONFIG"
    assert "investmentPeriodYears" in body["detail"]


def test_stage_profile_overrides_accept_aliases(api: ApiClient) -> None:
    body = {
        **TERMS,
        "stageProfiles": {"Seed": {"graduationRate": 0.5}},
        "iterations": 50,
        "seed": 1,
    }
    response = api.request("POST", "/api/monte-carlo/simulate", json=body)
    assert response.status_code == 200, response.text
