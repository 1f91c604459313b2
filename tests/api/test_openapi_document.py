"""The OpenAPI document shows the validation headers and problem bodies on every affected response."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from fundmodel.api.app import create_app
from tests.conftest import settings_for

STAGE_OPERATIONS = [
    ("post", "/api/monte-carlo/simulate", "200"),
    ("post", "/api/monte-carlo/compare", "200"),
    ("post", "/api/portfolio/strategies", "201"),
    ("put", "/api/portfolio/strategies/{id}", "200"),
    ("post", "/api/funds/{fundId}/companies", "201"),
    ("get", "/api/funds/{fundId}/companies", "200"),
]
HEADERS = {"X-Stage-Validation-Mode", "Deprecation", "Sunset", "Link"}


def test_stage_operations_document_headers_and_problems(tmp_path: object) -> None:
    app = create_app(
        settings_for(f"sqlite:///{tmp_path}/doc.sqlite3"),
        registry=CollectorRegistry(),
        configure_logs=False,
    )
    document = app.openapi()
    assert "| malformed | **422** | **422** | **422** |" in document["info"]["description"]
    for method, path, success in STAGE_OPERATIONS:
        responses = document["paths"][path][method]["responses"]
        assert {success, "400", "401", "422"} <= set(responses)
        for status, response in responses.items():
            # The middleware adds them to every response once validation ran; 401 comes before it.
            expected = set() if status == "401" else HEADERS
            assert set(response.get("headers", {})) == expected, (method, path, status)
        for status in ("400", "401", "422"):
            schema = responses[status]["content"]["application/problem+json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Problem"}
    problem = document["components"]["schemas"]["Problem"]["properties"]
    assert {"type", "title", "status", "detail", "code", "invalid", "suggestions", "validStages"} <= set(
        problem
    )


def test_not_found_and_conflict_of_validated_endpoints_document_the_headers(tmp_path: object) -> None:
    app = create_app(
        settings_for(f"sqlite:///{tmp_path}/doc.sqlite3"),
        registry=CollectorRegistry(),
        configure_logs=False,
    )
    paths = app.openapi()["paths"]
    replace = paths["/api/portfolio/strategies/{id}"]["put"]["responses"]
    for status in ("404", "409"):
        assert set(replace[status]["headers"]) == HEADERS
    for method in ("get", "post"):
        assert set(paths["/api/funds/{fundId}/companies"][method]["responses"]["404"]["headers"]) == HEADERS


def test_the_mode_table_says_a_renormalized_sum_is_flagged_with_headers(tmp_path: object) -> None:
    app = create_app(
        settings_for(f"sqlite:///{tmp_path}/doc.sqlite3"),
        registry=CollectorRegistry(),
        configure_logs=False,
    )
    description = app.openapi()["info"]["description"]
    assert "| sum != 1 | renormalized | renormalized + headers + `warnings` |" in description
    assert "`DUPLICATE_STAGE`" in description
