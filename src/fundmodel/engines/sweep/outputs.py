"""What a sweep reads from one simulation: the chosen metric and a few standard summaries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fundmodel.engines.sweep.parameters import INVALID_SWEEP
from fundmodel.errors import InvalidInputError

EXCLUDED_SECTIONS = frozenset({"engine"})
"""Leaves that describe the run (iterations, seed), not the fund: never a metric."""


def metric_choices(result_json: Mapping[str, Any]) -> list[str]:
    """Every dotted path to a scalar number in a result's JSON (lists such as the J-curve are not metrics)."""
    choices: list[str] = []

    def walk(node: Mapping[str, Any], prefix: str) -> None:
        for key, value in node.items():
            path = f"{prefix}{key}"
            if isinstance(value, Mapping):
                walk(value, f"{path}.")
            elif isinstance(value, int | float) and not isinstance(value, bool):
                choices.append(path)

    walk({key: value for key, value in result_json.items() if key not in EXCLUDED_SECTIONS}, "")
    return choices


def check_metric(metric: str, result_json: Mapping[str, Any]) -> None:
    """Raise ``InvalidInputError`` (field ``metric``) listing the choices unless ``metric`` is one."""
    choices = metric_choices(result_json)
    if metric not in choices:
        raise InvalidInputError(
            f"metric: {metric!r} is not a metric of the result; choices: {', '.join(choices)}",
            code=INVALID_SWEEP,
            field="metric",
            extra={"choices": choices},
        )


def metric_value(metric: str, result_json: Mapping[str, Any]) -> float:
    """The metric's value in a result's JSON (the path was checked by :func:`check_metric`)."""
    node: Any = result_json
    for segment in metric.split("."):
        node = node[segment]
    return float(node)


def standard_summary(result_json: Mapping[str, Any]) -> dict[str, float]:
    """Net TVPI p10 / p50 / p90 and P(net TVPI >= 3x), the figures every sweep point shows."""
    net_tvpi = result_json["netTvpi"]
    summary = {
        "netTvpiP10": float(net_tvpi["p10"]),
        "netTvpiP50": float(net_tvpi["p50"]),
        "netTvpiP90": float(net_tvpi["p90"]),
    }
    at_least = result_json.get("probTvpiAtLeast", {})
    if "3" in at_least:
        summary["probTvpiAtLeast3"] = float(at_least["3"])
    return summary
