"""Funds: create, read, keyset pages, conflicts."""

from __future__ import annotations

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
