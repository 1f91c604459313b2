"""Sweep overhead against separate simulate() calls, and sweeps on 2 Dask workers against 1.

Prints one JSON document. Method (figures in docs/performance.md, "Sweeps"):

* overhead: a sweep of ``--configs`` configurations (reserve ratio 0-0.8) x ``--funds`` funds on the local
  runner against the sum of one ``simulate()`` per configuration (same configs, seed and threads), both
  in this run, alternated ``--rounds`` times (the fastest of each is kept, so drift hits both alike);
  target: ratio <= 1.15;
* Dask: the same sweep on a ``LocalCluster`` of 2 single-threaded worker processes and on one of 1 (both
  started here, kernels warmed on each worker first), alternated round by round, fastest kept; target:
  1 worker / 2 workers >= 1.6, and both results identical to the local sweep's.

Usage: python bench/sweeps.py [--configs 100] [--funds 10000] [--rounds 2]  (``--configs 10`` for a quick run)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from distributed import Client, LocalCluster

from fundmodel.engines.montecarlo import load_config, simulate, warm_up
from fundmodel.engines.sweep import Parameter, SweepSpec, expand_grid, run_sweep
from fundmodel.scaleout.dask_runner import DaskPointRunner

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "fund.json"
SEED = 2026


def sweep_spec(configs: int, funds: int) -> SweepSpec:
    base: dict[str, Any] = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    values = tuple(0.8 * index / max(configs - 1, 1) for index in range(configs))
    return SweepSpec(
        base=base,
        parameters=(Parameter("reserveRatio", values),),
        metric="netTvpi.p50",
        iterations=funds,
        seed=SEED,
    )


def timed_simulate_calls(spec: SweepSpec, threads: int) -> float:
    configs = [load_config(point.body) for point in expand_grid(spec)]
    started = time.perf_counter()
    for config in configs:
        simulate(config, iterations=spec.iterations, seed=spec.seed, threads=threads)
    return time.perf_counter() - started


def timed_sweep(spec: SweepSpec, **options: Any) -> tuple[float, str]:
    started = time.perf_counter()
    result = run_sweep(spec, **options)
    return time.perf_counter() - started, json.dumps(result.to_json())


def overhead(spec: SweepSpec, rounds: int) -> tuple[dict[str, Any], str]:
    threads = len(os.sched_getaffinity(0))
    calls: list[float] = []
    sweeps: list[float] = []
    local_json = ""
    for _ in range(rounds):
        calls.append(timed_simulate_calls(spec, threads))
        seconds, local_json = timed_sweep(spec, threads=threads)
        sweeps.append(seconds)
    figures = {
        "threads": threads,
        "simulateCallsSeconds": round(min(calls), 3),
        "sweepSeconds": round(min(sweeps), 3),
        "ratio": round(min(sweeps) / min(calls), 3),
        "target": "<= 1.15",
    }
    return figures, local_json


def on_clusters(spec: SweepSpec, rounds: int) -> tuple[list[float], list[float], str, str]:
    """The sweep on 1 worker and on 2, alternated round by round (both clusters up, the idle one idle)."""

    def start(workers: int) -> LocalCluster:
        return LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
        )

    with (
        start(1) as one_cluster,
        start(2) as two_cluster,
        Client(one_cluster, set_as_default=False) as one_client,
        Client(two_cluster, set_as_default=False) as two_client,
    ):
        one_client.run(warm_up)
        two_client.run(warm_up)
        one_runner, two_runner = DaskPointRunner(one_client), DaskPointRunner(two_client)
        one_times: list[float] = []
        two_times: list[float] = []
        one_json = two_json = ""
        for _ in range(rounds):
            seconds, one_json = timed_sweep(spec, runner=one_runner)
            one_times.append(seconds)
            seconds, two_json = timed_sweep(spec, runner=two_runner)
            two_times.append(seconds)
        return one_times, two_times, one_json, two_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=100, help="configurations in the sweep")
    parser.add_argument("--funds", type=int, default=10_000, help="funds per configuration")
    parser.add_argument("--rounds", type=int, default=2, help="repetitions; the fastest is kept")
    arguments = parser.parse_args()
    spec = sweep_spec(arguments.configs, arguments.funds)
    warm_up()
    load_at_start = os.getloadavg()[0]
    overhead_figures, local_json = overhead(spec, arguments.rounds)
    one_times, two_times, one_json, two_json = on_clusters(spec, arguments.rounds)
    one_worker, two_workers = min(one_times), min(two_times)
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "usableCpus": len(os.sched_getaffinity(0)),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "loadAverageAtStart": round(load_at_start, 2),
            "loadAverageAtEnd": [round(value, 2) for value in os.getloadavg()],
        },
        "configs": arguments.configs,
        "funds": arguments.funds,
        "overhead": overhead_figures,
        "dask": {
            "oneWorkerSeconds": round(one_worker, 3),
            "twoWorkersSeconds": round(two_workers, 3),
            "roundsOneWorker": [round(value, 3) for value in one_times],
            "roundsTwoWorkers": [round(value, 3) for value in two_times],
            "speedup": round(one_worker / two_workers, 3),
            "target": ">= 1.6",
            "identicalToLocal": one_json == local_json and two_json == local_json,
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
