"""Which credential wins: every combination of Authorization and X-API-Key (docs/api.md "Authentication")."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import ApiClient, open_api_client, settings_for

GOOD = "<good>"
WRONG = "fmk_" + "w" * 43
OTHER_WRONG = "fmk_" + "o" * 43


@pytest.fixture
def production_api(database_url: str) -> Iterator[ApiClient]:
    """The app in production (keys required everywhere), on each backend."""
    client, close = open_api_client(settings_for(database_url, app_env="production"))
    yield client
    close()


# (Authorization values, X-API-Key values, expected status, expected problem code)
CASES: list[tuple[list[str], list[str], int, str | None]] = [
    ([f"Bearer {GOOD}"], [], 200, None),
    ([f"bearer {GOOD}"], [], 200, None),  # the scheme is case-insensitive (RFC 9110)
    ([], [GOOD], 200, None),
    ([f"Bearer {GOOD}"], [GOOD], 200, None),  # both, the same key
    ([f"Bearer {GOOD}"], [WRONG], 401, "CONFLICTING_API_KEYS"),
    ([f"Bearer {WRONG}"], [GOOD], 401, "CONFLICTING_API_KEYS"),
    ([], [GOOD, WRONG], 401, "CONFLICTING_API_KEYS"),  # a repeated header
    ([f"Bearer {WRONG}"], [WRONG], 401, "INVALID_API_KEY"),
    ([f"Bearer {WRONG}"], [], 401, "INVALID_API_KEY"),
    ([], [WRONG], 401, "INVALID_API_KEY"),
    (["Bearer "], [], 401, "INVALID_API_KEY"),
    ([], [" "], 401, "INVALID_API_KEY"),
    (["Basic dXNlcjpwYXNzd29yZA=="], [], 401, "UNSUPPORTED_AUTH_SCHEME"),
    ([GOOD], [], 401, "UNSUPPORTED_AUTH_SCHEME"),  # a key without its scheme
    (["Basic dXNlcjpwYXNzd29yZA=="], [GOOD], 200, None),  # another scheme beside X-API-Key: a proxy's
    (["Basic dXNlcjpwYXNzd29yZA=="], [OTHER_WRONG], 401, "INVALID_API_KEY"),
    ([], [], 401, "UNAUTHENTICATED"),
]


@pytest.mark.parametrize(("authorization", "api_keys", "status", "code"), CASES)
def test_every_combination_of_the_two_headers(
    production_api: ApiClient, authorization: list[str], api_keys: list[str], status: int, code: str | None
) -> None:
    headers = [("Authorization", value.replace(GOOD, production_api.api_key)) for value in authorization]
    headers += [("X-API-Key", value.replace(GOOD, production_api.api_key)) for value in api_keys]
    response = production_api.http.get("/api/funds", headers=headers)
    assert response.status_code == status, response.text
    if code is not None:
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == code
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert production_api.api_key not in response.text  # never echoed back, not even as a "scheme"


def test_another_scheme_is_never_the_anonymous_development_client(api: ApiClient) -> None:
    # The embedded default lets requests without credentials in; credentials it cannot read are an error.
    anonymous = api.http.get("/api/funds")
    malformed = api.http.get("/api/funds", headers={"Authorization": "Basic dXNlcjpwYXNzd29yZA=="})
    if api.state.settings.anonymous_dev_client_allowed:
        assert anonymous.status_code == 200
    else:
        assert anonymous.json()["code"] == "UNAUTHENTICATED"
    assert malformed.status_code == 401
    assert malformed.json()["code"] == "UNSUPPORTED_AUTH_SCHEME"
