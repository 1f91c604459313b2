"""Strategies: listing, 404 and optimistic locking on PUT."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import ApiClient


def test_put_with_a_stale_version_is_409_and_keeps_the_stored_strategy(api: ApiClient) -> None:
    created = api.request(
        "POST", "/api/portfolio/strategies", json={"name": "a", "stageAllocation": {"seed": 1}}
    ).json()
    path = f"/api/portfolio/strategies/{created['id']}"
    ok = api.request("PUT", path, json={"name": "b", "stageAllocation": {"growth": 1}, "version": 1})
    assert ok.status_code == 200
    stale = api.request("PUT", path, json={"name": "c", "stageAllocation": {"seed": 1}, "version": 1})
    assert stale.status_code == 409
    assert stale.json()["code"] == "VERSION_CONFLICT"
    stored = api.request("GET", path).json()
    assert stored["name"] == "b"
    assert stored["stageAllocation"] == {"growth": 1.0}
    assert stored["version"] == 2


def test_list_and_missing(api: ApiClient) -> None:
    for name in ("x", "y"):
        api.request("POST", "/api/portfolio/strategies", json={"name": name, "stageAllocation": {"seed": 1}})
    names = [s["name"] for s in api.request("GET", "/api/portfolio/strategies").json()["items"]]
    assert names == ["x", "y"]
    assert api.request("GET", "/api/portfolio/strategies/999").status_code == 404
    assert (
        api.request(
            "PUT", "/api/portfolio/strategies/999", json={"name": "z", "stageAllocation": {"seed": 1}}
        ).status_code
        == 404
    )


def test_every_bad_strategy_field_is_a_422_naming_it(api: ApiClient) -> None:
    created = api.request(
        "POST", "/api/portfolio/strategies", json={"name": "s", "stageAllocation": {"seed": 1}}
    )
    strategy = created.json()["id"]
    replace = {"name": "s", "stageAllocation": {"seed": 1}, "version": 1}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"name": "s\u0000"}, "name"),
        ({"name": "\ud800"}, "name"),
        ({"version": True}, "version"),
        ({"version": 2**31}, "version"),
        ({"version": 1.5}, "version"),
    ]
    for change, field in cases:
        document = json.dumps({**replace, **change})  # NUL and the lone surrogate escaped, as clients do
        response = api.request(
            "PUT",
            f"/api/portfolio/strategies/{strategy}",
            content=document.encode(),
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 422, response.text
        assert [error["field"] for error in response.json()["errors"]] == [field], change
    assert api.request("GET", f"/api/portfolio/strategies/{strategy}").json()["version"] == 1
