"""Funds: create, read, keyset pages, conflicts."""

from __future__ import annotations

import base64
import json
from typing import Any

from fundmodel.apimodel import MAX_ROW_ID
from fundmodel.pagination import encode_cursor
from tests.conftest import ApiClient

FUND = {
    "name": "Alpha Fund",
    "vintageYear": 2024,
    "committedCapital": 1e8,
    "managementFeeRate": 0.02,
    "carriedInterestRate": 0.2,
}


def test_create_get_and_conflict(api: ApiClient) -> None:
    created = api.request("POST", "/api/funds", json=FUND)
    assert created.status_code == 201, created.text
    fund = created.json()
    assert fund["name"] == "Alpha Fund"
    assert fund["committedCapital"] == 1e8
    assert fund["createdAt"].endswith("Z") or fund["createdAt"].endswith("+00:00")
    assert api.request("GET", f"/api/funds/{fund['id']}").json() == fund
    duplicate = api.request("POST", "/api/funds", json=FUND)
    assert duplicate.status_code == 409
    assert duplicate.json()["code"] == "CONFLICT"


def test_keyset_pages_cover_every_fund_once(api: ApiClient) -> None:
    for number in range(7):
        assert api.request("POST", "/api/funds", json={**FUND, "name": f"F{number}"}).is_success
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = api.request("GET", "/api/funds", params=params).json()
        seen.extend(item["id"] for item in page["items"])
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert len(seen) == 7
    assert seen == sorted(set(seen))


def test_a_forged_cursor_is_a_422(api: ApiClient) -> None:
    response = api.request("GET", "/api/funds", params={"cursor": "not-a-cursor!"})
    assert response.status_code == 422
    assert response.json()["code"] == "INVALID_CURSOR"


def _invalid_fields(response: Any) -> list[str]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "INVALID_INPUT"
    return [error["field"] for error in body["errors"]]


def test_every_bad_fund_field_is_a_422_naming_it(api: ApiClient) -> None:
    # On PostgreSQL a NUL reached the database (500); on both, booleans were taken for numbers.
    cases: list[tuple[dict[str, Any], str]] = [
        ({"name": "Alpha\u0000Fund"}, "name"),
        ({"name": "\ud800"}, "name"),
        ({"vintageYear": True}, "vintageYear"),
        ({"vintageYear": 2024.5}, "vintageYear"),
        ({"committedCapital": True}, "committedCapital"),
        ({"committedCapital": 5e-324}, "committedCapital"),  # rounds to 0.00 in the money column
        ({"managementFeeRate": False}, "managementFeeRate"),
        ({"carriedInterestRate": "0.2"}, "carriedInterestRate"),
    ]
    for change, field in cases:
        body = json.dumps({**FUND, **change})  # escapes NUL and the lone surrogate as a client would
        response = api.request(
            "POST", "/api/funds", content=body.encode(), headers={"content-type": "application/json"}
        )
        assert _invalid_fields(response) == [field], change
    assert api.request("GET", "/api/funds").json()["items"] == []
    accepted = api.request("POST", "/api/funds", json={**FUND, "committedCapital": 100_000_000})
    assert accepted.status_code == 201, accepted.text  # a JSON integer is a number
    # ... and an integral JSON number is an integer, as JSON Schema (and generated clients) count it.
    integral = api.request("POST", "/api/funds", json={**FUND, "name": "Beta", "vintageYear": 2024.0})
    assert integral.status_code == 201, integral.text
    assert integral.json()["vintageYear"] == 2024


def test_a_cursor_carrying_an_id_no_row_can_have_is_a_422_on_every_list(api: ApiClient) -> None:
    # A tampered cursor with a big integer reached the database (500: out of range on both backends).
    fund = api.request("POST", "/api/funds", json=FUND).json()["id"]
    lists = ["/api/funds", "/api/portfolio/strategies", f"/api/funds/{fund}/companies"]
    for path in lists:
        for after in (MAX_ROW_ID + 1, 2**63, 10**30, -1, 1.5, True, "1", None):
            cursor = base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode().rstrip("=")
            response = api.request("GET", path, params={"cursor": cursor})
            assert response.status_code == 422, (path, after, response.text)
            assert response.json()["code"] == "INVALID_CURSOR"
            assert response.json()["field"] == "cursor"
        last_page = api.request("GET", path, params={"cursor": encode_cursor(MAX_ROW_ID)})
        assert last_page.status_code == 200, last_page.text
        assert last_page.json()["items"] == []
