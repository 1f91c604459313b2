import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fundmodel.cli.main import app

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fund.json"
runner = CliRunner()


def run(*arguments: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["simulate", *arguments])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_example_is_a_100m_fund_with_about_30_investments() -> None:
    code, out, _ = run(str(EXAMPLE), "--iterations", "200", "--seed", "1", "--json")
    assert code == 0
    document = json.loads(out)
    assert document["capital"]["commitments"] == 100e6
    assert 25 <= document["capital"]["initialCompanies"] <= 35


def test_json_output_is_the_engine_json_and_reproducible() -> None:
    first = run(str(EXAMPLE), "-n", "300", "-s", "42", "--json")
    second = run(str(EXAMPLE), "-n", "300", "-s", "42", "--json")
    assert first[0] == 0
    assert first[1] == second[1]
    document = json.loads(first[1])
    assert document["engine"]["iterations"] == 300
    assert document["engine"]["seed"] == 42
    assert set(document["probTvpiAtLeast"]) == {"1", "2", "3", "5", "10"}


def test_table_output_names_the_metrics_and_the_seed() -> None:
    code, out, _ = run(str(EXAMPLE), "-n", "200", "-s", "9")
    assert code == 0
    for text in ("Net TVPI", "DPI", "Net IRR", "Gross MOIC", "P(net TVPI >= 3x)", "seed 9", "Reserve"):
        assert text in out


def test_without_a_seed_one_is_chosen_and_reported() -> None:
    code, out, _ = run(str(EXAMPLE), "-n", "100", "--json")
    assert code == 0
    seed = json.loads(out)["engine"]["seed"]
    assert isinstance(seed, int)
    assert seed >= 0


def test_plot_is_a_png(tmp_path: Path) -> None:
    target = tmp_path / "fund.png"
    code, _, _ = run(str(EXAMPLE), "-n", "300", "-s", "3", "--plot", str(target))
    assert code == 0
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unwritable_plot_is_one_line_exit_1(tmp_path: Path) -> None:
    code, _, err = run(str(EXAMPLE), "-n", "100", "-s", "3", "--plot", str(tmp_path / "no" / "x.png"))
    assert code == 1
    assert err.startswith("error: cannot write plot")
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "invalid JSON at line 1"),
        ('{"fundSize": 1e8, "stageDistribution": {"seed": 0.5, "bogus": 0.5}}', "UNKNOWN_STAGE"),
        ('{"fundSize": -5, "stageDistribution": {"seed": 1}}', "fundSize"),
        ('{"fundSize": NaN, "stageDistribution": {"seed": 1}}', "fundSize"),
        ('{"fundSize": 1e8, "stageDistribution": {"seed": 0.7}}', "SUM_MISMATCH"),
        ("[1, 2]", "invalid simulation config"),
    ],
)
def test_bad_config_is_one_line_exit_2(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "fund.json"
    path.write_text(content)
    code, out, err = run(str(path), "-n", "100")
    assert code == 2
    assert out == ""
    assert err.startswith("error: ")
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_missing_file_and_directory(tmp_path: Path) -> None:
    code, _, err = run(str(tmp_path / "missing.json"))
    assert code == 2
    assert "no such file" in err
    code, _, err = run(str(tmp_path))
    assert code == 2
    assert "directory" in err


@pytest.mark.parametrize("iterations", ["0", "5", "999999999"])
def test_iterations_out_of_range(iterations: str) -> None:
    code, _, err = run(str(EXAMPLE), "-n", iterations)
    assert code == 2
    assert "iterations must be between" in err


def test_usage_errors_exit_2() -> None:
    code, _, _ = run(str(EXAMPLE), "-n", "many")
    assert code == 2


def test_large_runs_show_progress_without_breaking_json(monkeypatch: pytest.MonkeyPatch) -> None:
    from fundmodel.cli import simulate as simulate_cli
    from fundmodel.engines.montecarlo import runner as engine_runner

    monkeypatch.setattr(simulate_cli, "PROGRESS_THRESHOLD", 100)
    monkeypatch.setattr(engine_runner, "CHUNK_FUNDS", 100)
    code, out, _ = run(str(EXAMPLE), "-n", "400", "-s", "5", "--json")
    assert code == 0
    assert json.loads(out)["engine"]["iterations"] == 400


def test_export_funds_writes_one_row_per_fund_matching_the_summary(tmp_path: Path) -> None:
    target = tmp_path / "funds.csv"
    code, out, _ = run(str(EXAMPLE), "-n", "400", "-s", "8", "--json", "--export-funds", str(target))
    assert code == 0
    document = json.loads(out)
    with target.open(encoding="utf-8", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == 400
    assert [int(row["fund"]) for row in rows] == list(range(400))
    for key in ("netTvpi", "dpi", "netIrr", "grossMoic"):
        values = np.array([float(row[key]) for row in rows])
        assert float(np.percentile(values, 50)) == pytest.approx(document[key]["p50"], rel=1e-12)
    assert float(np.mean([float(row["paidIn"]) for row in rows])) == pytest.approx(
        document["capital"]["paidIn"], rel=1e-12
    )


def test_unwritable_export_is_one_line_exit_1(tmp_path: Path) -> None:
    code, _, err = run(str(EXAMPLE), "-n", "100", "-s", "3", "--export-funds", str(tmp_path / "no" / "f.csv"))
    assert code == 1
    assert err.startswith("error: cannot write the fund table")
    assert len(err.strip().splitlines()) == 1


def test_table_output_shows_where_the_returns_come_from() -> None:
    code, out, _ = run(str(EXAMPLE), "-n", "300", "-s", "2")
    assert code == 0
    for text in (
        "P(a company returns the whole fund)",
        "Gross MOIC of follow-ons",
        "Loss ratio of initial checks",
        "Financings by multiple",
        ">=50x",
    ):
        assert text in out


def test_plot_has_a_panel_for_the_yearly_bands(tmp_path: Path) -> None:
    target = tmp_path / "fund.png"
    code, _, _ = run(str(EXAMPLE), "-n", "300", "-s", "3", "--plot", str(target))
    assert code == 0
    width = int.from_bytes(target.read_bytes()[16:20], "big")  # PNG IHDR: width in pixels
    assert width == round(3 * 6.5 * 110)  # histogram, TVPI/DPI bands, J-curve
