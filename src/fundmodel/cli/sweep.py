"""``fundmodel sweep``, ``fundmodel sensitivity`` and ``fundmodel backsolve``: many configs on one seed.

Each reads a simulate body from FILE, varies the fields given with ``--vary PATH=VALUES`` and runs every
configuration on common random numbers (``engines/sweep``): a grid with ``sweep`` (table, ``--json``,
``--csv``, ``--plot`` heatmap), a tornado with ``sensitivity`` (``--plot`` horizontal bars) and a bisection
with ``backsolve``. A Rich progress bar on stderr counts the configurations. Bad files, paths, metrics and
configs end with one line on stderr and exit code 2; other failures exit 1 (``cli/common.exit_code_for``).
"""

from __future__ import annotations

import csv
import json
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from fundmodel.cli.common import exit_code_for
from fundmodel.cli.simulate import _read_json
from fundmodel.errors import FundmodelError, InvalidInputError

if TYPE_CHECKING:
    from fundmodel.engines.sweep import BacksolveResult, SensitivityResult, SweepResult

# The engine is imported when a command runs, never when it is registered (see cli/main.py).
DEFAULT_ITERATIONS = 10_000
ITERATIONS_HELP = "Simulated funds per configuration (10 to 2,000,000)."
METRIC_HELP = (
    "Dotted path into the simulate result's JSON: netTvpi.p50, dpi.mean, netIrr.p10, probTvpiAtLeast.3 …"
)
SEED_HELP = "Random seed shared by every configuration; omitted = a fresh one, shown in the output."
RENORMALIZE_HELP = (
    "Scale stage weights that no longer sum to 1 (with a warning) instead of failing the point."
)

MetricOption = Annotated[str, typer.Option("--metric", "-m", help=METRIC_HELP)]
IterationsOption = Annotated[int, typer.Option("--iterations", "-n", help=ITERATIONS_HELP)]
SeedOption = Annotated[int | None, typer.Option("--seed", "-s", help=SEED_HELP)]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
RenormalizeFlag = Annotated[bool, typer.Option("--renormalize-stages", help=RENORMALIZE_HELP)]
DaskOption = Annotated[
    str | None,
    typer.Option(
        "--dask",
        metavar="ADDRESS",
        help="Run the points on the Dask scheduler at ADDRESS (tcp://host:8786); same results as locally.",
    ),
]
FileArgument = Annotated[Path, typer.Argument(help="Base fund config as JSON (see examples/fund.json).")]


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep_command)
    app.command("sensitivity")(sensitivity_command)
    app.command("backsolve")(backsolve_command)


def sweep_command(
    file: FileArgument,
    vary: Annotated[
        list[str],
        typer.Option(
            "--vary",
            help="PATH=START:STOP:COUNT or PATH=V1,V2,… (up to 3; e.g. reserveRatio=0:0.8:9).",
        ),
    ],
    metric: MetricOption,
    iterations: IterationsOption = DEFAULT_ITERATIONS,
    seed: SeedOption = None,
    as_json: JsonFlag = False,
    csv_file: Annotated[
        Path | None, typer.Option("--csv", help="Write one row per point (values, metric, summaries).")
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot", help="Write a PNG: a line (1 parameter), a heatmap (2), one heatmap per value (3)."
        ),
    ] = None,
    renormalize_stages: RenormalizeFlag = False,
    dask: DaskOption = None,
) -> None:
    """Run a grid of configurations (the cartesian product of the varied values) on common random numbers."""
    from fundmodel.engines.sweep import SweepSpec, parse_parameter, run_sweep
    from fundmodel.scaleout import point_runner

    with _one_line_errors():
        spec = SweepSpec(
            base=_base(file),
            parameters=tuple(parse_parameter(text) for text in vary),
            metric=metric,
            iterations=iterations,
            seed=_seed(seed),
            renormalize_stages=renormalize_stages,
        )
        with point_runner(dask) as runner, _progress_bar("configurations") as advance:
            result = run_sweep(spec, progress=advance, runner=runner)
        if as_json:
            typer.echo(json.dumps(result.to_json(), allow_nan=False))
        else:
            render_sweep(Console(), result)
        if csv_file is not None:
            write_sweep_csv(result, csv_file)
        if plot is not None:
            write_sweep_plot(result, plot)


def sensitivity_command(
    file: FileArgument,
    vary: Annotated[
        list[str], typer.Option("--vary", help="PATH=LOW:HIGH, one per bar (e.g. reserveRatio=0.2:0.7).")
    ],
    metric: MetricOption,
    iterations: IterationsOption = DEFAULT_ITERATIONS,
    seed: SeedOption = None,
    as_json: JsonFlag = False,
    plot: Annotated[Path | None, typer.Option("--plot", help="Write the tornado chart as a PNG.")] = None,
    renormalize_stages: RenormalizeFlag = False,
    dask: DaskOption = None,
) -> None:
    """Tornado: each parameter at its low and high value around the base, ranked by its effect."""
    from fundmodel.engines.sweep import SensitivityParameter, SensitivitySpec, run_sensitivity
    from fundmodel.scaleout import point_runner

    with _one_line_errors():
        parameters = []
        for text in vary:
            path, low, high = _range(text)
            parameters.append(SensitivityParameter(path=path, low=low, high=high))
        spec = SensitivitySpec(
            base=_base(file),
            parameters=tuple(parameters),
            metric=metric,
            iterations=iterations,
            seed=_seed(seed),
            renormalize_stages=renormalize_stages,
        )
        with point_runner(dask) as runner, _progress_bar("configurations") as advance:
            result = run_sensitivity(spec, progress=advance, runner=runner)
        if as_json:
            typer.echo(json.dumps(result.to_json(), allow_nan=False))
        else:
            render_sensitivity(Console(), result)
        if plot is not None:
            write_tornado_plot(result, plot)


def backsolve_command(
    file: FileArgument,
    vary: Annotated[
        str, typer.Option("--vary", help="PATH=LOW:HIGH, the range searched (e.g. reserveRatio=0:0.8).")
    ],
    metric: MetricOption,
    target: Annotated[float, typer.Option("--target", help="The metric value to reach (e.g. 3.0).")],
    tolerance: Annotated[
        float, typer.Option("--tolerance", help="Reached when |metric - target| is at most this.")
    ] = 0.01,
    max_steps: Annotated[int, typer.Option("--max-steps", help="Bisection steps at most (1 to 100).")] = 30,
    iterations: IterationsOption = DEFAULT_ITERATIONS,
    seed: SeedOption = None,
    as_json: JsonFlag = False,
    renormalize_stages: RenormalizeFlag = False,
    dask: DaskOption = None,
) -> None:
    """Find the value of one parameter at which the metric reaches a target (bisection on one seed)."""
    from fundmodel.engines.sweep import BacksolveSpec, run_backsolve
    from fundmodel.scaleout import point_runner

    with _one_line_errors():
        path, low, high = _range(vary)
        spec = BacksolveSpec(
            base=_base(file),
            path=path,
            low=low,
            high=high,
            metric=metric,
            target=target,
            tolerance=tolerance,
            max_steps=max_steps,
            iterations=iterations,
            seed=_seed(seed),
            renormalize_stages=renormalize_stages,
        )
        with point_runner(dask) as runner, _progress_bar("bisection steps") as advance:
            result = run_backsolve(spec, progress=advance, runner=runner)
        if as_json:
            typer.echo(json.dumps(result.to_json(), allow_nan=False))
        else:
            render_backsolve(Console(), result)


@contextmanager
def _one_line_errors() -> Iterator[None]:
    try:
        yield
    except FundmodelError as error:
        typer.echo(f"error: {error.detail}", err=True)
        raise typer.Exit(exit_code_for(error)) from None


@contextmanager
def _progress_bar(label: str) -> Iterator[Callable[[int, int], None]]:
    console = Console(stderr=True)
    if not console.is_terminal:
        # No bar into a pipe or a file: it would leave blank lines in the log (results go to stdout).
        yield lambda done, total: None
        return
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(label, total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield advance


def _base(file: Path) -> dict[str, Any]:
    data = _read_json(file)
    if not isinstance(data, dict):
        raise InvalidInputError(f"{file}: must hold a JSON object (the simulate body)")
    return data


def _seed(seed: int | None) -> int:
    return secrets.randbits(63) if seed is None else seed


def _range(text: str) -> tuple[str, float, float]:
    """``PATH=LOW:HIGH`` -> (path, low, high)."""
    from fundmodel.engines.sweep import INVALID_SWEEP, resolve_path

    path, separator, bounds = text.partition("=")
    low_text, colon, high_text = bounds.partition(":")
    if not separator or not colon or ":" in high_text or not path.strip():
        raise InvalidInputError(
            f"vary: {text!r} is not PATH=LOW:HIGH (e.g. reserveRatio=0.2:0.7)",
            code=INVALID_SWEEP,
            field="vary",
        )
    resolve_path(path.strip(), field="vary")
    try:
        return path.strip(), float(low_text), float(high_text)
    except ValueError:
        raise InvalidInputError(
            f"vary: {bounds!r} in {text!r} is not LOW:HIGH numbers", code=INVALID_SWEEP, field="vary"
        ) from None


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def render_sweep(console: Console, result: SweepResult) -> None:
    paths = [path for path, _ in result.parameters]
    console.print(
        f"[bold]Sweep[/bold] of {result.metric} over {' x '.join(paths)}: {len(result.points)} points, "
        f"{result.iterations:,} funds each, seed {result.seed} (common random numbers)"
    )
    table = Table()
    for path in paths:
        table.add_column(path, justify="right", min_width=min(len(path), 12), overflow="fold")
    for column in ("metric", "net TVPI p10", "p50", "p90", "P(>=3x)", "note"):
        table.add_column(column, justify="right" if column != "note" else "left")
    for point in result.points:
        summary = point.outcome.summary or {}
        note = point.outcome.error["message"] if point.outcome.error else ""
        if point.outcome.warnings:
            note = "; ".join(str(warning.get("message", "")) for warning in point.outcome.warnings)
        table.add_row(
            *(_number(point.values[path]) for path in paths),
            _number(point.outcome.metric),
            _number(summary.get("netTvpiP10")),
            _number(summary.get("netTvpiP50")),
            _number(summary.get("netTvpiP90")),
            _number(summary.get("probTvpiAtLeast3")),
            note,
        )
    console.print(table)


def write_sweep_csv(result: SweepResult, path: Path) -> None:
    """One row per point: the parameters' values, the metric, the standard summaries, error and warnings."""
    paths = [parameter for parameter, _ in result.parameters]
    summaries = ("netTvpiP10", "netTvpiP50", "netTvpiP90", "probTvpiAtLeast3")
    try:
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow([*paths, result.metric, *summaries, "error", "warnings"])
            for point in result.points:
                summary = point.outcome.summary or {}
                writer.writerow(
                    [
                        *(point.values[name] for name in paths),
                        "" if point.outcome.metric is None else point.outcome.metric,
                        *(summary.get(name, "") for name in summaries),
                        point.outcome.error["message"] if point.outcome.error else "",
                        "; ".join(str(warning.get("message", "")) for warning in point.outcome.warnings),
                    ]
                )
    except OSError as error:
        raise FundmodelError(f"cannot write CSV to {path}: {error.strerror or error}") from None


def write_sweep_plot(result: SweepResult, path: Path) -> None:
    """A line for one parameter, a heatmap for two, one heatmap per value of the third for three."""
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    from matplotlib import pyplot

    axes_values = [values for _, values in result.parameters]
    names = [name for name, _ in result.parameters]
    grid = np.full([len(values) for values in axes_values], np.nan)
    for point in result.points:
        if point.outcome.metric is not None:
            grid[np.unravel_index(point.index, grid.shape)] = point.outcome.metric
    if len(names) == 1:
        figure, line = pyplot.subplots(figsize=(7, 5), dpi=110)
        line.plot(axes_values[0], grid, marker="o")
        line.set_xlabel(names[0])
        line.set_ylabel(result.metric)
        line.grid(alpha=0.3)
        panels = [line]
    else:
        layers = [grid] if len(names) == 2 else [grid[:, :, k] for k in range(grid.shape[2])]
        figure, axes = pyplot.subplots(
            1, len(layers), figsize=(6.5 * len(layers), 5.5), dpi=110, squeeze=False
        )
        panels = list(axes[0])
        finite = grid[np.isfinite(grid)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        for position, (panel, layer) in enumerate(zip(panels, layers, strict=True)):
            image = panel.imshow(layer, origin="lower", aspect="auto", cmap="viridis", vmin=low, vmax=high)
            panel.set_xticks(range(len(axes_values[1])), [f"{value:.3g}" for value in axes_values[1]])
            panel.set_yticks(range(len(axes_values[0])), [f"{value:.3g}" for value in axes_values[0]])
            panel.set_xlabel(names[1])
            panel.set_ylabel(names[0])
            if len(names) == 3:
                panel.set_title(f"{names[2]} = {axes_values[2][position]:.3g}")
            figure.colorbar(image, ax=panel, label=result.metric)
    panels[0].figure.suptitle(f"{result.metric}: {result.iterations:,} funds per point, seed {result.seed}")
    _save(figure, path, pyplot)


def render_sensitivity(console: Console, result: SensitivityResult) -> None:
    console.print(
        f"[bold]Sensitivity[/bold] of {result.metric} (base {_number(result.base_metric)}), "
        f"{result.iterations:,} funds per configuration, seed {result.seed} (common random numbers)"
    )
    table = Table()
    widest = max((len(row.path) for row in result.rows), default=9)
    table.add_column("parameter", min_width=min(widest, 20), overflow="fold")
    for column in ("base", "low", "high", "at low", "at high", "effect"):
        table.add_column(column, justify="right")
    table.add_column("note")
    for row in result.rows:
        errors = [error["message"] for error in (row.at_low.error, row.at_high.error) if error]
        table.add_row(
            row.path,
            _number(row.base_value),
            _number(row.low),
            _number(row.high),
            _number(row.at_low.metric),
            _number(row.at_high.metric),
            _number(row.effect),
            "; ".join(errors),
        )
    console.print(table)


def write_tornado_plot(result: SensitivityResult, path: Path) -> None:
    """Horizontal bars from the base metric to the metric at each low and high value, largest on top."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    rows = [row for row in result.rows if row.effect is not None][::-1]
    base = result.base_metric or 0.0
    figure, bars = pyplot.subplots(figsize=(8, 1.2 + 0.5 * max(len(rows), 1)), dpi=110)
    for position, row in enumerate(rows):
        ends = [(row.at_low.metric, "#C44E52"), (row.at_high.metric, "#4C72B0")]
        # The longer bar first, so that a shorter one on the same side of the base stays visible on top.
        for value, color in sorted(ends, key=lambda end: -abs((end[0] or base) - base)):
            if value is not None:
                bars.barh(position, value - base, left=base, color=color, height=0.6)
    bars.set_yticks(range(len(rows)), [f"{row.path} [{row.low:.3g}, {row.high:.3g}]" for row in rows])
    bars.axvline(base, color="black", linewidth=1)
    bars.set_xlabel(f"{result.metric} (red: low value, blue: high value)")
    bars.set_title(f"Tornado: {result.iterations:,} funds per configuration, seed {result.seed}")
    _save(figure, path, pyplot)


def render_backsolve(console: Console, result: BacksolveResult) -> None:
    range_text = f"[{result.low:g}, {result.high:g}]"
    if result.status == "reached":
        console.print(
            f"{result.path} = [bold]{result.value:.6g}[/bold] gives {result.metric} = "
            f"{result.achieved_metric:.6g} (target {result.target:g} ± {result.tolerance:g}, "
            f"{result.steps} simulations, seed {result.seed})"
        )
    elif result.status == "notReachable":
        console.print(
            f"{result.metric} = {result.target:g} is not reachable in {range_text}: "
            f"{_number(result.metric_at_low)} at {result.low:g}, "
            f"{_number(result.metric_at_high)} at {result.high:g}"
        )
    else:
        console.print(
            f"not converged within {result.steps} simulations: "
            f"closest {result.path} = {_number(result.value)} "
            f"gives {result.metric} = {_number(result.achieved_metric)} (target {result.target:g})"
        )


def _save(figure: Any, path: Path, pyplot: Any) -> None:
    try:
        figure.tight_layout()
        figure.savefig(path, format="png")
    except OSError as error:
        raise FundmodelError(f"cannot write plot to {path}: {error.strerror or error}") from None
    finally:
        pyplot.close(figure)
