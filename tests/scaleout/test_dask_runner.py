"""Sweeps on a real Dask cluster (worker processes started here) equal local sweeps to the last bit."""

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from distributed import Client

from fundmodel.engines.montecarlo import FundArrays, assemble, load_config, simulate, simulate_block
from fundmodel.engines.sweep import (
    BacksolveSpec,
    Parameter,
    SensitivityParameter,
    SensitivitySpec,
    SweepSpec,
    run_backsolve,
    run_sensitivity,
    run_sweep,
)
from fundmodel.errors import ConfigurationError, ExternalToolError
from fundmodel.scaleout.dask_runner import DaskPointRunner, block_bounds, connect

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fund.json"
ITERATIONS = 2_000
BLOCK_FUNDS = 700  # blocks of unequal size (700, 700, 600), none aligned with the stream's key blocks
SEED = 20_261_203


def base() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    return data


@pytest.fixture
def runner(client: Client) -> DaskPointRunner:
    return DaskPointRunner(client, block_funds=BLOCK_FUNDS)


def grid() -> SweepSpec:
    return SweepSpec(
        base=base(),
        parameters=(
            Parameter("reserveRatio", (0.1, 0.45, 0.8)),
            Parameter("stageProfiles.seed.exitMultipleMedian", (2.0, 3.5)),
        ),
        metric="netTvpi.p50",
        iterations=ITERATIONS,
        seed=SEED,
    )


def test_blocks_cover_the_funds_in_order() -> None:
    assert block_bounds(2_000, 700) == [(0, 700), (700, 700), (1_400, 600)]
    assert block_bounds(10, 65_536) == [(0, 10)]


def test_blocks_assembled_are_simulate_to_the_last_bit() -> None:
    config = load_config(base())
    local = simulate(config, iterations=ITERATIONS, seed=SEED, threads=2)
    blocks = [
        simulate_block(config, seed=SEED, first_fund=first, count=count)
        for first, count in block_bounds(ITERATIONS, BLOCK_FUNDS)
    ]
    assembled = assemble(config, FundArrays.concatenate(blocks), seed=SEED, threads=1)
    assert json.dumps(assembled.to_json()) == json.dumps(local.to_json())
    for name, values in local.samples.items():
        assert assembled.samples[name].tobytes() == values.tobytes(), name


@pytest.mark.parametrize(
    "block_funds",
    [BLOCK_FUNDS, ITERATIONS],  # blocks assembled on the client; one block assembled on its worker
)
def test_a_point_on_the_cluster_is_the_local_result_bit_for_bit(client: Client, block_funds: int) -> None:
    runner = DaskPointRunner(client, block_funds=block_funds)
    configs = [load_config(base()), load_config({**base(), "reserveRatio": 0.2})]
    remote = list(runner.run_points(configs, iterations=ITERATIONS, seed=SEED))
    for config, result in zip(configs, remote, strict=True):
        local = simulate(config, iterations=ITERATIONS, seed=SEED)
        assert not isinstance(result, Exception)
        assert json.dumps(result.to_json()) == json.dumps(local.to_json())
        if block_funds >= ITERATIONS:
            assert result.samples == {}  # a one-block point leaves its per-fund samples on the worker
            continue
        for name, values in local.samples.items():
            assert np.array_equal(result.samples[name], values, equal_nan=True), name
            assert result.samples[name].tobytes() == values.tobytes(), name


def test_a_sharded_grid_equals_the_local_grid(runner: DaskPointRunner) -> None:
    local = run_sweep(grid())
    sharded = run_sweep(grid(), runner=runner)
    assert json.dumps(sharded.to_json()) == json.dumps(local.to_json())
    assert not sharded.cancelled
    assert len(sharded.points) == 6


def test_a_sharded_tornado_equals_the_local_one(runner: DaskPointRunner) -> None:
    spec = SensitivitySpec(
        base=base(),
        parameters=(
            SensitivityParameter("reserveRatio", 0.2, 0.7),
            SensitivityParameter("managementFeeRate", 0.01, 0.03),
        ),
        metric="probTvpiAtLeast.3",
        iterations=ITERATIONS,
        seed=SEED,
    )
    assert json.dumps(run_sensitivity(spec, runner=runner).to_json()) == json.dumps(
        run_sensitivity(spec).to_json()
    )


def test_a_sharded_backsolve_equals_the_local_one(runner: DaskPointRunner) -> None:
    spec = BacksolveSpec(
        base=base(),
        path="stageProfiles.seed.exitMultipleMedian",
        low=1.0,
        high=6.0,
        metric="netTvpi.p50",
        target=1.7,
        iterations=ITERATIONS,
        seed=SEED,
        max_steps=6,
    )
    local = run_backsolve(spec)
    assert json.dumps(run_backsolve(spec, runner=runner).to_json()) == json.dumps(local.to_json())
    assert len(local.history) >= 3  # the bisection ran, not only the two ends


def test_a_cancelled_sharded_sweep_keeps_the_points_it_finished(runner: DaskPointRunner) -> None:
    finished: list[int] = []
    result = run_sweep(
        grid(),
        runner=runner,
        progress=lambda done, _: finished.append(done),
        should_stop=lambda: len(finished) >= 2,
    )
    assert result.cancelled
    assert len(result.points) == 2
    assert json.dumps(result.to_json()["points"]) == json.dumps(run_sweep(grid()).to_json()["points"][:2])


def test_a_worker_killed_mid_sweep_changes_nothing(client: Client) -> None:
    # Larger blocks, so tasks are running on the worker when it is killed.
    runner = DaskPointRunner(client, block_funds=2_500)
    spec = SweepSpec(
        base=base(),
        parameters=(Parameter("reserveRatio", (0.1, 0.3, 0.5, 0.7)),),
        metric="netTvpi.p50",
        iterations=10_000,
        seed=SEED,
    )
    killed = threading.Event()

    def kill_one_worker(done: int, _total: int) -> None:
        if done == 1 and not killed.is_set():
            busy = [worker for worker, tasks in sorted(client.processing().items()) if tasks]
            assert busy  # there is work in flight to lose
            client.restart_workers(busy[:1], timeout=120)
            killed.set()

    sharded = run_sweep(spec, runner=runner, progress=kill_one_worker)
    assert killed.is_set()
    assert json.dumps(sharded.to_json()) == json.dumps(run_sweep(spec).to_json())


def test_a_scheduler_that_does_not_answer_is_one_clear_error() -> None:
    with pytest.raises(ExternalToolError, match="could not be reached"):
        connect("tcp://127.0.0.1:9", timeout=1)


@pytest.mark.parametrize("address", ["127.0.0.1:8786", "tcp://", ""])
def test_a_malformed_address_is_the_operators_error(address: str) -> None:
    with pytest.raises(ConfigurationError, match="tcp://host:8786"):
        connect(address)
