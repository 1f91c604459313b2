"""`fundmodel sweep`, `sensitivity` and `backsolve` end to end (real engine, small runs)."""

import csv
import json
from pathlib import Path

from typer.testing import CliRunner

from fundmodel.cli.common import EXIT_USAGE
from fundmodel.cli.main import app

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fund.json"
PNG = b"\x89PNG\r\n\x1a\n"
runner = CliRunner()


def run(*arguments: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(arguments))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_sweep_json_is_the_grid_on_one_seed() -> None:
    code, out, _ = run(
        *(
            "sweep",
            str(EXAMPLE),
            "--vary",
            "reserveRatio=0.2:0.6:3",
            "--vary",
            "stageProfiles.Seed.exitMultipleMedian=2,4",
        ),
        *("--metric", "netTvpi.p50", "-n", "50", "--seed", "5", "--json"),
    )
    assert code == 0
    document = json.loads(out)
    assert document["seed"] == 5
    assert document["pointsDone"] == document["pointsTotal"] == 6
    assert [point["values"]["reserveRatio"] for point in document["points"]] == [0.2, 0.2, 0.4, 0.4, 0.6, 0.6]
    assert all(point["error"] is None for point in document["points"])


def test_sweep_writes_the_csv_and_the_heatmap(tmp_path: Path) -> None:
    table, heatmap = tmp_path / "grid.csv", tmp_path / "heatmap.png"
    code, out, _ = run(
        *("sweep", str(EXAMPLE), "--vary", "reserveRatio=0.2,0.99", "--vary", "carryRate=0.2:0.3:2"),
        *("--metric", "dpi.mean", "-n", "50", "--seed", "5", "--csv", str(table), "--plot", str(heatmap)),
    )
    assert code == 0
    assert "seed 5" in out
    rows = list(csv.DictReader(table.open(encoding="utf-8")))
    assert len(rows) == 4
    assert list(rows[0])[:3] == ["reserveRatio", "carryRate", "dpi.mean"]
    assert float(rows[0]["dpi.mean"]) > 0
    assert rows[2]["dpi.mean"] == ""  # reserveRatio 0.99 is invalid: that point's error, the sweep went on
    assert "reserveRatio" in rows[2]["error"]
    assert heatmap.read_bytes()[:8] == PNG


def test_sweep_plots_one_and_three_parameters(tmp_path: Path) -> None:
    line, panels = tmp_path / "line.png", tmp_path / "panels.png"
    common = ("--metric", "netTvpi.p50", "-n", "20", "--seed", "1")
    assert run("sweep", str(EXAMPLE), "--vary", "reserveRatio=0:0.8:3", *common, "--plot", str(line))[0] == 0
    three = ("--vary", "reserveRatio=0.2,0.5", "--vary", "carryRate=0.2,0.3", "--vary", "catchUp=0.5,1")
    assert run("sweep", str(EXAMPLE), *three, *common, "--plot", str(panels))[0] == 0
    assert line.read_bytes()[:8] == PNG
    assert panels.read_bytes()[:8] == PNG


def test_sensitivity_ranks_and_plots_the_tornado(tmp_path: Path) -> None:
    tornado = tmp_path / "tornado.png"
    code, out, _ = run(
        *(
            "sensitivity",
            str(EXAMPLE),
            "--vary",
            "followOnTopShare=0.1:0.9",
            "--vary",
            "reserveRatio=0.1:0.8",
        ),
        *("--metric", "netTvpi.p50", "-n", "50", "--seed", "5", "--json", "--plot", str(tornado)),
    )
    assert code == 0
    rows = json.loads(out)["rows"]
    assert [row["path"] for row in rows] == ["reserveRatio", "followOnTopShare"]
    assert rows[1]["swing"] == 0.0
    assert tornado.read_bytes()[:8] == PNG


def test_backsolve_reports_reached_and_not_reachable() -> None:
    common = ("--metric", "netTvpi.p50", "-n", "500", "--seed", "11", "--vary", "reserveRatio=0.1:0.9")
    code, out, _ = run(
        "backsolve", str(EXAMPLE), *common, "--target", "1.45", "--tolerance", "0.02", "--json"
    )
    assert code == 0
    document = json.loads(out)
    assert document["status"] == "reached"
    assert abs(document["achievedMetric"] - 1.45) <= 0.02
    code, out, _ = run("backsolve", str(EXAMPLE), *common, "--target", "50")
    assert code == 0
    assert "not reachable in [0.1, 0.9]" in out


def test_bad_paths_metrics_and_ranges_are_one_line_usage_errors() -> None:
    cases = [
        (
            ("sweep", str(EXAMPLE), "--vary", "reserve=0:1:3", "--metric", "dpi.mean"),
            "'reserve' is not a field",
        ),
        (("sweep", str(EXAMPLE), "--vary", "reserveRatio=0:1:1", "--metric", "dpi.mean"), "at least 2"),
        (
            ("sweep", str(EXAMPLE), "--vary", "reserveRatio=0.1", "--metric", "dpi.p51"),
            "choices: netTvpi.mean",
        ),
        (
            ("sensitivity", str(EXAMPLE), "--vary", "reserveRatio=0.1", "--metric", "dpi.mean"),
            "PATH=LOW:HIGH",
        ),
        (
            (
                "backsolve",
                str(EXAMPLE),
                "--vary",
                "reserveRatio=0.5:0.1",
                "--metric",
                "dpi.mean",
                "--target",
                "1",
            ),
            "must be below high",
        ),
        (("sweep", "missing.json", "--vary", "reserveRatio=0.1", "--metric", "dpi.mean"), "no such file"),
    ]
    for arguments, message in cases:
        code, out, err = run(*arguments, "-n", "20", "--seed", "1")
        assert code == EXIT_USAGE, (arguments, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert lines[0].startswith("error: ")
        assert message in lines[0]
        assert out == ""
