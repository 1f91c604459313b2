"""The usage views over real ASGI and a real database (SQLite and PostgreSQL), rows inserted directly.

``GET /api/deprecations/usage``: a client sees its own usage and never another's; ``GET
/_ops/stage-validation/usage``: every client, ranked, named by key name and prefix, never by the key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fundmodel.auth.models import CreatedKey
from fundmodel.auth.service import create_key
from tests.conftest import ApiClient, open_api_client, settings_for
from tests.usage.test_service import insert_usage, usage_row

OWN = "/api/deprecations/usage"
OPS = "/_ops/stage-validation/usage"
ADMIN_TOKEN = "admin-" + "u" * 40
COMPANIES = "/api/funds/{fundId}/companies"
SIMULATE = "/api/monte-carlo/simulate"
TODAY = datetime.now(UTC).date()


@pytest.fixture
def api(database_url: str) -> Iterator[ApiClient]:
    client, close = open_api_client(
        settings_for(database_url, admin_token=ADMIN_TOKEN, stage_usage_retention_days=90)
    )
    yield client
    close()


@pytest.fixture
def two_keys(api: ApiClient) -> tuple[CreatedKey, CreatedKey]:
    """Two clients with usage: ``alpha`` sent an alias and an unknown name, ``beta`` more, rejected."""
    alpha = create_key(api.state.engine, "alpha-client")
    beta = create_key(api.state.engine, "beta-client")
    insert_usage(
        api.state.engine,
        usage_row(f"key-{alpha.key_id}", "alias", 5, day=TODAY, endpoint=COMPANIES, spelling="Series-A"),
        usage_row(f"key-{alpha.key_id}", "unknown", 2, day=TODAY, endpoint=SIMULATE, spelling="seriesz"),
        usage_row(f"key-{alpha.key_id}", "valid", 400, day=TODAY, endpoint=COMPANIES),
        usage_row(f"key-{beta.key_id}", "rejected", 30, day=TODAY, endpoint=COMPANIES, spelling="Serie Z"),
        usage_row(f"key-{beta.key_id}", "sum", 4, day=TODAY - timedelta(days=10), endpoint=SIMULATE),
    )
    return alpha, beta


def as_key(api: ApiClient, key: CreatedKey, path: str, **params: Any) -> Any:
    return api.http.get(path, params=params, headers={"Authorization": f"Bearer {key.secret}"})


def as_admin(api: ApiClient, path: str, *, token: str = ADMIN_TOKEN, **params: Any) -> Any:
    return api.http.get(path, params=params, headers={"Authorization": f"Bearer {token}"})


def test_a_client_sees_its_own_usage_with_what_to_send_instead(
    api: ApiClient, two_keys: tuple[CreatedKey, CreatedKey]
) -> None:
    alpha, _ = two_keys

    response = as_key(api, alpha, OWN)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["clientName"] == "alpha-client"
    assert body["total"] == 7
    assert body["truncated"] is False
    assert body["retentionDays"] == 90
    assert body["since"] == (TODAY - timedelta(days=30)).isoformat()
    assert body["sunsetAt"].startswith("2027-06-01")
    alias, unknown = body["usage"]
    assert alias | {"firstSeenAt": None, "lastSeenAt": None} == {
        "endpoint": COMPANIES,
        "field": "stage",
        "kind": "alias",
        "spelling": "Series-A",
        "count": 5,
        "firstSeenAt": None,
        "lastSeenAt": None,
        "sendInstead": "series_a",
        "suggestions": [],
    }
    assert (unknown["kind"], unknown["spelling"], unknown["sendInstead"]) == ("unknown", "seriesz", None)
    assert unknown["suggestions"][0] == "series_a"


def test_a_client_never_sees_another_clients_usage(
    api: ApiClient, two_keys: tuple[CreatedKey, CreatedKey]
) -> None:
    alpha, beta = two_keys

    widened = as_key(api, alpha, OWN, clientId=f"key-{beta.key_id}", client_id=f"key-{beta.key_id}")
    beta_view = as_key(api, beta, OWN, since="30d")

    assert widened.status_code == 200
    assert {entry["spelling"] for entry in widened.json()["usage"]} == {"Series-A", "seriesz"}
    assert "Serie Z" not in widened.text
    assert [(e["kind"], e["spelling"], e["count"]) for e in beta_view.json()["usage"]] == [
        ("rejected", "Serie Z", 30),
        ("sum", None, 4),
    ]
    assert "Series-A" not in beta_view.text


def test_since_narrows_the_window(api: ApiClient, two_keys: tuple[CreatedKey, CreatedKey]) -> None:
    _, beta = two_keys

    body = as_key(api, beta, OWN, since="7d").json()

    assert body["since"] == (TODAY - timedelta(days=7)).isoformat()
    assert [entry["kind"] for entry in body["usage"]] == ["rejected"]


@pytest.mark.parametrize(
    ("since", "code"),
    [
        ("7", "INVALID_INPUT"),
        ("0d", "INVALID_INPUT"),
        ("-1d", "INVALID_INPUT"),
        ("7 d", "INVALID_INPUT"),
        ("1w", "INVALID_INPUT"),
        ("7d\n", "INVALID_INPUT"),
        ("999999d", "INVALID_INPUT"),
        ("", "INVALID_INPUT"),
        ("91d", "USAGE_WINDOW_BEYOND_RETENTION"),
    ],
)
def test_a_bad_window_is_a_problem_naming_since(
    api: ApiClient, two_keys: tuple[CreatedKey, CreatedKey], since: str, code: str
) -> None:
    alpha, _ = two_keys

    for response in (as_key(api, alpha, OWN, since=since), as_admin(api, OPS, since=since)):
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert (response.json()["code"], response.json()["field"]) == (code, "since")


def test_the_catalogue_links_the_clients_own_usage(api: ApiClient) -> None:
    body = api.request("GET", "/api/deprecations").json()

    assert body["ownUsage"] == OWN


def test_operators_see_every_client_ranked_with_key_name_and_prefix(
    api: ApiClient, two_keys: tuple[CreatedKey, CreatedKey]
) -> None:
    alpha, beta = two_keys

    response = as_admin(api, OPS, since="30d")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == 41
    assert [client["keyName"] for client in body["clients"]] == ["beta-client", "alpha-client"]
    beta_row, alpha_row = body["clients"]
    assert beta_row == {
        "clientId": f"key-{beta.key_id}",
        "keyName": "beta-client",
        "keyPrefix": beta.prefix,
        "keyRevoked": False,
        "count": 34,
        "kinds": [{"kind": "rejected", "count": 30}, {"kind": "sum", "count": 4}],
        "endpoints": [COMPANIES, SIMULATE],
        "spellings": ["Serie Z"],
        "lastSeenAt": beta_row["lastSeenAt"],
    }
    assert alpha_row["spellings"] == ["Series-A", "seriesz"]
    for secret in (alpha.secret, beta.secret):
        assert secret not in response.text
        assert hashlib.sha256(secret.encode()).hexdigest() not in response.text


def test_operators_narrow_to_one_endpoint_and_window(
    api: ApiClient, two_keys: tuple[CreatedKey, CreatedKey]
) -> None:
    body = as_admin(api, OPS, since="7d", endpoint=SIMULATE).json()

    assert body["endpoint"] == SIMULATE
    assert [(client["keyName"], client["count"]) for client in body["clients"]] == [("alpha-client", 2)]


def test_an_unknown_endpoint_is_a_problem_naming_endpoint(api: ApiClient) -> None:
    response = as_admin(api, OPS, endpoint="/api/nope")

    assert response.status_code == 422
    assert (response.json()["code"], response.json()["field"]) == ("INVALID_INPUT", "endpoint")
    assert COMPANIES in response.json()["detail"]


def test_the_operators_view_needs_the_admin_token(
    api: ApiClient, two_keys: tuple[CreatedKey, CreatedKey]
) -> None:
    alpha, _ = two_keys

    assert as_admin(api, OPS, token="wrong-" + "x" * 40).status_code == 401
    assert as_key(api, alpha, OPS).status_code == 401
    assert api.http.get(OPS).status_code == 401
