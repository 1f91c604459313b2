"""Companies: legacy-aware stage filter with keyset pages, and all-or-nothing allocation updates."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import insert, select

from fundmodel.apimodel import MAX_ROW_ID
from fundmodel.db.tables import portfolio_companies
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
