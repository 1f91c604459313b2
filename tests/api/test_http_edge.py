"""The HTTP edge before a route runs: unreadable bodies, bodies that are not JSON, methods a path lacks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import ApiClient

PROBLEM = "application/problem+json"
# Every method an Allow header could name; none of the API's paths serves all of them.
ALL_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
BODY_ENDPOINTS = (
    ("POST", "/api/funds"),
    ("POST", "/api/portfolio/strategies"),
    ("POST", "/api/monte-carlo/simulate"),
    ("PATCH", "/api/funds/1/allocations"),
)
UNREADABLE_BODIES = {
    "json syntax error": (b'{"name": "Acme", "vintageYear": }', "not valid JSON: Expecting value at line 1"),
    "not UTF-8": (b'{"name": "\xff\xfe"}', "not UTF-8 JSON"),
    "nested too deeply": (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    "a number with 5000 digits": (b'{"vintageYear": ' + b"7" * 5000 + b"}", "too many digits"),
}


def _problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert (body["status"], body["code"]) == (status, code)
    assert body["type"] == "urn:fundmodel:problem:" + code.lower().replace("_", "-")
    return body


def test_an_unreadable_body_is_one_400_malformed_body_problem(api: ApiClient) -> None:
    for method, path in BODY_ENDPOINTS:
        for case, (content, expected_detail) in UNREADABLE_BODIES.items():
            response = api.request(
                method, path, content=content, headers={"content-type": "application/json"}
            )
            body = _problem(response, 400, "MALFORMED_BODY")
            assert expected_detail in body["detail"], (method, path, case)
            assert body["title"] == "Malformed request body"
            assert body["instance"] == path
            # Where it went wrong is in the detail; no request field is at fault, nothing is echoed.
            assert not {"field", "errors"} & set(body), (method, path, case)
            assert "Acme" not in response.text, (method, path, case)
            assert "7777" not in response.text, (method, path, case)


def test_a_json_syntax_error_is_located_as_pythons_json_locates_it(api: ApiClient) -> None:
    text = '{\n  "name": "Acme",\n  "vintageYear": 2024,,\n}'
    with pytest.raises(json.JSONDecodeError) as parsed:
        json.loads(text)
    where = parsed.value
    response = api.request(
        "POST", "/api/funds", content=text.encode(), headers={"content-type": "application/json"}
    )
    body = _problem(response, 400, "MALFORMED_BODY")
    assert body["detail"] == (
        f"the request body is not valid JSON: {where.msg} at line {where.lineno}, "
        f"column {where.colno} (character {where.pos})"
    )


def test_a_body_not_sent_as_json_is_a_415_problem(api: ApiClient) -> None:
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {"content-type": content_type} if content_type else {}
        response = api.request("POST", "/api/funds", content=b'{"name": "Acme"}', headers=headers)
        body = _problem(response, 415, "UNSUPPORTED_MEDIA_TYPE")
        assert "application/json" in body["detail"], content_type


def test_a_well_formed_but_invalid_body_stays_a_422(api: ApiClient) -> None:
    response = api.request("POST", "/api/funds", json={"name": "Acme"})
    body = _problem(response, 422, "INVALID_INPUT")
    assert {error["field"] for error in body["errors"]} >= {"vintageYear", "committedCapital"}


def test_every_operation_taking_a_body_documents_the_unreadable_body_answers(api: ApiClient) -> None:
    document = api.http.get("/openapi.json").json()
    with_body = {
        (method.upper(), path): operation
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if "requestBody" in operation
    }
    assert len(with_body) >= 9
    for (method, path), operation in with_body.items():
        responses = operation["responses"]
        assert "400" in responses, (method, path)
        assert PROBLEM in responses["400"]["content"], (method, path)
        if path == "/_ops/stage-validation/auto-downgrade":
            # The webhook reads its raw body itself: any unreadable payload is its own 400.
            assert "INVALID_WEBHOOK_PAYLOAD" in responses["400"]["description"]
            continue
        assert "MALFORMED_BODY" in responses["400"]["description"], (method, path)
        assert "UNSUPPORTED_MEDIA_TYPE" in responses["415"]["description"], (method, path)


def _concrete(path: str) -> str:
    return path.replace("{fundId}", "1").replace("{id}", "1")


def test_a_405_allows_exactly_the_methods_the_openapi_document_lists_for_the_path(api: ApiClient) -> None:
    document = api.http.get("/openapi.json").json()
    checked = 0
    for path, operations in document["paths"].items():
        documented = {method.upper() for method in operations}
        for method in sorted(set(ALL_METHODS) - documented):
            response = api.request(method, _concrete(path))
            assert response.status_code == 405, (method, path, response.status_code)
            allowed = [value.strip() for value in response.headers["allow"].split(",")]
            assert set(allowed) == documented, (method, path, allowed)
            if method != "HEAD":  # a HEAD answer has no body
                _problem(response, 405, "METHOD_NOT_ALLOWED")
            checked += 1
    assert checked > 50


# Starlette's own routes (the OpenAPI document) answer HEAD, so their Allow says so.
ALLOW_BY_PATH = {
    "/api/funds": "GET, POST",
    "/api/portfolio/strategies/1": "GET, PUT",
    "/api/funds/1/companies": "GET, POST",
    "/_ops/stage-validation/mode": "GET, PUT",
    "/api/funds/1/allocations": "PATCH",
    "/openapi.json": "GET, HEAD",
}


def test_allow_lists_every_route_of_a_path_whichever_matched_first(api: ApiClient) -> None:
    for path, allow in ALLOW_BY_PATH.items():
        for method in ("DELETE", "OPTIONS"):
            response = api.request(method, path)
            assert response.status_code == 405, (method, path)
            assert response.headers["allow"] == allow, (method, path)
        for method in allow.split(", "):
            assert api.request(method, path).status_code != 405, (method, path)


def test_every_documented_error_is_a_problem_document_and_every_api_operation_may_be_503(
    api: ApiClient,
) -> None:
    document = api.http.get("/openapi.json").json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            for status, response in responses.items():
                if int(status) >= 400:
                    # Not FastAPI's default HTTPValidationError: what the API sends is a problem.
                    assert PROBLEM in response["content"], (method, path, status)
                    assert "HTTPValidationError" not in json.dumps(response), (method, path, status)
            if path.startswith(("/api/funds", "/api/portfolio", "/api/monte-carlo")):
                # The API key is looked up in the database, so an outage reaches every one of them.
                assert "Retry-After" in responses["503"]["headers"], (method, path)
