"""What commands import at start, and what their ``--help`` says.

``fundmodel mode get`` is typed during incidents: it must not load the engine (Numba, NumPy), the web stack
or Alembic. These tests check ``sys.modules`` in a fresh interpreter (structural, not a timing test; the
timing is in bench/cli_startup.py and docs/performance.md).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
import typer
from typer._click import Command, Context
from typer.testing import CliRunner

from fundmodel.cli import simulate as simulate_cli
from fundmodel.cli.main import app
from fundmodel.engines.montecarlo import MAX_ITERATIONS, MIN_ITERATIONS
from fundmodel.engines.montecarlo.metrics import TVPI_THRESHOLDS
from tests.api.servers import service_env
from tests.conftest import make_database

EXAMPLE_CONFIG = Path(__file__).parents[2] / "examples" / "fund.json"
HEAVY_MODULES = (
    "numba",
    "numpy",
    "fastapi",
    "matplotlib",
    "uvicorn",
    "alembic",
    "fundmodel.api",
    "fundmodel.engines",
)

# Runs the real entry point, then reports which heavy modules were loaded by the time it exits.
_REPORT_LOADED = f"""
import atexit, json, sys
heavy = {HEAVY_MODULES!r}
atexit.register(lambda: print(json.dumps([m for m in heavy if m in sys.modules]), file=sys.stderr))
from fundmodel.cli.main import main
sys.argv = ["fundmodel", *sys.argv[1:]]
main()
"""


def loaded_heavy_modules(
    args: list[str], database_url: str
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    completed = subprocess.run(
        [sys.executable, "-c", _REPORT_LOADED, *args],
        env=service_env(database_url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    loaded: list[str] = json.loads(completed.stderr.strip().splitlines()[-1])
    return completed, loaded


def leaf_commands() -> dict[str, Command]:
    """Every runnable command by its path (``"db backup"``), as ``fundmodel --help`` reaches them."""
    found: dict[str, Command] = {}

    def walk(command: Command, path: list[str]) -> None:
        if isinstance(getattr(command, "commands", None), Mapping):
            context = Context(command)
            for name in command.list_commands(context):  # type: ignore[attr-defined]
                walk(command.get_command(context, name), [*path, name])  # type: ignore[attr-defined]
        else:
            found[" ".join(path)] = command

    walk(typer.main.get_command(app), [])
    return found


def test_mode_get_loads_neither_the_engine_nor_the_web_stack(tmp_path: Path) -> None:
    url = make_database("sqlite", tmp_path, None)
    completed, loaded = loaded_heavy_modules(["mode", "get", "--json"], url)
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["mode"] == "warn"
    assert loaded == []


def test_mode_set_loads_neither_the_engine_nor_the_web_stack(tmp_path: Path) -> None:
    url = make_database("sqlite", tmp_path, None)
    args = ["mode", "set", "off", "--actor", "pytest", "--reason", "start-up check"]
    completed, loaded = loaded_heavy_modules(args, url)
    assert completed.returncode == 0, completed.stderr
    assert loaded == []


def test_registering_every_command_stays_light(tmp_path: Path) -> None:
    # `fundmodel --help` imports every command's module: none may pull in the heavy modules at import.
    completed, loaded = loaded_heavy_modules(["--help"], f"sqlite:///{tmp_path}/unused.sqlite3")
    assert completed.returncode == 0, completed.stderr
    assert "simulate" in completed.stdout
    assert loaded == []


def test_a_command_still_loads_what_it_needs(tmp_path: Path) -> None:
    # The counterpart of the tests above: the check sees modules that really are loaded.
    completed, loaded = loaded_heavy_modules(
        ["simulate", str(EXAMPLE_CONFIG), "-n", "100", "--seed", "1", "--json"],
        f"sqlite:///{tmp_path}/unused.sqlite3",
    )
    assert completed.returncode == 0, completed.stderr
    assert {"numba", "numpy", "fundmodel.engines"} <= set(loaded)


def test_every_command_is_reachable() -> None:
    assert set(leaf_commands()) == {
        "demo",
        "normalize",
        "serve",
        "keys create",
        "keys list",
        "mode get",
        "mode set",
        "rollout status",
        "rollout advance",
        "rollout rollback",
        "rollout extend-warn",
        "rollout exempt",
        "rollout reset-observation",
        "rollout history",
        "rollout offenders",
        "rollout brownout schedule",
        "rollout brownout list",
        "rollout brownout cancel",
        "simulate",
        "sweep",
        "sensitivity",
        "backsolve",
        "db migrate",
        "db seed-demo",
        "db normalize-stages",
        "db constrain-stages",
        "db backup",
        "db verify-backup",
        "db restore",
        "db verify",
        "db prune-usage",
        "notifications deliver",
        "notifications list",
    }


@pytest.mark.parametrize("path", sorted(leaf_commands()))
def test_help_shows_no_type_after_a_flag(path: str) -> None:
    result = CliRunner().invoke(app, [*path.split(), "--help"], env={"COLUMNS": "200"}, color=False)
    assert result.exit_code == 0, result.output
    assert "--help" in result.output
    assert "<bool>" not in result.output


def test_help_of_options_with_values_still_shows_their_type() -> None:
    result = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"}, color=False)
    assert re.search(r"--port\s+<int", result.output), result.output


def test_simulate_help_names_the_odds_and_limits_the_engine_uses() -> None:
    summary = (simulate_cli.simulate_command.__doc__ or "").splitlines()[0]
    odds = re.search(r"odds of net TVPI >= ((?:\d+x(?:, )?)+)", summary)
    assert odds is not None, summary
    assert tuple(int(value) for value in re.findall(r"(\d+)x", odds.group(1))) == TVPI_THRESHOLDS
    expected_help = f"Simulated funds ({MIN_ITERATIONS:,} to {MAX_ITERATIONS:,})."
    assert expected_help == simulate_cli.ITERATIONS_HELP


def test_serve_help_points_to_where_the_settings_are_documented() -> None:
    result = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"}, color=False)
    assert "docs/api.md" in result.output
    configuration = (Path(__file__).parents[2] / "docs" / "api.md").read_text(encoding="utf-8")
    assert "\n## Configuration\n" in configuration
    assert "`STAGE_SUNSET_DATE`" in configuration
