"""Benchmark of the Monte Carlo engine; prints one JSON document.

Measures (on whatever machine runs it; see docs/performance.md for the reference figures):

* ``warmUpSeconds``: first call, i.e. Numba compile or on-disk cache load.
* ``tenThousand``: 10,000 funds x 30 companies with full quarterly cash flows, waterfall and IRR, after
  warm-up; median and p90 over repeated runs, single-threaded and with the default thread count.
* ``rngFloor``: generating only the random numbers such a run needs at minimum (4 per company: entry,
  outcome, timing, exit multiple), with NumPy's PCG64 and with the engine's own counter-based stream.
* ``oneMillion``: 1,000,000 funds in a fresh child process: wall time and the child's peak RSS.

``medianCpuMs`` is the process CPU time (all threads): on a shared machine it shows how much of the wall
time was spent waiting for a core.

Usage: ``python bench/montecarlo.py [--repeats N] [--skip-million]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

import numpy as np

from fundmodel.engines.montecarlo import load_config, simulate, warm_up
from fundmodel.engines.montecarlo.jit import jit
from fundmodel.engines.montecarlo.rng import block_keys, uniform
from fundmodel.engines.montecarlo.runner import default_threads

FUNDS = 10_000
COMPANIES = 30
DRAWS_PER_COMPANY = 4
CONFIG: dict[str, Any] = {
    "fundSize": 100e6,
    "stageDistribution": {"seed": 0.7, "series_a": 0.3},
    "reserveRatio": 0.45,
    "recyclingRatio": 0.05,
    "stageProfiles": {"seed": {"checkSize": 1.2e6}, "series_a": {"checkSize": 2.7e6}},
}


@jit
def _hash_uniforms(key: np.uint64, count: int) -> float:
    total = 0.0
    for index in range(count):
        total += uniform(key, np.uint64(index))
    return total


def _timings(function: Any, repeats: int) -> dict[str, float]:
    samples = []
    cpu = []
    for _ in range(repeats):
        started = time.perf_counter()
        cpu_started = time.process_time()
        function()
        samples.append((time.perf_counter() - started) * 1e3)
        cpu.append((time.process_time() - cpu_started) * 1e3)
    samples.sort()
    return {
        "medianMs": round(statistics.median(samples), 2),
        "p90Ms": round(samples[min(len(samples) - 1, int(0.9 * len(samples)))], 2),
        "minMs": round(samples[0], 2),
        "medianCpuMs": round(statistics.median(cpu), 2),
        "runs": repeats,
    }


def _one_million() -> None:
    config = load_config(CONFIG)
    warm_up()
    started = time.perf_counter()
    cpu_started = time.process_time()
    result = simulate(config, iterations=1_000_000, seed=1)
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "seconds": round(seconds, 2),
                "cpuSeconds": round(cpu_seconds, 2),
                "peakRssMiB": round(peak_kib / 1024, 1),
                "medianNetTvpi": result.net_tvpi.percentiles[50],
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--skip-million", action="store_true")
    parser.add_argument("--one-million-child", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.one_million_child:
        _one_million()
        return

    started = time.perf_counter()
    warm_up()
    warm_up_seconds = time.perf_counter() - started
    config = load_config(CONFIG)
    companies = sum(simulate(config, iterations=10, seed=0).capital.companies_by_stage.values())
    threads = default_threads()
    draws = FUNDS * companies * DRAWS_PER_COMPANY
    key = block_keys(0, 0, 1)[0]
    _hash_uniforms(key, 10)
    generator = np.random.default_rng(0)

    report: dict[str, Any] = {
        "benchmark": "montecarlo",
        "numpy": np.__version__,
        "loadAverage1m": round(os.getloadavg()[0], 2),
        "warmUpSeconds": round(warm_up_seconds, 2),
        "tenThousand": {
            "funds": FUNDS,
            "companiesPerFund": companies,
            "singleThread": _timings(
                lambda: simulate(config, iterations=FUNDS, seed=1, threads=1), arguments.repeats
            ),
            "defaultThreads": {
                "threads": threads,
                **_timings(lambda: simulate(config, iterations=FUNDS, seed=1), arguments.repeats),
            },
        },
        "rngFloor": {
            "draws": draws,
            "numpyPcg64": _timings(lambda: generator.random(draws), arguments.repeats),
            "engineCounterStream": _timings(lambda: _hash_uniforms(key, draws), arguments.repeats),
        },
    }
    if not arguments.skip_million:
        child = subprocess.run(
            [sys.executable, __file__, "--one-million-child"],
            capture_output=True,
            text=True,
            check=True,
        )
        report["oneMillion"] = {"funds": 1_000_000, **json.loads(child.stdout)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
