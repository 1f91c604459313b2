"""``fundmodel simulate FILE.json``: run the Monte Carlo engine on a fund config from a file.

Output: Rich tables (default), the engine's JSON (``--json``), optionally a PNG (``--plot``) with the
net TVPI histogram, its percentile markers, the TVPI/DPI bands by year and the median J-curve, and a CSV
with one row per simulated fund (``--export-funds``). Bad files and configs end with one
line on stderr and exit code 2; other failures exit 1 (``cli/common.exit_code_for``). Never a traceback.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from fundmodel.cli.common import exit_code_for
from fundmodel.errors import FundmodelError, InvalidInputError

if TYPE_CHECKING:
    from fundmodel.engines.montecarlo import SimulationConfig, SimulationResult

# The engine (NumPy, Numba) is imported when a simulation runs, not when the command is registered: every
# other command's start-up would pay for it. The help's figures repeat the engine's constants
# (MIN_ITERATIONS, MAX_ITERATIONS, TVPI_THRESHOLDS); tests/cli/test_startup.py keeps them equal.
ITERATIONS_HELP = "Simulated funds (10 to 2,000,000)."
DEFAULT_ITERATIONS = 10_000
PROGRESS_THRESHOLD = 200_000
"""Runs at least this large show a progress bar on stderr."""


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate_command)


def simulate_command(
    file: Annotated[Path, typer.Argument(help="Fund config as JSON (see examples/fund.json).")],
    iterations: Annotated[
        int,
        typer.Option(
            "--iterations",
            "-n",
            help=ITERATIONS_HELP,
        ),
    ] = DEFAULT_ITERATIONS,
    seed: Annotated[
        int | None,
        typer.Option("--seed", "-s", help="Random seed; omitted = a fresh one, shown in the output."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            help="Write a PNG with the TVPI histogram, the TVPI/DPI bands by year and the median J-curve.",
        ),
    ] = None,
    export_funds: Annotated[
        Path | None,
        typer.Option(
            "--export-funds",
            help="Write a CSV, one row per simulated fund (netTvpi, dpi, netIrr, grossMoic, paidIn, ...).",
        ),
    ] = None,
) -> None:
    """Simulate a venture fund: net TVPI, DPI and IRR; odds of net TVPI >= 1x, 2x, 3x, 5x, 10x."""
    from fundmodel.engines.montecarlo import load_config

    error_console = Console(stderr=True)
    try:
        config = load_config(_read_json(file))
        chosen_seed = secrets.randbits(63) if seed is None else seed
        result = _run(config, iterations, chosen_seed, error_console)
        if as_json:
            typer.echo(json.dumps(result.to_json(), allow_nan=False))
        else:
            render(Console(), config, result)
        if plot is not None:
            write_plot(result, plot)
        if export_funds is not None:
            write_funds(result, export_funds)
    except FundmodelError as error:
        typer.echo(f"error: {error.detail}", err=True)
        raise typer.Exit(exit_code_for(error)) from None


def _read_json(file: Path) -> object:
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInputError(f"{file}: no such file") from None
    except IsADirectoryError:
        raise InvalidInputError(f"{file}: is a directory, not a JSON file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInputError(f"{file}: cannot be read ({error})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidInputError(
            f"{file}: invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}"
        ) from None


def _run(config: SimulationConfig, iterations: int, seed: int, console: Console) -> SimulationResult:
    from fundmodel.engines.montecarlo import simulate

    if iterations < PROGRESS_THRESHOLD:
        return simulate(config, iterations=iterations, seed=seed)
    columns = (
        TextColumn("simulating funds"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("simulate", total=iterations)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        return simulate(config, iterations=iterations, seed=seed, progress=advance)


def _multiple(value: float) -> str:
    return f"{value:.2f}x"


def _percent(value: float) -> str:
    return f"{value * 100:.1f}%"


def _money(value: float) -> str:
    return f"${value / 1e6:,.1f}M"


def render(console: Console, config: SimulationConfig, result: SimulationResult) -> None:
    """Print the result as Rich tables."""
    document = result.to_json()
    capital = document["capital"]
    engine = document["engine"]
    console.print(
        f"[bold]{_money(config.fund_size)} fund[/bold], {capital['initialCompanies']} initial "
        f"investments, {engine['iterations']:,} simulated funds, seed {engine['seed']} "
        f"(engine {engine['version']})"
    )

    levels = ["mean", "p5", "p10", "p25", "p50", "p75", "p90", "p95"]
    table = Table(title="Outcome distribution across simulated funds")
    table.add_column("metric")
    for level in levels:
        table.add_column(level, justify="right")
    rows: list[tuple[str, str, Any]] = [
        ("Net TVPI", "netTvpi", _multiple),
        ("DPI", "dpi", _multiple),
        ("RVPI", "rvpi", _multiple),
        ("Net IRR", "netIrr", _percent),
        ("Gross MOIC", "grossMoic", _multiple),
        ("Loss ratio", "lossRatio", _percent),
    ]
    for label, key, formatter in rows:
        table.add_row(label, *(formatter(document[key][level]) for level in levels))
    console.print(table)

    odds = Table(title="Odds and tail risk")
    odds.add_column("measure")
    odds.add_column("value", justify="right")
    for threshold, probability in document["probTvpiAtLeast"].items():
        odds.add_row(f"P(net TVPI >= {threshold}x)", _percent(probability))
    for key, label, formatter in (("netTvpi", "net TVPI", _multiple), ("netIrr", "net IRR", _percent)):
        risk = document["risk"][key]
        for level in ("5", "10"):
            odds.add_row(f"VaR {level}% of {label}", formatter(risk["valueAtRisk"][level]))
            odds.add_row(f"CVaR {level}% of {label}", formatter(risk["expectedShortfall"][level]))
    console.print(odds)

    money = Table(title="Capital (means across simulated funds)")
    money.add_column("item")
    money.add_column("amount", justify="right")
    money.add_row("Management fees", _money(capital["managementFees"]))
    money.add_row("Fund expenses", _money(capital["fundExpenses"]))
    money.add_row("Initial checks", _money(capital["deployed"]["initial"]))
    money.add_row("Follow-ons", _money(capital["deployed"]["followOn"]))
    money.add_row(
        "Reserve used",
        f"{_money(capital['reserveUsed'])} of {_money(capital['reserve'])} "
        f"({_percent(capital['reserveUsage'])})",
    )
    money.add_row("Recycled", _money(capital["recycled"]))
    money.add_row("Paid-in capital", _money(capital["paidIn"]))
    money.add_row("Carry paid", _money(capital["carryPaid"]))
    allocation = ", ".join(
        f"{stage} {weight:.0%} ({capital['companiesByStage'][stage]} cos)"
        for stage, weight in document["stageDistribution"].items()
    )
    money.add_row("Stage distribution", allocation)
    console.print(money)
    _render_sources(console, document)


def _render_sources(console: Console, document: dict[str, Any]) -> None:
    # Engine outputs added in engine 2 (issue 11): shown when the result carries them.
    if "probFundReturner" in document or "returnsBySource" in document:
        sources = Table(title="Where the returns come from")
        sources.add_column("measure")
        sources.add_column("value", justify="right")
        if "probFundReturner" in document:
            sources.add_row("P(a company returns the whole fund)", _percent(document["probFundReturner"]))
        for key, label in (("initial", "initial checks"), ("followOn", "follow-ons")):
            source = document.get("returnsBySource", {}).get(key)
            if source is not None:
                sources.add_row(f"Gross MOIC of {label}", _multiple(source["grossMoic"]))
                sources.add_row(f"Loss ratio of {label} (dollars < 1x)", _percent(source["lossRatio"]))
        console.print(sources)
    outcomes = document.get("dealOutcomes")
    if outcomes is not None:
        buckets = list(outcomes["byCount"])
        table = Table(title="Financings by multiple (initial checks and follow-ons, all funds)")
        table.add_column("share of")
        for bucket in buckets:
            table.add_column(bucket, justify="right")
        table.add_row("count", *(_percent(outcomes["byCount"][bucket]) for bucket in buckets))
        table.add_row("dollars", *(_percent(outcomes["byDollars"][bucket]) for bucket in buckets))
        console.print(table)


def write_funds(result: SimulationResult, path: Path) -> None:
    """Write the per-fund table as CSV (``fundmodel.simulations.fund_table``)."""
    from fundmodel.simulations.fund_table import write_fund_table

    try:
        with path.open("w", encoding="utf-8", newline="") as stream:
            write_fund_table(result, stream)
    except OSError as error:
        raise FundmodelError(f"cannot write the fund table to {path}: {error.strerror or error}") from None


def write_plot(result: SimulationResult, path: Path) -> None:
    """Write the TVPI histogram (with percentile markers), the TVPI/DPI bands by year when the result
    has them, and the median J-curve as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    bands = result.to_json().get("yearlyBands")
    panels = 3 if bands is not None else 2
    figure, axes = pyplot.subplots(1, panels, figsize=(6.5 * panels, 5), dpi=110)
    try:
        _plot_histogram(axes[0], result)
        if bands is not None:
            _plot_bands(axes[1], bands)
        _plot_j_curve(axes[-1], result)
        figure.tight_layout()
        figure.savefig(path, format="png")
    except OSError as error:
        raise FundmodelError(f"cannot write plot to {path}: {error.strerror or error}") from None
    finally:
        pyplot.close(figure)


def _plot_histogram(histogram: Any, result: SimulationResult) -> None:
    tvpi = result.samples["netTvpi"]
    percentiles = result.net_tvpi.percentiles
    upper = max(float(percentiles[95]) * 1.6, 1.5)
    histogram.hist(tvpi.clip(max=upper), bins=80, color="#4C72B0", alpha=0.85)
    for level, style in ((5, ":"), (25, "--"), (50, "-"), (75, "--"), (95, ":")):
        value = percentiles[level]
        histogram.axvline(value, color="#C44E52", linestyle=style, linewidth=1.4)
        histogram.annotate(
            f"p{level} {value:.2f}x",
            xy=(value, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, -14 - 12 * (level in (25, 75))),
            textcoords="offset points",
            fontsize=8,
            color="#C44E52",
            bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none"},
        )
    histogram.set_title(
        f"Net TVPI across {result.engine.iterations:,} simulated funds"
        f" (values above {upper:.1f}x in the last bin)",
        fontsize=10,
    )
    histogram.set_xlabel("net TVPI (x)")
    histogram.set_ylabel("simulated funds")


def _plot_bands(axis: Any, bands: dict[str, Any]) -> None:
    years = bands["years"]
    for key, label, color in (("tvpi", "TVPI", "#4C72B0"), ("dpi", "DPI", "#55A868")):
        band = bands[key]
        axis.fill_between(years, band["p10"], band["p90"], color=color, alpha=0.12, linewidth=0)
        axis.fill_between(
            years, band["p25"], band["p75"], color=color, alpha=0.28, linewidth=0, label=f"{label} p25-p75"
        )
        axis.plot(years, band["p50"], color=color, linewidth=2, label=f"{label} median (band p10-p90)")
    axis.axhline(1.0, color="grey", linewidth=0.8)
    axis.set_title("Net TVPI and DPI by year across simulated funds", fontsize=10)
    axis.set_xlabel("years since first close")
    axis.set_ylabel("multiple of paid-in (x)")
    axis.legend(fontsize=8, loc="upper left")


def _plot_j_curve(curve: Any, result: SimulationResult) -> None:
    years = [quarter / 4 for quarter in result.j_curve.quarters]
    millions = [value / 1e6 for value in result.j_curve.median_cumulative_net_cash_flow]
    curve.plot(years, millions, color="#55A868", linewidth=2, label="distributions - calls (no NAV)")
    curve.axhline(0.0, color="grey", linewidth=0.8)
    below = [value < 0 for value in millions]
    curve.fill_between(years, millions, 0.0, where=below, alpha=0.15, color="#C44E52")
    curve.set_title(
        "Median J-curve: cumulative LP net cash flow\n(cash only: remaining NAV is excluded)", fontsize=10
    )
    curve.set_xlabel("years since first close")
    curve.set_ylabel("US$ millions")
    curve.legend(fontsize=8, loc="lower right")
