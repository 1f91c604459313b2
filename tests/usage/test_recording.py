"""Requests through the real app are counted per client, endpoint, field, kind and spelling, in every mode.

Counts reach the database at the end of the app's lifespan (the exit flush) here; the periodic flush is
covered by the gunicorn test and tests/usage/test_recorder.py.
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from fundmodel.auth.service import authenticate_hash, hash_key
from fundmodel.db.engine import create_db_engine
from fundmodel.db.usage_tables import stage_usage
from tests.conftest import ApiClient, open_api_client, settings_for

STRATEGIES = "/api/portfolio/strategies"

FUND = {
    "name": "Usage Fund",
    "vintageYear": 2024,
    "committedCapital": 1e8,
    "managementFeeRate": 0.02,
    "carriedInterestRate": 0.2,
}

Row = tuple[str, str, str, str]
"""(endpoint, field, kind, spelling)"""


def _stored(database_url: str, client_id: str) -> Counter[Row]:
    engine = create_db_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(stage_usage).where(stage_usage.c.client_id == client_id)).all()
    finally:
        engine.dispose()
    return Counter({(row.endpoint, row.field, row.kind, row.spelling): int(row.count) for row in rows})


def _strategy(allocation: dict[str, float]) -> dict[str, object]:
    return {"name": "s", "stageAllocation": allocation}


def test_every_kind_is_counted_and_malformed_input_is_not(database_url: str) -> None:
    api, close = open_api_client(settings_for(database_url, stage_usage_flush_seconds=300))
    try:
        sent = [
            ({"seed": 0.5, "growth": 0.5}, 201),  # valid
            ({"seed": 0.5, "growth": 0.5}, 201),  # valid
            ({"Seed": 0.5, "growth": 0.5}, 201),  # alias
            ({"seed": 0.5, "moonshot": 0.5}, 201),  # unknown, dropped (warn)
            ({"seed": 0.5, "growth": 0.6}, 201),  # sum, renormalized (warn)
            ({"seed": "lots"}, 422),  # malformed: not counted
        ]
        for allocation, status in sent:
            assert api.request("POST", STRATEGIES, json=_strategy(allocation)).status_code == status
        api.set_mode("enforce")
        api.state.mode_store.refresh()
        assert (
            api.request(
                "POST", STRATEGIES, json=_strategy({"seed": 0.5, "moon": 0.3, "mars": 0.2})
            ).status_code
            == 400
        )
        assert (
            api.request("POST", STRATEGIES, json=_strategy({"Seed": 0.5, "growth": 0.6})).status_code == 400
        )
        client_id = _authenticated_client_id(api)
    finally:
        close()  # the lifespan's exit flush writes the counts
    field = "stageAllocation"
    assert _stored(database_url, client_id) == {
        (STRATEGIES, field, "valid", ""): 2,
        (STRATEGIES, field, "alias", "Seed"): 1,
        (STRATEGIES, field, "unknown", "moonshot"): 1,
        (STRATEGIES, field, "sum", ""): 1,
        (STRATEGIES, field, "rejected", "moon"): 1,
        (STRATEGIES, field, "rejected", "mars"): 1,
        # A bad sum is the reason of the second 400; its accepted alias is no reason.
        (STRATEGIES, field, "rejected", ""): 1,
    }


def test_a_single_stage_field_and_override_keys_are_counted_under_their_field(database_url: str) -> None:
    api, close = open_api_client(settings_for(database_url, stage_usage_flush_seconds=300))
    try:
        fund = api.request("POST", "/api/funds", json=FUND)
        assert fund.status_code == 201, fund.text
        companies = f"/api/funds/{fund.json()['id']}/companies"
        assert api.request("GET", companies, params={"stage": "Series A"}).status_code == 200
        client_id = _authenticated_client_id(api)
    finally:
        close()
    assert _stored(database_url, client_id) == {
        ("/api/funds/{fundId}/companies", "stage", "alias", "Series A"): 1
    }


def _authenticated_client_id(api: ApiClient) -> str:
    """The client id of the test's API key (``key-<id>``)."""
    principal = authenticate_hash(api.state.engine, hash_key(api.api_key))
    assert principal is not None
    return principal.client_id
