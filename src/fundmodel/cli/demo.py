"""``fundmodel demo`` and ``fundmodel normalize``: show the stage core at work, no service needed."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from fundmodel.errors import InvalidInputError
from fundmodel.stages import DistributionResult, parse_stage_distribution

SAMPLE_DISTRIBUTION: dict[str, object] = {
    "Pre Seed": 0.10,
    "seed": 0.25,
    "Series A": 0.30,
    "seriesB": 0.15,
    "series-c+": 0.10,
    "Series Z": 0.10,
}


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
    app.command("normalize")(normalize)


def demo() -> None:
    """Normalize a sample legacy stage distribution and show what the stage core reports."""
    console = Console()
    console.print("Sample input:", json.dumps(SAMPLE_DISTRIBUTION))
    render_result(console, parse_stage_distribution(SAMPLE_DISTRIBUTION))


def normalize(
    distribution: Annotated[
        str, typer.Argument(help="A JSON object of stage -> weight, e.g. '{\"Seed\": 1}'.")
    ],
    percent: Annotated[bool, typer.Option("--percent", help="Weights are percentages (0-100).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Validate and normalize one stage distribution; exit 1 when it is not usable as sent."""
    try:
        mapping = json.loads(distribution)
    except json.JSONDecodeError as error:
        raise InvalidInputError(
            f"distribution is not valid JSON: {error.msg} (column {error.colno})"
        ) from None
    result = parse_stage_distribution(mapping, scale="percent" if percent else "fraction")
    if as_json:
        typer.echo(json.dumps(result_as_json(result)))
    else:
        render_result(Console(), result)
    if not result.ok:
        raise typer.Exit(1)


def result_as_json(result: DistributionResult) -> dict[str, object]:
    return {
        "ok": result.ok,
        "weights": {stage.value: weight for stage, weight in result.weights.items()},
        "total": result.total,
        "unknown": [
            {"name": u.name, "suggestions": [s.value for s in u.suggestions]} for u in result.unknown
        ],
        "aliases": [{"name": a.name, "canonical": a.canonical.value} for a in result.aliases],
        "merged": [{"stage": m.stage.value, "names": list(m.names)} for m in result.merged],
        "problems": [
            {"code": p.code.value, "severity": p.severity, "key": p.key, "message": p.message}
            for p in result.problems
        ],
    }


def render_result(console: Console, result: DistributionResult) -> None:
    weights = Table(title="Normalized weights (canonical order)")
    weights.add_column("stage")
    weights.add_column("label")
    weights.add_column("weight", justify="right")
    for stage, weight in result.weights.items():
        weights.add_row(stage.value, stage.label, f"{weight:.4f}")
    console.print(weights)
    if result.problems:
        problems = Table(title="Problems")
        problems.add_column("code")
        problems.add_column("severity")
        problems.add_column("message")
        for problem in result.problems:
            problems.add_row(problem.code.value, problem.severity, problem.message)
        console.print(problems)
    verdict = "[green]usable as sent[/]" if result.ok else "[red]not usable as sent[/]"
    console.print(f"total = {result.total:.4f}; {verdict}")
