"""Enforce with a canary percentage: clients outside the cohort are warned, inside it enforced."""

from __future__ import annotations

from tests.conftest import ApiClient

UNKNOWN = {"name": "c", "stageAllocation": {"seed": 0.5, "mezzanine": 0.5}}


def test_canary_percentage_decides_per_client(api: ApiClient) -> None:
    api.set_mode("enforce", 0.0)
    outside = api.request("POST", "/api/portfolio/strategies", json=UNKNOWN)
    assert outside.status_code == 201
    assert outside.headers["x-stage-validation-mode"] == "warn"
    assert [w["code"] for w in outside.json()["warnings"]] == ["UNKNOWN_STAGE"]

    api.set_mode("enforce", 100.0)
    inside = api.request("POST", "/api/portfolio/strategies", json=UNKNOWN)
    assert inside.status_code == 400
    assert inside.headers["x-stage-validation-mode"] == "enforce"

    metrics = api.http.get("/metrics").text
    assert any(
        'cohort="baseline"' in line and 'outcome="would_reject"' in line and line.endswith(" 1.0")
        for line in metrics.splitlines()
        if line.startswith("fundmodel_stage_validations_total{")
    )
    assert any(
        'cohort="canary"' in line and 'outcome="rejected"' in line and line.endswith(" 1.0")
        for line in metrics.splitlines()
        if line.startswith("fundmodel_stage_validations_total{")
    )


def test_a_client_keeps_its_mode_across_requests(api: ApiClient) -> None:
    api.set_mode("enforce", 50.0)
    seen = {
        api.request("POST", "/api/portfolio/strategies", json=UNKNOWN).headers["x-stage-validation-mode"]
        for _ in range(10)
    }
    assert len(seen) == 1
