"""Times ``fundmodel mode get --json`` against the bare imports it cannot avoid, and prints JSON.

The reference is ``python -c "import typer, sqlalchemy, pydantic_settings"``: the command-line, database and
settings libraries any ``mode get`` needs. Both run as fresh processes (wall time, start to exit), in
alternating rounds so that load from other work on the machine hits both alike; the report has each one's
median and the ratio of the medians (target: at most 1.6).

``mode get`` reads a migrated SQLite database in a temporary directory, so the figure covers settings,
engine, one query and the output, not only the imports. ``--previous-src DIR`` times the same command from
another source tree too (e.g. ``git archive <commit> src | tar -x -C /tmp/old`` and ``--previous-src
/tmp/old/src``), in the same rounds. Usage: ``python bench/cli_startup.py [--rounds N] [--previous-src DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASELINE = [sys.executable, "-c", "import typer, sqlalchemy, pydantic_settings"]
MODE_GET = [sys.executable, "-c", "from fundmodel.cli.main import main; main()", "mode", "get", "--json"]
TARGET_RATIO = 1.6


def run_seconds(command: list[str], env: dict[str, str], cwd: Path) -> float:
    """Wall time of one run of ``command``, start to exit."""
    start = time.perf_counter()
    completed = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if completed.returncode != 0:
        raise SystemExit(f"{' '.join(command[2:])!r} failed: {completed.stderr.strip()}")
    return elapsed


def summarize(samples: list[float]) -> dict[str, float]:
    return {
        "median_s": round(statistics.median(samples), 4),
        "min_s": round(min(samples), 4),
        "max_s": round(max(samples), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="alternating rounds (default 15)")
    parser.add_argument("--previous-src", type=Path, help="a previous src/ tree to time side by side")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="fundmodel-cli-bench-") as directory:
        workdir = Path(directory)
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}",
            "LOG_LEVEL": "WARNING",
        }
        migrate = [sys.executable, "-c", "from fundmodel.cli.main import main; main()", "db", "migrate"]
        run_seconds(migrate, env, workdir)
        previous_env = {**env, "PYTHONPATH": str(args.previous_src.resolve())} if args.previous_src else None
        runs: list[tuple[list[str], dict[str, str], list[float]]] = [
            (BASELINE, env, []),
            (MODE_GET, env, []),
        ]
        if previous_env is not None:
            runs.append((MODE_GET, previous_env, []))
        for command, command_env, _ in runs:
            # One untimed run each: the first start after an install compiles .pyc files.
            run_seconds(command, command_env, workdir)
        for round_number in range(args.rounds):
            # Rotate which goes first, so none always runs right after another.
            shift = round_number % len(runs)
            for command, command_env, samples in runs[shift:] + runs[:shift]:
                samples.append(run_seconds(command, command_env, workdir))

    baseline, mode_get = runs[0][2], runs[1][2]
    ratio = statistics.median(mode_get) / statistics.median(baseline)
    previous: dict[str, object] = {}
    if previous_env is not None:
        previous_samples = runs[2][2]
        previous = {
            "previous": {
                "command": f"fundmodel mode get --json from {args.previous_src}",
                **summarize(previous_samples),
                "ratio_of_medians": round(
                    statistics.median(previous_samples) / statistics.median(baseline), 3
                ),
            }
        }
    print(
        json.dumps(
            {
                "benchmark": "cli_startup",
                "python": platform.python_version(),
                "machine": platform.machine(),
                "load_average": [round(value, 2) for value in os.getloadavg()],
                "rounds": args.rounds,
                "baseline": {"command": "import typer, sqlalchemy, pydantic_settings", **summarize(baseline)},
                "mode_get": {"command": "fundmodel mode get --json", **summarize(mode_get)},
                "ratio_of_medians": round(ratio, 3),
                **previous,
                "target": {"ratio_of_medians": TARGET_RATIO},
                "met": ratio <= TARGET_RATIO,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
