"""Monte Carlo over HTTP: limits, engine config errors, reproducibility, the per-fund CSV answer."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import numpy as np
import pytest

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


def test_risk_loadings_leaving_no_idiosyncratic_risk_are_a_simulation_config_422(api: ApiClient) -> None:
    # Each loading is within its documented range; only their squares together exceed 0.95.
    response = api.request(
        "POST",
        "/api/monte-carlo/simulate",
        json={**TERMS, "riskModel": {"marketOnExits": 0.35, "qualityOnExits": 0.95}, "iterations": 50},
    )
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "INVALID_SIMULATION_CONFIG"
    assert body["errors"][0]["field"] == "riskModel.qualityOnExits"


def test_stage_profile_overrides_accept_aliases(api: ApiClient) -> None:
    body = {
        **TERMS,
        "stageProfiles": {"Seed": {"graduationRate": 0.5}},
        "iterations": 50,
        "seed": 1,
    }
    response = api.request("POST", "/api/monte-carlo/simulate", json=body)
    assert response.status_code == 200, response.text
    # Normalized by the validation layer, so flagged like any other deprecated spelling (mode warn).
    assert response.headers["deprecation"]
    [warning] = response.json()["warnings"]
    assert (warning["code"], warning["field"]) == ("DEPRECATED_ALIAS", "stageProfiles.Seed")


def _profiles(api: ApiClient, path: str, profiles: dict[str, Any]) -> Any:
    body: dict[str, Any] = {**TERMS, "stageProfiles": profiles, "iterations": 50, "seed": 1}
    if path.endswith("compare"):
        body = {
            "fundSize": TERMS["fundSize"],
            "stageProfiles": profiles,
            "alternatives": [{"label": "a", "stageDistribution": TERMS["stageDistribution"]}],
            "iterations": 50,
            "seed": 1,
        }
    return api.request("POST", path, json=body)


@pytest.mark.parametrize("path", ["/api/monte-carlo/simulate", "/api/monte-carlo/compare"])
@pytest.mark.parametrize("mode", ["off", "warn", "enforce"])
def test_two_profile_keys_for_one_stage_are_a_422_in_every_mode(api: ApiClient, mode: str, path: str) -> None:
    api.set_mode(mode)
    response = _profiles(api, path, {"seed": {"checkSize": 1e6}, "Seed": {"checkSize": 2e6}})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "DUPLICATE_STAGE"
    assert body["field"] == "stageProfiles"
    assert body["invalid"] == ["seed", "Seed"]
    assert "'seed'" in body["detail"]


@pytest.mark.parametrize("path", ["/api/monte-carlo/simulate", "/api/monte-carlo/compare"])
def test_unknown_profile_keys_follow_the_mode(api: ApiClient, path: str) -> None:
    profiles = {"mezzanine": {"checkSize": 1e6}}
    api.set_mode("off")
    silent = _profiles(api, path, profiles)
    assert silent.status_code == 200, silent.text
    assert silent.json()["warnings"] == []
    assert "deprecation" not in silent.headers
    api.set_mode("warn")
    warned = _profiles(api, path, profiles)
    assert warned.status_code == 200, warned.text
    [warning] = warned.json()["warnings"]
    assert warning["code"] == "UNKNOWN_STAGE"
    assert "override was ignored" in warning["message"]
    assert warned.headers["deprecation"]
    api.set_mode("enforce")
    rejected = _profiles(api, path, profiles)
    assert rejected.status_code == 400, rejected.text
    assert rejected.json()["code"] == "INVALID_STAGE"
    assert rejected.json()["invalid"] == ["mezzanine"]


def test_profile_keys_are_counted_and_logged_like_every_stage_input(
    api: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.set_mode("warn")
    labels = {
        "endpoint": "/api/monte-carlo/simulate",
        "mode": "warn",
        "outcome": "would_reject",
        "cohort": "baseline",
    }
    name = "fundmodel_stage_validations_total"
    before = api.state.registry.get_sample_value(name, labels)
    logged: list[dict[str, Any]] = []
    offenders = api.state.validator._offenders
    original = offenders.log_offender

    def spy(**event: Any) -> bool:
        logged.append(event)
        return bool(original(**event))

    monkeypatch.setattr(offenders, "log_offender", spy)
    response = _profiles(api, "/api/monte-carlo/simulate", {"seed": {}, "mezzanine": {}})
    assert response.status_code == 200, response.text
    assert api.state.registry.get_sample_value(name, labels) == before + 1
    assert [event["offending_names"] for event in logged] == [("mezzanine",)]


def test_no_profile_overrides_is_not_a_validation(api: ApiClient) -> None:
    name = "fundmodel_stage_validation_duration_seconds_count"
    labels = {"endpoint": "/api/monte-carlo/simulate", "mode": "warn"}
    before = api.state.registry.get_sample_value(name, labels)
    response = api.request("POST", "/api/monte-carlo/simulate", json={**TERMS, "iterations": 50})
    assert response.status_code == 200
    assert api.state.registry.get_sample_value(name, labels) == before + 1  # the distribution only


@pytest.mark.parametrize("path", ["/api/monte-carlo/simulate", "/api/monte-carlo/compare"])
def test_meaningless_magnitudes_and_non_numbers_are_a_422_naming_the_field(api: ApiClient, path: str) -> None:
    # 5e-324 passed the schema and ended in a 500 (ArithmeticError) inside the engine.
    if path.endswith("compare"):
        base: dict[str, Any] = {
            "fundSize": 5e7,
            "alternatives": [{"label": "a", "stageDistribution": {"seed": 1}}],
        }
    else:
        base = dict(TERMS)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"fundSize": 5e-324}, "fundSize"),
        ({"fundSize": 1e308}, "fundSize"),
        ({"stageProfiles": {"seed": {"checkSize": 5e-324}}}, "stageProfiles.seed.checkSize"),
        (
            {"stageProfiles": {"seed": {"exitMultipleMedian": 5e-324}}},
            "stageProfiles.seed.exitMultipleMedian",
        ),
        ({"stageProfiles": {"seed": {"yearsToExit": 5e-324}}}, "stageProfiles.seed.yearsToExit"),
        ({"investmentPeriodYears": 5e-324}, "investmentPeriodYears"),
        ({"fundSize": True}, "fundSize"),
        ({"catchUp": True}, "catchUp"),
        ({"stageProfiles": {"seed": {"exitRate": False}}}, "stageProfiles.seed.exitRate"),
        ({"iterations": True}, "iterations"),
        ({"iterations": 1000.5}, "iterations"),
        ({"seed": True}, "seed"),
    ]
    for change, field in cases:
        response = api.request("POST", path, json={**base, "iterations": 50, **change})
        assert response.status_code == 422, (change, response.text)
        assert field in [error["field"] for error in response.json()["errors"]], change


def test_a_label_with_nul_is_a_422(api: ApiClient) -> None:
    document = {
        "fundSize": 5e7,
        "iterations": 50,
        "alternatives": [{"label": "a\u0000", "stageDistribution": {"seed": 1}}],
    }
    response = api.request(
        "POST",
        "/api/monte-carlo/compare",
        content=json.dumps(document).encode(),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert [error["field"] for error in response.json()["errors"]] == ["alternatives.0.label"]


def test_json_integers_are_accepted_for_every_number(api: ApiClient) -> None:
    body = {
        "fundSize": 50_000_000,
        "stageDistribution": {"seed": 1},
        "catchUp": 1,
        "stageProfiles": {"seed": {"checkSize": 1_000_000, "exitRate": 0}},
        "iterations": 50,
        "seed": 3,
    }
    response = api.request("POST", "/api/monte-carlo/simulate", json=body)
    assert response.status_code == 200, response.text


def _csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_accept_text_csv_streams_one_row_per_fund_matching_the_json_summary(api: ApiClient) -> None:
    body = {**TERMS, "iterations": 2_500, "seed": 5}
    answer = api.request("POST", "/api/monte-carlo/simulate", json=body, headers={"Accept": "text/csv"})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["x-simulation-seed"] == "5"
    rows = _csv_rows(answer.text)
    assert [int(row["fund"]) for row in rows] == list(range(2_500))
    summary = api.request("POST", "/api/monte-carlo/simulate", json=body).json()["result"]
    for key in ("netTvpi", "dpi", "netIrr", "grossMoic"):
        values = np.array([float(row[key]) for row in rows])
        assert float(np.mean(values)) == pytest.approx(summary[key]["mean"], rel=1e-12)
        assert float(np.percentile(values, 50)) == pytest.approx(summary[key]["p50"], rel=1e-12)
    assert float(np.mean([float(row["paidIn"]) for row in rows])) == pytest.approx(
        summary["capital"]["paidIn"], rel=1e-12
    )


def test_a_drawn_seed_is_reported_and_reproduces_the_table(api: ApiClient) -> None:
    headers = {"Accept": "text/csv"}
    first = api.request(
        "POST", "/api/monte-carlo/simulate", json={**TERMS, "iterations": 50}, headers=headers
    )
    seed = int(first.headers["x-simulation-seed"])
    again = api.request(
        "POST",
        "/api/monte-carlo/simulate",
        json={**TERMS, "iterations": 50, "seed": seed},
        headers=headers,
    )
    assert again.text == first.text


@pytest.mark.parametrize(
    ("accept", "csv_expected"),
    [
        ("text/csv", True),
        ("text/csv;q=0.9, application/json;q=0.5", True),
        ("application/json, text/csv;q=0.5", False),
        ("text/csv;q=0", False),
        ("*/*", False),
        ("application/json", False),
    ],
)
def test_the_accept_header_chooses_between_json_and_csv(
    api: ApiClient, accept: str, csv_expected: bool
) -> None:
    answer = api.request(
        "POST",
        "/api/monte-carlo/simulate",
        json={**TERMS, "iterations": 20, "seed": 1},
        headers={"Accept": accept},
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv" if csv_expected else "application/json")


def test_csv_answers_obey_the_iteration_limit_with_a_problem(api: ApiClient) -> None:
    answer = api.request(
        "POST",
        "/api/monte-carlo/simulate",
        json={**TERMS, "iterations": 100_001},
        headers={"Accept": "text/csv"},
    )
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["code"] == "ITERATIONS_LIMIT"


def test_openapi_documents_the_csv_answer(api: ApiClient) -> None:
    operation = api.request("GET", "/openapi.json").json()["paths"]["/api/monte-carlo/simulate"]["post"]
    success = operation["responses"]["200"]
    assert "text/csv; charset=utf-8" in success["content"]
    assert "application/json" in success["content"]
    assert "X-Simulation-Seed" in success["headers"]
