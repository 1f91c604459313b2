"""Schemathesis hooks of the conformance run (loaded through ``hooks`` in tests/api/schemathesis.toml).

One check: Schemathesis' own ``positive_data_acceptance`` (a schema-valid request must not be rejected),
minus the rejections the API makes by design. Those are listed, each with its reason, under
``[checks.accepted_unless_by_design]`` in the same file; a rejection is by design only for that operation,
status and problem ``code`` together, so any other 4xx to schema-valid data still fails the run.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis
from schemathesis import Case, CheckContext, Response
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import positive_data_acceptance


@schemathesis.check
class accepted_unless_by_design:  # noqa: N801 - Schemathesis names a check after its class
    """``positive_data_acceptance`` that lets the configured by-design rejections through."""

    def __init__(self, rejections: list[dict[str, Any]]) -> None:
        for entry in rejections:
            # A reason is what makes an exclusion reviewable; refuse a bare one.
            if not str(entry.get("reason", "")).strip():
                raise ValueError(f"by-design rejection without a reason: {entry}")
        self.rejections = rejections

    def after_response(self, ctx: CheckContext, response: Response, case: Case) -> bool | None:
        try:
            return positive_data_acceptance(ctx, response, case)
        except RejectedPositiveData:
            if any(_matches(entry, case, response) for entry in self.rejections):
                return None
            raise


def _matches(entry: dict[str, Any], case: Case, response: Response) -> bool:
    """Same operation, status and problem code; and the detail's wording, where the entry names one."""
    problem = _problem(response)
    return (
        entry["operation"] == case.operation.label
        and entry["status"] == response.status_code
        and entry["code"] == problem.get("code")
        and str(entry.get("detail", "")) in str(problem.get("detail", ""))
    )


def _problem(response: Response) -> dict[str, Any]:
    try:
        body = json.loads(response.content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
