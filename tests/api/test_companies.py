"""Companies: legacy-aware stage filter with keyset pages, and all-or-nothing allocation updates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert, select
from typer.testing import CliRunner

from fundmodel.apimodel import MAX_ROW_ID
from fundmodel.auth.service import create_key, list_keys
from fundmodel.cli.db_ops import register_db_ops
from fundmodel.db.engine import create_db_engine
from fundmodel.db.tables import portfolio_companies
from fundmodel.ops.constraints import constraints_present
from fundmodel.ops.stage_columns import stage_columns, stage_metadata
from tests.api.servers import service_env, uvicorn_server
from tests.conftest import ApiClient


def _fund(api: ApiClient) -> int:
    body = {
        "name": "Companies Fund",
        "vintageYear": 2024,
        "committedCapital": 1e8,
        "managementFeeRate": 0.02,
        "carriedInterestRate": 0.2,
    }
    fund_id: int = api.request("POST", "/api/funds", json=body).json()["id"]
    return fund_id


def _insert_legacy(api: ApiClient, fund: int, stages: list[str]) -> None:
    with api.state.engine.begin() as connection:
        connection.execute(
            insert(portfolio_companies),
            [
                {"fund_id": fund, "name": f"c{i}", "stage": stage, "invested": 1.0, "reserve_allocation": 0}
                for i, stage in enumerate(stages)
            ],
        )


def test_filter_matches_every_spelling_across_pages(api: ApiClient) -> None:
    fund = _fund(api)
    seed_spellings = [" seed ", "SEED", "Seed", "seed", "seed stage", "Seed Round"]
    _insert_legacy(api, fund, seed_spellings + ["Series A", "series-c+", "Pre Seed"] * 2)
    found: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"stage": "seed", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = api.request("GET", f"/api/funds/{fund}/companies", params=params).json()
        found.extend(item["stage"] for item in page["items"])
        assert all(item["canonicalStage"] == "seed" for item in page["items"])
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert sorted(found) == sorted(seed_spellings)


def test_filter_by_alias_matches_the_same_companies(api: ApiClient) -> None:
    fund = _fund(api)
    _insert_legacy(api, fund, ["series-c+", "Series C", "series_c", "Series B"])
    by_alias = api.request("GET", f"/api/funds/{fund}/companies", params={"stage": "Series C+"})
    assert sorted(item["stage"] for item in by_alias.json()["items"]) == sorted(
        ["series-c+", "Series C", "series_c"]
    )


def test_companies_of_a_missing_fund_is_404(api: ApiClient) -> None:
    assert api.request("GET", "/api/funds/4242/companies").status_code == 404
    create = api.request(
        "POST", "/api/funds/4242/companies", json={"name": "x", "stage": "seed", "invested": 1}
    )
    assert create.status_code == 404


def _companies(api: ApiClient, fund: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = api.request("GET", f"/api/funds/{fund}/companies").json()["items"]
    return items


def test_allocations_update_all_and_bump_versions(api: ApiClient) -> None:
    fund = _fund(api)
    _insert_legacy(api, fund, ["seed", "Series A"])
    first, second = _companies(api, fund)
    response = api.request(
        "PATCH",
        f"/api/funds/{fund}/allocations",
        json={
            "allocations": [
                {"companyId": first["id"], "reserveAllocation": 10.5, "version": 1},
                {"companyId": second["id"], "reserveAllocation": 20.0, "version": 1},
            ]
        },
    )
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [(i["reserveAllocation"], i["version"]) for i in items] == [(10.5, 2), (20.0, 2)]


def test_allocations_conflict_changes_nothing(api: ApiClient) -> None:
    fund = _fund(api)
    _insert_legacy(api, fund, ["seed", "Series A"])
    first, second = _companies(api, fund)
    response = api.request(
        "PATCH",
        f"/api/funds/{fund}/allocations",
        json={
            "allocations": [
                {"companyId": first["id"], "reserveAllocation": 99.0, "version": 1},
                {"companyId": second["id"], "reserveAllocation": 99.0, "version": 7},
            ]
        },
    )
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "VERSION_CONFLICT"
    assert body["conflicts"] == [{"companyId": second["id"], "expectedVersion": 7, "currentVersion": 1}]
    with api.state.engine.connect() as connection:
        rows = connection.execute(
            select(portfolio_companies.c.reserve_allocation, portfolio_companies.c.version).where(
                portfolio_companies.c.fund_id == fund
            )
        ).all()
    assert [tuple(row) for row in rows] == [(0.0, 1), (0.0, 1)]


def test_allocations_unknown_company_is_404_and_duplicates_422(api: ApiClient) -> None:
    fund = _fund(api)
    _insert_legacy(api, fund, ["seed"])
    (company,) = _companies(api, fund)
    missing = api.request(
        "PATCH",
        f"/api/funds/{fund}/allocations",
        json={
            "allocations": [
                {"companyId": company["id"], "reserveAllocation": 1, "version": 1},
                {"companyId": 987654, "reserveAllocation": 1, "version": 1},
            ]
        },
    )
    assert missing.status_code == 404
    assert "987654" in missing.json()["detail"]
    duplicate = api.request(
        "PATCH",
        f"/api/funds/{fund}/allocations",
        json={
            "allocations": [
                {"companyId": company["id"], "reserveAllocation": 1, "version": 1},
                {"companyId": company["id"], "reserveAllocation": 2, "version": 1},
            ]
        },
    )
    assert duplicate.status_code == 422
    assert duplicate.json()["code"] == "DUPLICATE_COMPANY"


def _post_json(api: ApiClient, method: str, path: str, document: Any) -> Any:
    # json.dumps escapes NUL and lone surrogates (\u0000, \ud800) exactly as a client's encoder does.
    return api.request(
        method, path, content=json.dumps(document).encode(), headers={"content-type": "application/json"}
    )


def _invalid_fields(response: Any) -> list[str]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "INVALID_INPUT"
    return [error["field"] for error in body["errors"]]


def test_every_bad_company_field_is_a_422_naming_it(api: ApiClient) -> None:
    fund = _fund(api)
    company = {"name": "NewCo", "stage": "seed", "invested": 1000.0}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"name": "New\u0000Co"}, "name"),
        ({"name": "\udfff"}, "name"),
        ({"invested": True}, "invested"),
        ({"reserveAllocation": False}, "reserveAllocation"),
        ({"invested": "1000"}, "invested"),
    ]
    for change, field in cases:
        response = _post_json(api, "POST", f"/api/funds/{fund}/companies", {**company, **change})
        assert _invalid_fields(response) == [field], change
    assert _companies(api, fund) == []


def test_allocation_ids_and_versions_have_their_columns_bounds(api: ApiClient) -> None:
    # companyId >= 2^31 was a 500 on PostgreSQL (integer out of range), >= 2^63 on SQLite too.
    fund = _fund(api)
    created = api.request(
        "POST", f"/api/funds/{fund}/companies", json={"name": "A", "stage": "seed", "invested": 1.0}
    ).json()
    valid = {"companyId": created["id"], "reserveAllocation": 5.0, "version": 1}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"companyId": MAX_ROW_ID + 1}, "companyId"),
        ({"companyId": 2**63}, "companyId"),
        ({"companyId": 0}, "companyId"),
        ({"companyId": True}, "companyId"),
        ({"companyId": created["id"] + 0.5}, "companyId"),
        ({"version": MAX_ROW_ID + 1}, "version"),
        ({"version": True}, "version"),
        ({"reserveAllocation": True}, "reserveAllocation"),
    ]
    for change, field in cases:
        response = _post_json(
            api, "PATCH", f"/api/funds/{fund}/allocations", {"allocations": [{**valid, **change}]}
        )
        assert _invalid_fields(response) == [f"allocations.0.{field}"], change
    missing = {"allocations": [{**valid, "companyId": MAX_ROW_ID}]}
    assert api.request("PATCH", f"/api/funds/{fund}/allocations", json=missing).status_code == 404
    assert _companies(api, fund)[0]["version"] == 1  # nothing was written


# ------------------------------------------------------------------ the canonical-stage guard in every mode


def _constrain_stages(database_url: str) -> None:
    """The operator's real `fundmodel db constrain-stages`, on this test's database."""
    db = typer.Typer()
    register_db_ops(db)
    result = CliRunner().invoke(db, ["constrain-stages", "--database-url", database_url])
    assert result.exit_code == 0, result.output
    engine = create_db_engine(database_url)
    try:
        assert all(constraints_present(engine, stage_columns(stage_metadata())).values())
    finally:
        engine.dispose()


def _http_count(api: ApiClient, status_class: str) -> float:
    value = api.state.registry.get_sample_value(
        "fundmodel_http_requests_total",
        {"route": "/api/funds/{fundId}/companies", "method": "POST", "status_class": status_class},
    )
    return value or 0.0


@pytest.mark.parametrize("mode", ["off", "warn"])
def test_unknown_stage_behind_the_guard_is_a_400_naming_it_never_a_500(
    api: ApiClient, database_url: str, mode: str
) -> None:
    fund = _fund(api)
    _constrain_stages(database_url)
    api.set_mode(mode)
    before_5xx = _http_count(api, "5xx")
    body = {"name": "Mezz Co", "stage": " mezzanine ", "invested": 1}
    refused = api.request("POST", f"/api/funds/{fund}/companies", json=body)
    assert refused.status_code == 400, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["code"] == "STAGE_GUARD_REJECTED"
    assert problem["type"] == "urn:fundmodel:problem:stage-guard-rejected"
    assert problem["field"] == "stage"
    assert problem["invalid"] == ["mezzanine"]
    assert "constrain-stages" in problem["detail"]
    assert problem["validStages"][0] == "pre_seed"
    assert _companies(api, fund) == []
    assert _http_count(api, "5xx") == before_5xx
    assert _http_count(api, "4xx") >= 1
    # Known names are still stored canonical in the same mode (aliases normalized first).
    for sent in ("series_a", "Series A"):
        created = api.request("POST", f"/api/funds/{fund}/companies", json={**body, "stage": sent})
        assert created.status_code == 201, created.text
        assert created.json()["stage"] == "series_a"


def test_enforce_behind_the_guard_still_answers_invalid_stage(api: ApiClient, database_url: str) -> None:
    fund = _fund(api)
    _constrain_stages(database_url)
    api.set_mode("enforce")
    body = {"name": "Mezz Co", "stage": "mezzanine", "invested": 1}
    refused = api.request("POST", f"/api/funds/{fund}/companies", json=body)
    assert refused.status_code == 400
    assert refused.json()["code"] == "INVALID_STAGE"


def test_allocations_behind_the_guard_are_unaffected(api: ApiClient, database_url: str) -> None:
    fund = _fund(api)
    created = api.request(
        "POST", f"/api/funds/{fund}/companies", json={"name": "A", "stage": "seed", "invested": 1}
    ).json()
    _constrain_stages(database_url)
    change = {"companyId": created["id"], "reserveAllocation": 5.0, "version": created["version"]}
    updated = api.request("PATCH", f"/api/funds/{fund}/allocations", json={"allocations": [change]})
    assert updated.status_code == 200, updated.text
    assert updated.json()["items"][0]["reserveAllocation"] == 5.0


def test_a_legacy_row_under_a_not_valid_guard_is_a_409_not_a_500(api: ApiClient, database_url: str) -> None:
    """PostgreSQL checks a CHECK on every updated row: a legacy value that slipped in before VALIDATE
    (constrain-stages then keeps the constraint NOT VALID) makes that row un-updatable until normalized."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite's guard triggers fire only when the stage itself is written")
    fund = _fund(api)
    _insert_legacy(api, fund, ["Series A"])
    with api.state.engine.begin() as connection:
        connection.exec_driver_sql(
            "ALTER TABLE portfolio_companies ADD CONSTRAINT ck_portfolio_companies_stage_canonical "
            "CHECK (stage IN ('seed', 'series_a')) NOT VALID"
        )
    company = _companies(api, fund)[0]
    change = {"companyId": company["id"], "reserveAllocation": 5.0, "version": company["version"]}
    refused = api.request("PATCH", f"/api/funds/{fund}/allocations", json={"allocations": [change]})
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "STORED_STAGE_NOT_CANONICAL"
    assert _companies(api, fund)[0]["version"] == company["version"]


@pytest.mark.slow
def test_a_real_server_behind_the_guard_answers_400_in_warn_and_records_the_key_use(
    database_url: str, tmp_path: Path
) -> None:
    """The drill's case end to end: uvicorn in production on a guarded database, warn, an unknown stage."""
    engine = create_db_engine(database_url)
    try:
        key = create_key(engine, "flooding-client")
    finally:
        engine.dispose()
    _constrain_stages(database_url)
    env = service_env(database_url, APP_ENV="production", STAGE_VALIDATION_MODE="warn")
    headers = {"Authorization": f"Bearer {key.secret}"}
    with (
        uvicorn_server(env, tmp_path / "server.log") as base,
        httpx.Client(base_url=base, timeout=30) as client,
    ):
        fund = {
            "name": "Guarded Fund",
            "vintageYear": 2024,
            "committedCapital": 1e8,
            "managementFeeRate": 0.02,
            "carriedInterestRate": 0.2,
        }
        fund_id = client.post("/api/funds", json=fund, headers=headers).json()["id"]
        for _ in range(3):
            refused = client.post(
                f"/api/funds/{fund_id}/companies",
                json={"name": "Mezz", "stage": "mezzanine", "invested": 1},
                headers=headers,
            )
            assert refused.status_code == 400, refused.text
            assert refused.json()["code"] == "STAGE_GUARD_REJECTED"
            assert refused.headers["X-Stage-Validation-Mode"] == "warn"
        metrics = client.get("/metrics").text
    posts = {
        sample.labels["status_class"]: sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == "fundmodel_http_requests_total"
        and sample.labels.get("route") == "/api/funds/{fundId}/companies"
        and sample.labels.get("method") == "POST"
    }
    assert posts.get("4xx") == 3
    assert posts.get("5xx", 0) == 0
    engine = create_db_engine(database_url)
    try:
        (only,) = list_keys(engine)
    finally:
        engine.dispose()
    assert only.name == "flooding-client"
    assert only.last_used_at is not None  # recorded by the server's key lookup
