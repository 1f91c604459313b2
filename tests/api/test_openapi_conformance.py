"""Schemathesis against the app's own OpenAPI document: no 5xx, and every response matches its schema.

The examples per operation are kept modest for runtime (FM_SCHEMATHESIS_EXAMPLES to raise them).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import ApiClient, open_api_client, settings_for

EXAMPLES = int(os.environ.get("FM_SCHEMATHESIS_EXAMPLES", "10"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def running_api(database_url: str) -> Iterator[ApiClient]:
    # Tokens configured so the ops endpoints answer as in production (401 to strangers, not 503).
    api, close = open_api_client(
        settings_for(
            database_url,
            stage_validation_mode="enforce",
            stage_webhook_token="w" * 40,
            admin_token="a" * 40,
        )
    )
    api.request(
        "POST",
        "/api/funds",
        json={
            "name": "Schema Fund",
            "vintageYear": 2024,
            "committedCapital": 1e8,
            "managementFeeRate": 0.02,
            "carriedInterestRate": 0.2,
        },
    )
    yield api
    close()


@pytest.mark.slow
def test_responses_conform_to_the_openapi_document(running_api: ApiClient) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", running_api.http.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14
    failures: dict[str, str] = {}
    statuses: list[int] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def exercise(case: Any) -> None:
            response = case.call_and_validate(headers=running_api.headers, checks=CHECKS)
            statuses.append(response.status_code)

        try:
            exercise()
        except Exception as exc:  # collect every failing operation, then report them together
            failures[operation.label] = str(exc)[:3000]
    assert len(statuses) > 3 * len(operations)
    assert {200, 201, 422} <= set(statuses)  # both accepted and rejected inputs were exercised
    assert failures == {}, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
