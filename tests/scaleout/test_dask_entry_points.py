"""`--dask ADDRESS` on the CLI and DASK_SCHEDULER_ADDRESS for sweep jobs: same results as locally."""

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from distributed import Client, LocalCluster
from typer.testing import CliRunner

from fundmodel.cli.common import EXIT_FAILURE, EXIT_USAGE
from fundmodel.cli.main import app
from tests.conftest import ApiClient, open_api_client, settings_for

EXAMPLE = "examples/fund.json"
UNREACHABLE = "tcp://127.0.0.1:9"
SWEEP = ["--vary", "reserveRatio=0.1,0.5", "--metric", "netTvpi.p50", "-n", "1500", "--seed", "5", "--json"]
JOB: dict[str, Any] = {
    "base": {"fundSize": 5e7, "stageDistribution": {"seed": 0.7, "series_a": 0.3}},
    "parameters": [{"path": "reserveRatio", "values": "0:0.6:3"}],
    "metric": "netTvpi.p50",
    "iterations": 500,
    "seed": 7,
}


def cli(*arguments: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(arguments))
    return result.exit_code, result.stdout, result.stderr


TORNADO = ["--vary", "reserveRatio=0.1:0.6", "--metric", "dpi.mean", "-n", "800", "-s", "2", "--json"]
BACKSOLVE = ["--vary", "reserveRatio=0:0.8", "--metric", "netTvpi.p50", "--target", "1.5", "--max-steps", "4"]


@pytest.mark.parametrize(
    ("command", "arguments"),
    [
        ("sweep", SWEEP),
        ("sensitivity", TORNADO),
        ("backsolve", [*BACKSOLVE, "-n", "800", "-s", "2", "--json"]),
    ],
)
def test_the_cli_on_dask_prints_the_local_result(
    client: Client, cluster: LocalCluster, command: str, arguments: list[str]
) -> None:
    local = cli(command, EXAMPLE, *arguments)
    sharded = cli(command, EXAMPLE, *arguments, "--dask", cluster.scheduler_address)
    assert local[0] == 0, local[2]
    assert sharded == local


def test_the_cli_with_an_unreachable_scheduler_fails_on_one_line() -> None:
    code, stdout, stderr = cli("sweep", EXAMPLE, *SWEEP, "--dask", UNREACHABLE)
    assert code == EXIT_FAILURE
    assert stdout == ""
    assert stderr.count("\n") == 1
    assert stderr.startswith(f"error: Dask scheduler at {UNREACHABLE} could not be reached")


def test_the_cli_with_a_malformed_address_is_a_usage_error() -> None:
    code, _, stderr = cli("sweep", EXAMPLE, *SWEEP, "--dask", "localhost")
    assert code == EXIT_USAGE
    assert "tcp://host:8786" in stderr


@pytest.fixture
def open_client(database_url: str) -> Iterator[Callable[..., ApiClient]]:
    closers: list[Callable[[], None]] = []

    def open_with(**overrides: Any) -> ApiClient:
        api, close = open_api_client(
            settings_for(database_url, sweep_poll_interval_seconds=0.05, **overrides)
        )
        closers.append(close)
        return api

    yield open_with
    for close in reversed(closers):
        close()


def finished_job(api: ApiClient, timeout: float = 120) -> dict[str, Any]:
    response = api.request("POST", "/api/monte-carlo/sweeps", json=JOB)
    assert response.status_code == 202, response.text
    location = response.headers["Location"]
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = api.request("GET", location).json()
        if job["status"] not in {"queued", "running"}:
            return job
        assert time.monotonic() < deadline, f"job never finished: {job}"
        time.sleep(0.05)


def test_a_sweep_job_on_dask_has_the_local_result(
    client: Client, cluster: LocalCluster, open_client: Callable[..., ApiClient]
) -> None:
    local = finished_job(open_client())
    sharded = finished_job(open_client(dask_scheduler_address=cluster.scheduler_address))
    assert local["status"] == sharded["status"] == "succeeded"
    assert json.dumps(sharded["result"]) == json.dumps(local["result"])


def test_a_sweep_job_whose_scheduler_cannot_be_reached_fails_with_the_reason(
    open_client: Callable[..., ApiClient],
) -> None:
    job = finished_job(open_client(dask_scheduler_address=UNREACHABLE))
    assert job["status"] == "failed"
    assert "could not be reached" in json.dumps(job)
