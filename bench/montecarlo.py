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

``--against SRC`` compares this tree's engine with another version of the package (``SRC`` is the ``src``
directory of e.g. ``git worktree add /tmp/fm-old HEAD~1``), side by side in one run: one worker process
per version, the 10,000-fund runs alternating between them (which goes first alternates too), so load
from other work on the machine hits both alike; then the 1,000,000-fund child and the first-run compile
(an empty ``NUMBA_CACHE_DIR``) and cache-load times, alternating the same way. Medians per version and the
ratio new / old of the medians.

``--baseline-ref REF`` does the same against a git revision of this repository (e.g. ``0cfc463``, engine
1.0.1): it checks ``REF`` out into a temporary ``git worktree``, compares against its ``src`` and removes
the worktree afterwards.

Usage: ``python bench/montecarlo.py [--repeats N] [--skip-million]
[--against SRC | --baseline-ref REF] [--rounds N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np

import fundmodel
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


def _warm_up_child() -> None:
    print(json.dumps({"seconds": warm_up()}))


def _worker() -> None:
    """Serve 10,000-fund runs on request: a line "single" or "default" in, one JSON timing line out."""
    config = load_config(CONFIG)
    warm_up()
    print("ready", flush=True)
    for line in sys.stdin:
        threads = 1 if line.strip() == "single" else None
        started = time.perf_counter()
        cpu_started = time.process_time()
        simulate(config, iterations=FUNDS, seed=1, threads=threads)
        milliseconds = (time.perf_counter() - started) * 1e3
        cpu_milliseconds = (time.process_time() - cpu_started) * 1e3
        print(json.dumps({"ms": milliseconds, "cpuMs": cpu_milliseconds}), flush=True)


def _child_environment(source: Path, cache_dir: str | None = None) -> dict[str, str]:
    environment = {**os.environ, "PYTHONPATH": str(source)}
    if cache_dir is not None:
        environment["NUMBA_CACHE_DIR"] = cache_dir
    return environment


@contextmanager
def _worker_process(source: Path) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, __file__, "--worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=_child_environment(source),
    )
    try:
        _, stdout = _pipes(process)
        if stdout.readline().strip() != "ready":
            raise RuntimeError(f"the benchmark worker for {source} did not start")
        yield process
    finally:
        if process.stdin is not None:
            process.stdin.close()
        process.wait(timeout=60)


def _pipes(process: subprocess.Popen[str]) -> tuple[IO[str], IO[str]]:
    if process.stdin is None or process.stdout is None:
        raise RuntimeError("the benchmark worker was started without pipes")
    return process.stdin, process.stdout


def _ask(process: subprocess.Popen[str], workload: str) -> dict[str, float]:
    stdin, stdout = _pipes(process)
    stdin.write(workload + "\n")
    stdin.flush()
    timing: dict[str, float] = json.loads(stdout.readline())
    return timing


def _side_by_side(samples: dict[str, list[float]]) -> dict[str, float]:
    """Medians of the ``old`` and ``new`` samples and their ratio new / old."""
    old_median = statistics.median(samples["old"])
    new_median = statistics.median(samples["new"])
    return {
        "oldMedian": round(old_median, 3),
        "newMedian": round(new_median, 3),
        "ratioNewOverOld": round(new_median / old_median, 3),
        "runsEach": len(samples["old"]),
    }


def _child_json(arguments: list[str], environment: dict[str, str]) -> dict[str, Any]:
    child = subprocess.run(
        [sys.executable, __file__, *arguments], capture_output=True, text=True, check=True, env=environment
    )
    result: dict[str, Any] = json.loads(child.stdout)
    return result


def _compare(against: Path, repeats: int, rounds: int, skip_million: bool) -> dict[str, Any]:
    sources = {"old": against.resolve(), "new": Path(fundmodel.__file__).resolve().parents[1]}
    report: dict[str, Any] = {
        "benchmark": "montecarlo side by side",
        "old": str(sources["old"]),
        "new": str(sources["new"]),
        "loadAverage1mAtStart": round(os.getloadavg()[0], 2),
    }
    samples: dict[str, dict[str, list[float]]] = {
        f"{workload}{kind}": {"old": [], "new": []}
        for workload in ("single", "default")
        for kind in ("Ms", "CpuMs")
    }
    with _worker_process(sources["old"]) as old_worker, _worker_process(sources["new"]) as new_worker:
        workers = {"old": old_worker, "new": new_worker}
        for run in range(repeats):
            order = ("old", "new") if run % 2 == 0 else ("new", "old")
            for workload in ("single", "default"):
                for version in order:
                    timing = _ask(workers[version], workload)
                    samples[f"{workload}Ms"][version].append(timing["ms"])
                    samples[f"{workload}CpuMs"][version].append(timing["cpuMs"])
    report["tenThousand"] = {
        "funds": FUNDS,
        "singleThreadMs": _side_by_side(samples["singleMs"]),
        "singleThreadCpuMs": _side_by_side(samples["singleCpuMs"]),
        "defaultThreads": default_threads(),
        "defaultThreadsMs": _side_by_side(samples["defaultMs"]),
        "defaultThreadsCpuMs": _side_by_side(samples["defaultCpuMs"]),
    }

    million: dict[str, dict[str, list[float]]] = {
        name: {"old": [], "new": []} for name in ("seconds", "cpuSeconds", "peakRssMiB")
    }
    cold: dict[str, list[float]] = {"old": [], "new": []}
    cached: dict[str, list[float]] = {"old": [], "new": []}
    for run in range(rounds):
        order = ("old", "new") if run % 2 == 0 else ("new", "old")
        for version in order:
            if not skip_million:
                measured = _child_json(["--one-million-child"], _child_environment(sources[version]))
                for name, values in million.items():
                    values[version].append(measured[name])
            with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache_dir:
                environment = _child_environment(sources[version], cache_dir)
                cold[version].append(_child_json(["--warm-up-child"], environment)["seconds"])
                cached[version].append(_child_json(["--warm-up-child"], environment)["seconds"])
    if not skip_million:
        report["oneMillion"] = {name: _side_by_side(values) for name, values in million.items()}
    report["warmUpSeconds"] = {
        "compileFromScratch": _side_by_side(cold),
        "loadFromCache": _side_by_side(cached),
    }
    report["loadAverage1mAtEnd"] = round(os.getloadavg()[0], 2)
    return report


@contextmanager
def _baseline_worktree(ref: str) -> Iterator[Path]:
    """A temporary detached worktree of ``ref``; yields its ``src`` directory."""
    repository = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory(prefix="fundmodel-baseline-") as parent:
        worktree = Path(parent) / "tree"
        subprocess.run(
            ["git", "-C", str(repository), "worktree", "add", "--detach", str(worktree), ref],
            check=True,
            capture_output=True,
        )
        try:
            yield worktree / "src"
        finally:
            subprocess.run(
                ["git", "-C", str(repository), "worktree", "remove", "--force", str(worktree)],
                check=False,
                capture_output=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--skip-million", action="store_true")
    parser.add_argument("--against", type=Path, help="src directory of another version to compare with")
    parser.add_argument(
        "--baseline-ref", help="git revision to compare with (checked out in a temporary worktree)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="with --against: 1M-fund and compile runs each")
    parser.add_argument("--one-million-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--warm-up-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.one_million_child:
        _one_million()
        return
    if arguments.warm_up_child:
        _warm_up_child()
        return
    if arguments.worker:
        _worker()
        return
    if arguments.against is not None:
        comparison = _compare(arguments.against, arguments.repeats, arguments.rounds, arguments.skip_million)
        print(json.dumps(comparison, indent=2))
        return
    if arguments.baseline_ref is not None:
        with _baseline_worktree(arguments.baseline_ref) as baseline:
            comparison = _compare(baseline, arguments.repeats, arguments.rounds, arguments.skip_million)
        comparison["baselineRef"] = arguments.baseline_ref
        print(json.dumps(comparison, indent=2))
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
