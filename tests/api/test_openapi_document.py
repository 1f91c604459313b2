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
        for status in (success, "400", "422"):
            assert set(responses[status]["headers"]) == HEADERS, (method, path, status)
        for status in ("400", "401", "422"):
            schema = responses[status]["content"]["application/problem+json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Problem"}
    problem = document["components"]["schemas"]["Problem"]["properties"]
    assert {"type", "title", "status", "detail", "code", "invalid", "suggestions", "validStages"} <= set(
        problem
    )
