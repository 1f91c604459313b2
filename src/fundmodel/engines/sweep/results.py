"""The results of a sweep, a sensitivity analysis and a backsolve, and their JSON forms (camelCase)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True, slots=True)
class PointOutcome:
    """One simulated configuration: the metric and the standard summary, or the error that stopped it."""

    metric: float | None
    summary: dict[str, float] | None
    warnings: tuple[dict[str, Any], ...]
    error: dict[str, Any] | None
    """``{"code", "message", "field"}`` of an invalid point; the run goes on."""


@dataclass(frozen=True, slots=True)
class SweepPointResult:
    index: int
    values: dict[str, float]
    outcome: PointOutcome

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "values": dict(self.values),
            "metric": self.outcome.metric,
            "summary": self.outcome.summary,
            "warnings": list(self.outcome.warnings),
            "error": self.outcome.error,
        }


@dataclass(frozen=True, slots=True)
class SweepResult:
    metric: str
    iterations: int
    seed: int
    parameters: list[tuple[str, tuple[float, ...]]]
    points: list[SweepPointResult]
    points_total: int
    cancelled: bool
    engine_version: str

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "sweep",
            "metric": self.metric,
            "iterations": self.iterations,
            "seed": self.seed,
            "parameters": [{"path": path, "values": list(values)} for path, values in self.parameters],
            "pointsTotal": self.points_total,
            "pointsDone": len(self.points),
            "cancelled": self.cancelled,
            "engineVersion": self.engine_version,
            "points": [point.to_json() for point in self.points],
        }


@dataclass(frozen=True, slots=True)
class SensitivityRow:
    path: str
    base_value: float | None
    low: float
    high: float
    at_low: PointOutcome
    at_high: PointOutcome

    @property
    def effect(self) -> float | None:
        """Metric at high minus metric at low; ``None`` when either end failed."""
        if self.at_low.metric is None or self.at_high.metric is None:
            return None
        return self.at_high.metric - self.at_low.metric

    @property
    def swing(self) -> float | None:
        effect = self.effect
        return None if effect is None else abs(effect)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "baseValue": self.base_value,
            "low": self.low,
            "high": self.high,
            "metricLow": self.at_low.metric,
            "metricHigh": self.at_high.metric,
            "effect": self.effect,
            "swing": self.swing,
            "errorLow": self.at_low.error,
            "errorHigh": self.at_high.error,
            "warningsLow": list(self.at_low.warnings),
            "warningsHigh": list(self.at_high.warnings),
        }


@dataclass(frozen=True, slots=True)
class SensitivityResult:
    metric: str
    iterations: int
    seed: int
    base_metric: float | None
    rows: list[SensitivityRow]
    """Ranked by swing, largest first; rows with a failed end last."""
    cancelled: bool
    engine_version: str

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "sensitivity",
            "metric": self.metric,
            "iterations": self.iterations,
            "seed": self.seed,
            "baseMetric": self.base_metric,
            "cancelled": self.cancelled,
            "engineVersion": self.engine_version,
            "rows": [row.to_json() for row in self.rows],
        }


BacksolveStatus = Literal["reached", "notReachable", "notConverged", "cancelled"]


@dataclass(frozen=True, slots=True)
class BacksolveResult:
    metric: str
    path: str
    target: float
    tolerance: float
    status: BacksolveStatus
    value: float | None
    achieved_metric: float | None
    low: float
    high: float
    metric_at_low: float | None
    metric_at_high: float | None
    history: list[tuple[float, float]]
    """Every (value, metric) simulated, in order."""
    iterations: int
    seed: int
    engine_version: str

    @property
    def steps(self) -> int:
        """Simulations run (both ends included)."""
        return len(self.history)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "backsolve",
            "metric": self.metric,
            "path": self.path,
            "target": self.target,
            "tolerance": self.tolerance,
            "status": self.status,
            "value": self.value,
            "achievedMetric": self.achieved_metric,
            "steps": self.steps,
            "low": self.low,
            "high": self.high,
            "metricAtLow": self.metric_at_low,
            "metricAtHigh": self.metric_at_high,
            "iterations": self.iterations,
            "seed": self.seed,
            "engineVersion": self.engine_version,
            "history": [{"value": value, "metric": metric} for value, metric in self.history],
        }
