"""Company data a forecast needs: entry, ownership, last round, status and proceeds; create, read, PATCH."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert

from fundmodel.db.tables import portfolio_companies
from tests.conftest import ApiClient

FUND = {
    "name": "Forecast Data Fund",
    "vintageYear": 2022,
    "committedCapital": 5e7,
    "managementFeeRate": 0.02,
    "carriedInterestRate": 0.2,
}
FULL = {
    "name": "Helix",
    "stage": "series_a",
    "invested": 3_000_000,
    "entryDate": "2022-06-30",
    "ownership": 0.08,
    "lastRoundPostMoney": 60_000_000,
    "lastRoundDate": "2024-02-15",
}


def _fund(api: ApiClient) -> int:
    fund_id: int = api.request("POST", "/api/funds", json=FUND).json()["id"]
    return fund_id


def _problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


def test_created_company_carries_its_forecast_data(api: ApiClient) -> None:
    fund = _fund(api)
    created = api.request("POST", f"/api/funds/{fund}/companies", json=FULL)
    assert created.status_code == 201, created.text
    company = created.json()
    assert company["entryDate"] == "2022-06-30"
    assert company["ownership"] == 0.08
    assert company["lastRoundPostMoney"] == 60_000_000
    assert company["lastRoundDate"] == "2024-02-15"
    assert company["status"] == "active"
    assert company["realizedProceeds"] is None
    read = api.request("GET", f"/api/funds/{fund}/companies/{company['id']}").json()
    listed = api.request("GET", f"/api/funds/{fund}/companies").json()["items"]
    assert read == {key: value for key, value in company.items() if key != "warnings"}
    assert listed == [read]


def test_every_forecast_field_is_optional_and_null_when_not_given(api: ApiClient) -> None:
    fund = _fund(api)
    body = {"name": "Bare", "stage": "seed", "invested": 500_000}
    company = api.request("POST", f"/api/funds/{fund}/companies", json=body).json()
    assert company["status"] == "active"
    for field in ("entryDate", "ownership", "lastRoundPostMoney", "lastRoundDate", "realizedProceeds"):
        assert company[field] is None


def test_rows_written_before_the_migration_read_as_active_with_nulls(api: ApiClient) -> None:
    fund = _fund(api)
    with api.state.engine.begin() as connection:
        connection.execute(
            insert(portfolio_companies).values(
                fund_id=fund, name="Legacy", stage="Series A", invested=1.0, reserve_allocation=0
            )
        )
    (company,) = api.request("GET", f"/api/funds/{fund}/companies").json()["items"]
    assert company["status"] == "active"
    assert company["ownership"] is None
    assert company["canonicalStage"] == "series_a"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ownership": 0}, "ownership"),
        ({"ownership": 1.01}, "ownership"),
        ({"lastRoundPostMoney": 10}, "lastRoundPostMoney"),
        ({"realizedProceeds": -1, "status": "exited"}, "realizedProceeds"),
        ({"status": "sold"}, "status"),
        ({"entryDate": "2999-01-01"}, "entryDate"),
        ({"lastRoundDate": "1949-12-31"}, "lastRoundDate"),
        ({"entryDate": 20240101}, "entryDate"),
    ],
)
def test_out_of_range_company_data_is_a_422_naming_the_field(
    api: ApiClient, change: dict[str, Any], field: str
) -> None:
    fund = _fund(api)
    response = api.request("POST", f"/api/funds/{fund}/companies", json={**FULL, **change})
    problem = _problem(response, 422, "INVALID_INPUT")
    assert field in {error["field"] for error in problem["errors"]}


def test_a_future_date_is_refused_but_today_is_not(api: ApiClient) -> None:
    fund = _fund(api)
    today = datetime.now(UTC).date()
    tomorrow = (today + timedelta(days=1)).isoformat()
    assert api.request(
        "POST", f"/api/funds/{fund}/companies", json={**FULL, "entryDate": today.isoformat()}
    ).is_success
    refused = api.request("POST", f"/api/funds/{fund}/companies", json={**FULL, "entryDate": tomorrow})
    assert "to today" in _problem(refused, 422, "INVALID_INPUT")["detail"]


@pytest.mark.parametrize(
    "change",
    [{"realizedProceeds": 1_000_000}, {"status": "exited"}],
    ids=["proceeds-on-an-active-company", "exit-without-proceeds"],
)
def test_status_and_proceeds_must_agree(api: ApiClient, change: dict[str, Any]) -> None:
    fund = _fund(api)
    response = api.request("POST", f"/api/funds/{fund}/companies", json={**FULL, **change})
    problem = _problem(response, 422, "INVALID_COMPANY_DATA")
    assert problem["field"] == "realizedProceeds"
    assert "realizedProceeds" in problem["detail"]


def test_exited_and_written_off_companies_keep_their_proceeds(api: ApiClient) -> None:
    fund = _fund(api)
    exited = {**FULL, "name": "Sold", "status": "exited", "realizedProceeds": 12_500_000.5}
    written_off = {**FULL, "name": "Gone", "status": "written_off"}
    first = api.request("POST", f"/api/funds/{fund}/companies", json=exited).json()
    second = api.request("POST", f"/api/funds/{fund}/companies", json=written_off).json()
    assert (first["status"], first["realizedProceeds"]) == ("exited", 12_500_000.5)
    assert (second["status"], second["realizedProceeds"]) == ("written_off", None)


def test_patch_changes_only_what_is_sent_and_bumps_the_version(api: ApiClient) -> None:
    fund = _fund(api)
    company = api.request("POST", f"/api/funds/{fund}/companies", json=FULL).json()
    path = f"/api/funds/{fund}/companies/{company['id']}"
    patched = api.request(
        "PATCH", path, json={"version": 1, "lastRoundPostMoney": 90_000_000, "ownership": None}
    )
    assert patched.status_code == 200, patched.text
    after = patched.json()
    assert after["version"] == 2
    assert after["lastRoundPostMoney"] == 90_000_000
    assert after["ownership"] is None
    assert after["entryDate"] == FULL["entryDate"]
    assert after["invested"] == FULL["invested"]
    assert after["stage"] == "series_a"
    assert after["reserveAllocation"] == company["reserveAllocation"]
    assert api.request("GET", path).json() == after


def test_patch_with_a_stale_version_is_a_409_and_changes_nothing(api: ApiClient) -> None:
    fund = _fund(api)
    company = api.request("POST", f"/api/funds/{fund}/companies", json=FULL).json()
    path = f"/api/funds/{fund}/companies/{company['id']}"
    assert api.request("PATCH", path, json={"version": 1, "ownership": 0.1}).is_success
    stale = api.request("PATCH", path, json={"version": 1, "ownership": 0.2})
    problem = _problem(stale, 409, "VERSION_CONFLICT")
    assert problem["conflicts"] == [{"companyId": company["id"], "expectedVersion": 1, "currentVersion": 2}]
    assert api.request("GET", path).json()["ownership"] == 0.1


def test_patch_judges_status_and_proceeds_on_the_result(api: ApiClient) -> None:
    fund = _fund(api)
    company = api.request("POST", f"/api/funds/{fund}/companies", json=FULL).json()
    path = f"/api/funds/{fund}/companies/{company['id']}"
    exited = api.request("PATCH", path, json={"version": 1, "status": "exited", "realizedProceeds": 9e6})
    assert exited.json()["status"] == "exited"
    # Back to active while the stored proceeds stay: refused, naming the field to clear.
    refused = api.request("PATCH", path, json={"version": 2, "status": "active"})
    assert _problem(refused, 422, "INVALID_COMPANY_DATA")["field"] == "realizedProceeds"
    cleared = api.request("PATCH", path, json={"version": 2, "status": "active", "realizedProceeds": None})
    assert (cleared.json()["status"], cleared.json()["realizedProceeds"]) == ("active", None)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"version": 1, "invested": None}, "invested"),
        ({"version": 1, "status": None}, "status"),
        ({"ownership": 0.5}, "version"),
        ({"version": 1, "stage": "seed"}, "stage"),
    ],
)
def test_patch_refuses_null_required_fields_a_missing_version_and_the_stage(
    api: ApiClient, body: dict[str, Any], field: str
) -> None:
    fund = _fund(api)
    company = api.request("POST", f"/api/funds/{fund}/companies", json=FULL).json()
    response = api.request("PATCH", f"/api/funds/{fund}/companies/{company['id']}", json=body)
    problem = _problem(response, 422, "INVALID_INPUT")
    assert field in {error["field"] for error in problem["errors"]}


def test_patch_with_nothing_to_change_is_a_422(api: ApiClient) -> None:
    fund = _fund(api)
    company = api.request("POST", f"/api/funds/{fund}/companies", json=FULL).json()
    response = api.request("PATCH", f"/api/funds/{fund}/companies/{company['id']}", json={"version": 1})
    assert "nothing to update" in _problem(response, 422, "INVALID_INPUT")["detail"]


def test_a_company_of_another_fund_or_none_is_a_404(api: ApiClient) -> None:
    fund = _fund(api)
    other = api.request("POST", "/api/funds", json={**FUND, "name": "Other Fund"}).json()["id"]
    company = api.request("POST", f"/api/funds/{fund}/companies", json=FULL).json()
    for path in (f"/api/funds/{other}/companies/{company['id']}", f"/api/funds/{fund}/companies/424242"):
        assert api.request("GET", path).status_code == 404
        _problem(api.request("PATCH", path, json={"version": 1, "ownership": 0.5}), 404, "NOT_FOUND")
    _problem(api.request("GET", f"/api/funds/4242/companies/{company['id']}"), 404, "NOT_FOUND")
