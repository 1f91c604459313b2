"""The calibration table in docs/model.md is the output of its documented invocation of bench/calibration.py.

The run is deterministic (fixed scenarios, seed and iteration count), so any engine change that moves a
figure fails here until the table is refreshed with ``python bench/calibration.py --update-docs``.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "calibration.py"


def calibration() -> ModuleType:
    spec = importlib.util.spec_from_file_location("calibration_report", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


def run(*arguments: str) -> str:
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def test_the_documented_table_is_the_scripts_output() -> None:
    report = calibration()
    assert report.INVOCATION == "python bench/calibration.py --markdown"
    documented = report.documented_table((ROOT / "docs" / "model.md").read_text(encoding="utf-8"))
    assert run("--markdown") == documented, (
        "docs/model.md's calibration table is stale: run `python bench/calibration.py --update-docs`"
    )


def test_the_json_report_keeps_counts_and_dollars_apart_and_names_a_source_for_every_row() -> None:
    report = calibration()
    document = json.loads(run("--iterations", "200", "--seed", "3"))
    assert document["iterations"] == 200
    assert document["seed"] == 3
    rows = document["rows"]
    assert {row["basis"] for row in rows} == {"funds", "count", "dollars"}
    financings = [row for row in rows if row["figure"].startswith("financings ")]
    assert [row["figure"].removeprefix("financings ") for row in financings] == [
        "<1x",
        "1-5x",
        "5-10x",
        "10-20x",
        "20-50x",
        ">=50x",
    ]
    assert all(row["basis"] == "count" for row in financings)
    assert any(row["basis"] == "dollars" for row in rows)
    for row in rows:
        assert row["verdict"] in {"inside", "below", "above", "no published figure"}
        assert all(key in report.SOURCES for key in row["source"].split())


def test_update_docs_replaces_only_the_generated_block() -> None:
    report = calibration()
    text = (
        f"# Model\n\n{report.SECTION}\n\nintro\n\n{report.BEGIN}\nold table\n{report.END}\n\nwhy\n\n## Next\n"
    )
    updated = report.update_docs(text, "new table\n")
    assert updated == text.replace("old table\n", "new table\n")
    assert report.documented_table(updated) == "new table\n"
