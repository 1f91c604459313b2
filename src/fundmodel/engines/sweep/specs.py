"""What a sweep, a sensitivity (tornado) or a backsolve is asked to do; checked when constructed.

A spec holds the base body (the simulate request body, camelCase JSON), the varied parameters, the metric,
the iterations and the seed. Its constructor checks everything that does not need the engine (paths,
values, limits) and raises :class:`~fundmodel.errors.InvalidInputError` naming the ``field``;
:func:`~fundmodel.engines.sweep.runs.validate_sweep` checks the rest (the base config, the metric).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fundmodel.engines.montecarlo import MAX_ITERATIONS, MIN_ITERATIONS
from fundmodel.engines.sweep.parameters import (
    INVALID_SWEEP,
    Parameter,
    ResolvedPath,
    check_values,
    resolve_path,
)
from fundmodel.errors import InvalidInputError

SWEEP_LIMIT = "SWEEP_LIMIT"
"""The error code of a request above the grid-size or total-work bound."""
MAX_PARAMETERS = 3
MAX_GRID_POINTS = 1_000
MAX_SWEEP_WORK = 200_000_000
"""Points x iterations: 1,000 points of 200,000 funds, about 10 minutes on 8 cores. A ceiling of the core;
a server sets a smaller one through ``max_work``."""
MAX_SENSITIVITY_PARAMETERS = 50
MAX_SEED = 2**64 - 1
DEFAULT_TOLERANCE = 0.01
DEFAULT_MAX_STEPS = 30
MAX_BACKSOLVE_STEPS = 100


@dataclass(frozen=True, slots=True)
class SweepSpec:
    """A grid: the cartesian product of up to three parameters' values, each point simulated."""

    base: Mapping[str, Any] = field(compare=False)
    parameters: tuple[Parameter, ...]
    metric: str
    iterations: int
    seed: int
    renormalize_stages: bool = False
    max_points: int = MAX_GRID_POINTS
    max_work: int = MAX_SWEEP_WORK

    def __post_init__(self) -> None:
        _check_common(self.base, self.metric, self.iterations, self.seed)
        if not 1 <= len(self.parameters) <= MAX_PARAMETERS:
            raise InvalidInputError(
                f"parameters: a sweep varies 1 to {MAX_PARAMETERS} parameters, not {len(self.parameters)}",
                code=INVALID_SWEEP,
                field="parameters",
            )
        for position, parameter in enumerate(self.parameters):
            where = f"parameters[{position}]"
            resolve_path(parameter.path, field=f"{where}.path")
            check_values(parameter.values, field=f"{where}.values")
        _check_distinct([resolved.segments for resolved in self.resolved_paths()])
        points = self.point_count
        if points > self.max_points:
            raise InvalidInputError(
                f"a sweep has at most {self.max_points:,} points on this server (asked for {points:,})",
                code=SWEEP_LIMIT,
                field="parameters",
            )
        _check_work(points, self.iterations, self.max_work)

    @property
    def point_count(self) -> int:
        return math.prod(len(parameter.values) for parameter in self.parameters)

    def resolved_paths(self) -> list[ResolvedPath]:
        return [resolve_path(parameter.path) for parameter in self.parameters]

    def assignments(self) -> list[tuple[float, ...]]:
        """Every point's values, in ``itertools.product`` order (the last parameter varies fastest)."""
        return list(itertools.product(*(parameter.values for parameter in self.parameters)))


@dataclass(frozen=True, slots=True)
class SensitivityParameter:
    """One bar of a tornado: the parameter set to ``low``, then to ``high``, everything else at the base."""

    path: str
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class SensitivitySpec:
    base: Mapping[str, Any] = field(compare=False)
    parameters: tuple[SensitivityParameter, ...]
    metric: str
    iterations: int
    seed: int
    renormalize_stages: bool = False
    max_work: int = MAX_SWEEP_WORK

    def __post_init__(self) -> None:
        _check_common(self.base, self.metric, self.iterations, self.seed)
        if not 1 <= len(self.parameters) <= MAX_SENSITIVITY_PARAMETERS:
            raise InvalidInputError(
                f"parameters: a sensitivity analysis takes 1 to {MAX_SENSITIVITY_PARAMETERS} parameters, "
                f"not {len(self.parameters)}",
                code=INVALID_SWEEP,
                field="parameters",
            )
        for position, parameter in enumerate(self.parameters):
            where = f"parameters[{position}]"
            resolve_path(parameter.path, field=f"{where}.path")
            check_values([parameter.low, parameter.high], field=f"{where}.low/high")
        _check_distinct([resolve_path(parameter.path).segments for parameter in self.parameters])
        _check_work(self.point_count, self.iterations, self.max_work)

    @property
    def point_count(self) -> int:
        """The base, then each parameter's low and high."""
        return 1 + 2 * len(self.parameters)


@dataclass(frozen=True, slots=True)
class BacksolveSpec:
    """The value of ``path`` in ``[low, high]`` at which ``metric`` is ``target`` within ``tolerance``."""

    base: Mapping[str, Any] = field(compare=False)
    path: str
    low: float
    high: float
    metric: str
    target: float
    iterations: int
    seed: int
    tolerance: float = DEFAULT_TOLERANCE
    max_steps: int = DEFAULT_MAX_STEPS
    renormalize_stages: bool = False
    max_work: int = MAX_SWEEP_WORK

    def __post_init__(self) -> None:
        _check_common(self.base, self.metric, self.iterations, self.seed)
        resolve_path(self.path, field="path")
        low, high = check_values([self.low, self.high], field="low/high")
        if not low < high:
            raise InvalidInputError(
                f"low/high: low ({low:g}) must be below high ({high:g})", code=INVALID_SWEEP, field="low"
            )
        check_values([self.target], field="target")
        if isinstance(self.tolerance, bool) or not (
            isinstance(self.tolerance, int | float) and math.isfinite(self.tolerance) and self.tolerance > 0
        ):
            raise InvalidInputError(
                "tolerance: must be a positive number", code=INVALID_SWEEP, field="tolerance"
            )
        if isinstance(self.max_steps, bool) or not (
            isinstance(self.max_steps, int) and 1 <= self.max_steps <= MAX_BACKSOLVE_STEPS
        ):
            raise InvalidInputError(
                f"maxSteps: must be a whole number from 1 to {MAX_BACKSOLVE_STEPS}",
                code=INVALID_SWEEP,
                field="maxSteps",
            )
        _check_work(self.point_count, self.iterations, self.max_work)

    @property
    def point_count(self) -> int:
        """At most: both ends, then one simulation per bisection step."""
        return self.max_steps + 2


AnySpec = SweepSpec | SensitivitySpec | BacksolveSpec


def _check_common(base: object, metric: object, iterations: object, seed: object) -> None:
    if not isinstance(base, Mapping):
        raise InvalidInputError(
            "base: must be a JSON object (the simulate body)", code=INVALID_SWEEP, field="base"
        )
    if not isinstance(metric, str) or not metric:
        raise InvalidInputError("metric: required (e.g. netTvpi.p50)", code=INVALID_SWEEP, field="metric")
    if isinstance(iterations, bool) or not isinstance(iterations, int):
        raise InvalidInputError("iterations: must be a whole number", code=INVALID_SWEEP, field="iterations")
    if not MIN_ITERATIONS <= iterations <= MAX_ITERATIONS:
        raise InvalidInputError(
            f"iterations: must be between {MIN_ITERATIONS} and {MAX_ITERATIONS:,}, not {iterations:,}",
            code=INVALID_SWEEP,
            field="iterations",
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise InvalidInputError(
            f"seed: must be a whole number between 0 and 2**64 - 1, not {seed!r}",
            code=INVALID_SWEEP,
            field="seed",
        )


def _check_distinct(paths: list[tuple[str, ...]]) -> None:
    if len(set(paths)) != len(paths):
        raise InvalidInputError(
            "parameters: the same field is varied twice", code=INVALID_SWEEP, field="parameters"
        )


def _check_work(points: int, iterations: int, max_work: int) -> None:
    if points * iterations > max_work:
        raise InvalidInputError(
            f"points x iterations must be at most {max_work:,} on this server "
            f"(asked for {points:,} x {iterations:,})",
            code=SWEEP_LIMIT,
            field="iterations",
        )
