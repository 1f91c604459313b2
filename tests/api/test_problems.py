"""One error envelope: RFC 9457 problem+json for every kind of failure, never a traceback."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from fundmodel.api.app import create_app
from fundmodel.api.dependencies import StageValidationDep
from tests.conftest import ApiClient, captured_json_logs, settings_for

PROBLEM = "application/problem+json"


def _assert_problem(response: object, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"] == PROBLEM  # type: ignore[attr-defined]
    body: dict[str, object] = response.json()  # type: ignore[attr-defined]
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == "urn:fundmodel:problem:" + code.lower().replace("_", "-")
    assert body["title"]
    assert body["detail"]
    return body


def test_unknown_route_is_a_404_problem(api: ApiClient) -> None:
    _assert_problem(api.request("GET", "/api/nope"), 404, "NOT_FOUND")


def test_wrong_method_is_a_405_problem(api: ApiClient) -> None:
    _assert_problem(api.request("DELETE", "/api/funds"), 405, "METHOD_NOT_ALLOWED")


def test_missing_fund_is_a_404_problem(api: ApiClient) -> None:
    body = _assert_problem(api.request("GET", "/api/funds/999"), 404, "NOT_FOUND")
    assert body["instance"] == "/api/funds/999"


def test_request_validation_lists_fields_without_echoing_input(api: ApiClient) -> None:
    secret = "do-not-echo-" + "x" * 300
    response = api.request(
        "POST",
        "/api/funds",
        json={"name": secret, "vintageYear": 1800, "committedCapital": -1},
    )
    body = _assert_problem(response, 422, "INVALID_INPUT")
    fields = {error["field"] for error in body["errors"]}  # type: ignore[union-attr]
    assert {"name", "vintageYear", "committedCapital", "managementFeeRate"} <= fields
    assert secret not in response.text


def test_malformed_json_body_is_a_400_problem(api: ApiClient) -> None:
    # The other unreadable bodies (not UTF-8, nested too deeply, ...) are in test_http_edge.py.
    response = api.request(
        "POST",
        "/api/portfolio/strategies",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    body = _assert_problem(response, 400, "MALFORMED_BODY")
    assert "line 1, column 2 (character 1)" in str(body["detail"])


def test_unexpected_error_is_a_500_problem_without_traceback(database_url: str) -> None:
    app = create_app(settings_for(database_url), registry=CollectorRegistry(), configure_logs=False)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals at line 42")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    body = _assert_problem(response, 500, "INTERNAL_ERROR")
    assert "secret internals" not in response.text
    assert "Traceback" not in response.text
    assert body["detail"] == "the server failed to handle this request; it has been logged"


def test_unknown_api_key_is_401_with_challenge(api: ApiClient) -> None:
    response = api.http.get("/api/funds", headers={"Authorization": "Bearer fmk_wrong"})
    _assert_problem(response, 401, "INVALID_API_KEY")
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_x_api_key_header_authenticates(api: ApiClient) -> None:
    response = api.http.get("/api/funds", headers={"X-API-Key": api.api_key})
    assert response.status_code == 200


def test_authentication_comes_before_validation(api: ApiClient) -> None:
    response = api.http.post(
        "/api/portfolio/strategies",
        json={"name": "x", "stageAllocation": "malformed"},
        headers={"X-API-Key": "fmk_wrong"},
    )
    _assert_problem(response, 401, "INVALID_API_KEY")
    assert "x-stage-validation-mode" not in response.headers


def test_anonymous_client_only_in_the_embedded_default(database_url: str) -> None:
    is_sqlite = database_url.startswith("sqlite")
    for app_env, allowed in (("development", is_sqlite), ("production", False)):
        app = create_app(
            settings_for(database_url, app_env=app_env),
            registry=CollectorRegistry(),
            configure_logs=False,
        )
        with TestClient(app, raise_server_exceptions=False) as client:
            response = client.get("/api/funds")
        if allowed:
            assert response.status_code == 200
        else:
            _assert_problem(response, 401, "UNAUTHENTICATED")


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    with captured_json_logs("DEBUG") as stream:
        yield stream


def _events(stream: io.StringIO, name: str) -> list[dict[str, Any]]:
    parsed = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    return [event for event in parsed if event.get("event") == name]


def test_an_unexpected_500_carries_and_logs_the_request_id(
    database_url: str, log_stream: io.StringIO
) -> None:
    registry = CollectorRegistry()
    app = create_app(settings_for(database_url), registry=registry, configure_logs=False)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom", headers={"X-Request-ID": "req-500-check"})
        generated = client.get("/boom")
    body = _assert_problem(response, 500, "INTERNAL_ERROR")
    assert response.headers["x-request-id"] == "req-500-check"
    assert body["requestId"] == "req-500-check"
    assert body["instance"] == "/boom"
    # Without a usable client id the generated one is reported the same way.
    assert generated.json()["requestId"] == generated.headers["x-request-id"]

    logged = _events(log_stream, "unhandled_error")
    assert [event["request_id"] for event in logged] == ["req-500-check", generated.headers["x-request-id"]]
    assert logged[0]["path"] == "/boom"
    assert logged[0]["error_type"] == "RuntimeError"
    assert "secret internals" in json.dumps(logged[0]["exception"])  # in the log, never in the body
    assert "secret internals" not in response.text
    labels = {"route": "other", "method": "GET", "status_class": "5xx"}
    assert registry.get_sample_value("fundmodel_http_requests_total", labels) == 2


def test_a_500_of_a_validated_endpoint_keeps_the_validation_headers(api: ApiClient) -> None:
    app: Any = api.http.app  # the running app: a test-only route is added to it

    @app.post("/boom-after-validation")
    def boom_after_validation(validation: StageValidationDep) -> None:
        validation.stage("Series A")
        raise RuntimeError("after validation")

    response = api.request("POST", "/boom-after-validation")
    _assert_problem(response, 500, "INTERNAL_ERROR")
    assert response.headers["x-stage-validation-mode"] == "warn"
    assert response.headers["deprecation"]
    assert response.json()["requestId"] == response.headers["x-request-id"]
