"""Sweep jobs over HTTP (SQLite and PostgreSQL): lifecycle, cancel, ownership, limits, stage validation."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from fundmodel.auth.service import create_key
from fundmodel.db.engine import create_db_engine
from tests.conftest import ApiClient, open_api_client, settings_for

SWEEPS = "/api/monte-carlo/sweeps"
BASE: dict[str, Any] = {"fundSize": 5e7, "stageDistribution": {"seed": 0.7, "series_a": 0.3}}
ITERATIONS = 10  # the engine's minimum: these tests are about the jobs, not the numbers


def sweep_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "base": BASE,
        "parameters": [{"path": "reserveRatio", "values": "0:0.6:3"}],
        "metric": "netTvpi.p50",
        "iterations": ITERATIONS,
        "seed": 7,
    }
    body.update(changes)
    return body


def wait_for(
    api: ApiClient, location: str, done: Callable[[dict[str, Any]], bool], timeout: float = 60
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        job = api.request("GET", location).json()
        if done(job):
            return job
        assert time.monotonic() < deadline, f"job never got there: {job}"
        time.sleep(0.05)


def finished(job: dict[str, Any]) -> bool:
    return job["status"] not in {"queued", "running"}


@pytest.fixture
def open_client(database_url: str) -> Iterator[Callable[..., ApiClient]]:
    """Opens the app on this test's database with settings overrides (closed after the test)."""
    closers: list[Callable[[], None]] = []

    def open_with(**overrides: Any) -> ApiClient:
        client, close = open_api_client(settings_for(database_url, **overrides))
        closers.append(close)
        return client

    yield open_with
    for close in reversed(closers):
        close()


def other_client(api: ApiClient, database_url: str) -> ApiClient:
    engine = create_db_engine(database_url)
    try:
        key = create_key(engine, f"other-{uuid.uuid4().hex[:8]}").secret
    finally:
        engine.dispose()
    return ApiClient(api.http, key)


def test_a_sweep_is_queued_run_and_answered(open_client: Callable[..., ApiClient]) -> None:
    api = open_client(sweep_poll_interval_seconds=0.05)
    response = api.request("POST", SWEEPS, json=sweep_body())
    assert response.status_code == 202
    location = response.headers["location"]
    submitted = response.json()
    assert location == f"/api/monte-carlo/jobs/{submitted['id']}"
    assert submitted["status"] == "queued"
    assert submitted["progress"] == {"pointsDone": 0, "pointsTotal": 3}
    job = wait_for(api, location, finished)
    assert job["status"] == "succeeded", job
    assert job["progress"] == {"pointsDone": 3, "pointsTotal": 3}
    assert job["attempts"] == 1
    result = job["result"]
    assert [point["values"] for point in result["points"]] == [
        {"reserveRatio": 0.0},
        {"reserveRatio": 0.3},
        {"reserveRatio": 0.6},
    ]
    assert all(isinstance(point["metric"], float) for point in result["points"])


def test_sensitivity_and_backsolve_jobs(open_client: Callable[..., ApiClient]) -> None:
    api = open_client(sweep_poll_interval_seconds=0.05)
    tornado = api.request(
        "POST",
        "/api/monte-carlo/sensitivity",
        json={
            "base": BASE,
            "parameters": [
                {"path": "reserveRatio", "low": 0.1, "high": 0.6},
                {"path": "managementFeeRate", "low": 0.01, "high": 0.03},
            ],
            "metric": "netTvpi.p50",
            "iterations": ITERATIONS,
            "seed": 3,
        },
    )
    assert tornado.status_code == 202, tornado.json()
    assert tornado.json()["progress"]["pointsTotal"] == 5
    backsolve = api.request(
        "POST",
        "/api/monte-carlo/backsolve",
        json={
            "base": BASE,
            "parameter": {"path": "managementFeeRate", "low": 0.0, "high": 0.05},
            "metric": "netTvpi.p50",
            "target": 1000.0,
            "iterations": ITERATIONS,
            "seed": 3,
            "maxSteps": 5,
        },
    )
    assert backsolve.status_code == 202, backsolve.json()
    ranked = wait_for(api, tornado.headers["location"], finished)
    assert ranked["status"] == "succeeded", ranked
    assert {row["path"] for row in ranked["result"]["rows"]} == {"reserveRatio", "managementFeeRate"}
    solved = wait_for(api, backsolve.headers["location"], finished)
    assert solved["status"] == "succeeded", solved
    assert solved["result"]["status"] == "notReachable"


def test_a_client_sees_only_its_own_jobs(open_client: Callable[..., ApiClient], database_url: str) -> None:
    api = open_client(sweep_workers=0)
    location = api.request("POST", SWEEPS, json=sweep_body()).headers["location"]
    stranger = other_client(api, database_url)
    assert stranger.request("GET", location).status_code == 404
    refused = stranger.request("DELETE", location)
    assert refused.status_code == 404
    assert refused.json()["code"] == "JOB_NOT_FOUND"
    assert api.request("GET", location).json()["status"] == "queued"  # untouched by the stranger
    assert api.request("GET", "/api/monte-carlo/jobs/" + "0" * 32).status_code == 404


def test_the_per_client_bound_is_a_429_with_retry_after(
    open_client: Callable[..., ApiClient], database_url: str
) -> None:
    api = open_client(sweep_workers=0, sweep_max_active_jobs_per_client=2)
    locations = [api.request("POST", SWEEPS, json=sweep_body()).headers["location"] for _ in range(2)]
    refused = api.request("POST", SWEEPS, json=sweep_body())
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "TOO_MANY_JOBS"
    assert int(refused.headers["retry-after"]) > 0
    # The bound is per client, and a cancelled job frees its slot.
    assert other_client(api, database_url).request("POST", SWEEPS, json=sweep_body()).status_code == 202
    assert api.request("DELETE", locations[0]).status_code == 200
    assert api.request("POST", SWEEPS, json=sweep_body()).status_code == 202


def test_cancel_a_queued_job_then_delete_it(open_client: Callable[..., ApiClient]) -> None:
    api = open_client(sweep_workers=0)
    location = api.request("POST", SWEEPS, json=sweep_body()).headers["location"]
    cancelled = api.request("DELETE", location)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert api.request("GET", location).json()["status"] == "cancelled"
    assert api.request("DELETE", location).status_code == 204  # finished: deleted
    assert api.request("GET", location).status_code == 404


def test_a_running_job_stops_between_points_when_cancelled(open_client: Callable[..., ApiClient]) -> None:
    api = open_client(sweep_poll_interval_seconds=0.05)
    body = sweep_body(
        parameters=[
            {"path": "reserveRatio", "values": "0:0.8:40"},
            {"path": "carryRate", "values": "0.1:0.3:25"},
        ],
        iterations=2000,
    )
    location = api.request("POST", SWEEPS, json=body).headers["location"]
    wait_for(api, location, lambda job: job["progress"]["pointsDone"] > 0 or finished(job))
    asked = api.request("DELETE", location)
    assert asked.status_code == 200
    assert asked.json()["cancelRequested"] is True
    job = wait_for(api, location, finished)
    assert job["status"] == "cancelled", job["status"]
    assert 0 < job["result"]["pointsDone"] < 1000
    assert job["result"]["cancelled"] is True
    assert len(job["result"]["points"]) == job["result"]["pointsDone"]


def test_limits_on_iterations_and_total_work(open_client: Callable[..., ApiClient]) -> None:
    api = open_client(sweep_workers=0, sweep_max_work=1000)
    too_many = api.request("POST", SWEEPS, json=sweep_body(iterations=100_001))
    assert too_many.status_code == 422
    assert too_many.json()["code"] == "ITERATIONS_LIMIT"
    too_much = api.request("POST", SWEEPS, json=sweep_body(iterations=500))
    assert too_much.status_code == 422
    assert too_much.json()["code"] == "SWEEP_LIMIT"
    unknown_metric = api.request("POST", SWEEPS, json=sweep_body(metric="netTvpi.p51"))
    assert unknown_metric.status_code == 422
    assert unknown_metric.json()["field"] == "metric"


# -- stage validation, per mode ----------------------------------------------------------------------

VARIED_SEED_WEIGHT = [{"path": "stageDistribution.seed", "values": [0.5, 0.7, 0.9]}]
"""Seed at 0.5 and 0.9 (series_a stays 0.3): those two points no longer sum to 1; 0.7 does."""


def test_enforce_rejects_each_point_whose_varied_weights_miss_one(
    open_client: Callable[..., ApiClient],
) -> None:
    api = open_client(sweep_workers=0)
    api.set_mode("enforce")
    response = api.request("POST", SWEEPS, json=sweep_body(parameters=VARIED_SEED_WEIGHT))
    assert response.status_code == 400
    problem = response.json()
    assert problem["code"] == "INVALID_STAGE_DISTRIBUTION"
    assert [item["point"] for item in problem["problems"]] == ["points[0]", "points[2]"]
    assert response.headers["x-stage-validation-mode"] == "enforce"
    fine = api.request(
        "POST", SWEEPS, json=sweep_body(parameters=[{"path": "stageDistribution.seed", "values": [0.7]}])
    )
    assert fine.status_code == 202


@pytest.mark.parametrize("mode", ["warn", "off"])
def test_warn_and_off_renormalize_each_point(open_client: Callable[..., ApiClient], mode: str) -> None:
    api = open_client(sweep_poll_interval_seconds=0.05)
    api.set_mode(mode)
    response = api.request("POST", SWEEPS, json=sweep_body(parameters=VARIED_SEED_WEIGHT))
    assert response.status_code == 202, response.json()
    job = wait_for(api, response.headers["location"], finished)
    assert job["status"] == "succeeded"
    points = job["result"]["points"]
    assert all(point["error"] is None for point in points)
    codes = [[warning["code"] for warning in point["warnings"]] for point in points]
    if mode == "warn":
        assert codes == [["SUM_MISMATCH"], [], ["SUM_MISMATCH"]]
    else:
        assert codes == [[], [], []]  # off: renormalized silently, as simulate does
    # Renormalized, seed 0.9 / series_a 0.3 is not seed 0.7 / series_a 0.3: the metric differs or not,
    # but each point ran on a valid configuration.
    assert all(isinstance(point["metric"], float) for point in points)


def test_base_stage_fields_go_through_the_layer(open_client: Callable[..., ApiClient]) -> None:
    api = open_client(sweep_workers=0)
    unknown = {"fundSize": 5e7, "stageDistribution": {"seed": 0.7, "series_z": 0.3}}
    warned = api.request("POST", SWEEPS, json=sweep_body(base=unknown))
    assert warned.status_code == 202
    assert [warning["field"] for warning in warned.json()["warnings"]] == ["base.stageDistribution"]
    api.set_mode("enforce")
    rejected = api.request("POST", SWEEPS, json=sweep_body(base=unknown))
    assert rejected.status_code == 400
    assert rejected.json()["code"] == "INVALID_STAGE"
    assert rejected.json()["field"] == "base.stageDistribution"
    malformed = api.request(
        "POST", SWEEPS, json=sweep_body(base={"fundSize": 5e7, "stageDistribution": {"seed": "all"}})
    )
    assert malformed.status_code == 422
    assert malformed.json()["code"] == "MALFORMED_STAGE_DISTRIBUTION"


def test_a_stage_inside_a_varied_path_follows_the_mode(open_client: Callable[..., ApiClient]) -> None:
    api = open_client(sweep_workers=0)
    api.set_mode("enforce")
    unknown_stage = [{"path": "stageProfiles.series_z.exitMultipleMedian", "values": [2.0, 3.0]}]
    rejected = api.request("POST", SWEEPS, json=sweep_body(parameters=unknown_stage))
    assert rejected.status_code == 400
    assert rejected.json()["code"] == "INVALID_STAGE"
    assert rejected.json()["field"] == "parameters[0].path"
    alias = [{"path": "stageProfiles.Series A.exitMultipleMedian", "values": [2.0, 3.0]}]
    accepted = api.request("POST", SWEEPS, json=sweep_body(parameters=alias))
    assert accepted.status_code == 202, accepted.json()
    assert [warning["code"] for warning in accepted.json()["warnings"]] == ["DEPRECATED_ALIAS"]
