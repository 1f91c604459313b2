"""Running a sweep, a sensitivity analysis (tornado) or a backsolve on common random numbers.

Every point is ``simulate(config, iterations=spec.iterations, seed=spec.seed)``: the engine's random streams
are keyed by fund and company, not by the configuration, so all points see the same draws and their
differences are the parameters', not noise (a parameter that does not change the config gives identical
metrics at every point). Points are simulated by a :class:`PointRunner`: by default
:class:`LocalPointRunner`, one point after the other with the engine's threads, so only the current
point's :class:`~fundmodel.engines.montecarlo.SimulationResult` is alive and memory is one configuration's
per-fund arrays whatever the grid size. Another runner (``fundmodel.scaleout.dask_runner``) may work ahead
on a bounded number of points; the results are the same bits, since a point's result depends only on its
config, the iterations and the seed.

Cancellation: ``should_stop()`` is asked before each point; when it answers true the run returns what it
has, marked ``cancelled`` (no exception), so a job can store the partial result.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass
from typing import Any, Protocol

from fundmodel.engines.montecarlo import (
    ENGINE_VERSION,
    MIN_ITERATIONS,
    SimulationConfig,
    SimulationResult,
    load_config,
    simulate,
)
from fundmodel.engines.sweep.outputs import check_metric, metric_value, standard_summary
from fundmodel.engines.sweep.parameters import ResolvedPath, effective_value, resolve_path, with_values
from fundmodel.engines.sweep.results import (
    BacksolveResult,
    BacksolveStatus,
    PointOutcome,
    SensitivityResult,
    SensitivityRow,
    SweepPointResult,
    SweepResult,
)
from fundmodel.engines.sweep.specs import AnySpec, BacksolveSpec, SensitivitySpec, SweepSpec
from fundmodel.errors import FundmodelError, InvalidInputError, SimulationConfigError
from fundmodel.stages import DEFAULT_TOLERANCE as STAGE_SUM_TOLERANCE

STAGE_WEIGHTS_RENORMALIZED = "STAGE_WEIGHTS_RENORMALIZED"
"""Warning code of a point whose stage weights were scaled to sum to 1 (``renormalize_stages``)."""

ProgressCallback = Callable[[int, int], None]
"""``progress(points_done, points_total)``, called after each point on the calling thread."""
StopCheck = Callable[[], bool]


class PointRunner(Protocol):
    """Simulates the points of a run: ``simulate(config, iterations=..., seed=...)`` for each config."""

    def run_points(
        self, configs: Iterable[SimulationConfig], *, iterations: int, seed: int
    ) -> Generator[SimulationResult | FundmodelError, None, None]:
        """One result per config, in the configs' order; a ``FundmodelError`` the simulation raised is
        yielded as that point's outcome. May work ahead on a bounded number of configs; closing the
        iterator abandons the work not yet consumed."""
        ...


@dataclass(frozen=True, slots=True)
class LocalPointRunner:
    """Points one after the other in this process, each on ``threads`` engine threads."""

    threads: int | None = None

    def run_points(
        self, configs: Iterable[SimulationConfig], *, iterations: int, seed: int
    ) -> Generator[SimulationResult | FundmodelError, None, None]:
        for config in configs:
            try:
                yield simulate(config, iterations=iterations, seed=seed, threads=self.threads)
            except FundmodelError as error:
                yield error


@dataclass(frozen=True, slots=True)
class PreparedPoint:
    """A point's body as it is to be loaded, and the warnings to attach to the point."""

    body: dict[str, Any]
    warnings: tuple[dict[str, Any], ...] = ()


PointPreparer = Callable[[dict[str, Any]], PreparedPoint]
"""Given a point's raw body (before ``load_config``), the body to load; raising a ``FundmodelError`` makes
that the point's error. The HTTP layer passes its stage-validation policy here."""


@dataclass(frozen=True, slots=True)
class GridPoint:
    index: int
    values: dict[str, float]
    body: dict[str, Any]


def expand_grid(spec: SweepSpec) -> list[GridPoint]:
    """Every point of the grid with its raw body (the base with the point's values set)."""
    paths = spec.resolved_paths()
    return [
        GridPoint(
            index=index,
            values={parameter.path: value for parameter, value in zip(spec.parameters, values, strict=True)},
            body=with_values(spec.base, dict(zip(paths, values, strict=True))),
        )
        for index, values in enumerate(spec.assignments())
    ]


def validate_sweep(spec: AnySpec, *, threads: int | None = None) -> None:
    """Check what the spec's constructor cannot: the base is a valid config and the metric exists.

    Raises ``SimulationConfigError`` (fields prefixed ``base.``) or ``InvalidInputError`` (``metric``, with
    the choices). Costs one simulation of the engine's minimum number of funds.
    """
    try:
        config = load_config(dict(spec.base))
    except SimulationConfigError as error:
        raise SimulationConfigError(
            f"base: {error.detail}",
            field=f"base.{error.field}" if error.field else "base",
            errors=[{**problem, "field": f"base.{problem.get('field')}"} for problem in error.errors],
        ) from None
    probe = simulate(config, iterations=MIN_ITERATIONS, seed=spec.seed, threads=threads)
    check_metric(spec.metric, probe.to_json())


def run_sweep(
    spec: SweepSpec,
    *,
    progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
    threads: int | None = None,
    prepare_point: PointPreparer | None = None,
    runner: PointRunner | None = None,
) -> SweepResult:
    """Simulate every point of the grid (``itertools.product`` order); an invalid point is reported."""
    validate_sweep(spec, threads=threads)
    evaluate = _Evaluator(spec, runner or LocalPointRunner(threads), prepare_point)
    grid = spec.assignments()
    paths = spec.resolved_paths()
    points: list[SweepPointResult] = []
    cancelled = False
    bodies = [with_values(spec.base, dict(zip(paths, values, strict=True))) for values in grid]
    with closing(evaluate.many(bodies)) as outcomes:
        for (index, values), outcome in zip(enumerate(grid), _stoppable(outcomes, should_stop), strict=False):
            named = {parameter.path: value for parameter, value in zip(spec.parameters, values, strict=True)}
            points.append(SweepPointResult(index=index, values=named, outcome=outcome))
            if progress is not None:
                progress(index + 1, len(grid))
    cancelled = len(points) < len(grid)
    return SweepResult(
        metric=spec.metric,
        iterations=spec.iterations,
        seed=spec.seed,
        parameters=[(parameter.path, parameter.values) for parameter in spec.parameters],
        points=points,
        points_total=len(grid),
        cancelled=cancelled,
        engine_version=ENGINE_VERSION,
    )


def run_sensitivity(
    spec: SensitivitySpec,
    *,
    progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
    threads: int | None = None,
    prepare_point: PointPreparer | None = None,
    runner: PointRunner | None = None,
) -> SensitivityResult:
    """The base, then each parameter at its low and its high value; rows ranked by |effect| (a tornado)."""
    validate_sweep(spec, threads=threads)
    evaluate = _Evaluator(spec, runner or LocalPointRunner(threads), prepare_point)
    total = spec.point_count
    done = 0
    base_config = load_config(dict(spec.base))
    base_metric: float | None = None
    rows: list[SensitivityRow] = []
    cancelled = False

    def step() -> bool:
        """Count a finished point; true when the run must stop before the next one."""
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)
        return should_stop is not None and should_stop()

    resolved_paths = [resolve_path(parameter.path) for parameter in spec.parameters]
    bodies = [dict(spec.base)]
    for parameter, resolved in zip(spec.parameters, resolved_paths, strict=True):
        bodies.append(with_values(spec.base, {resolved: parameter.low}))
        bodies.append(with_values(spec.base, {resolved: parameter.high}))
    if should_stop is not None and should_stop():
        cancelled = True
    else:
        with closing(evaluate.many(bodies)) as outcomes:
            rows, base_metric, cancelled = _sensitivity_rows(
                spec, base_config, resolved_paths, outcomes, step
            )
    rows.sort(key=lambda row: (row.swing is None, -(row.swing or 0.0)))
    return SensitivityResult(
        metric=spec.metric,
        iterations=spec.iterations,
        seed=spec.seed,
        base_metric=base_metric,
        rows=rows,
        cancelled=cancelled,
        engine_version=ENGINE_VERSION,
    )


def _sensitivity_rows(
    spec: SensitivitySpec,
    base_config: SimulationConfig,
    resolved_paths: list[ResolvedPath],
    outcomes: Iterator[PointOutcome],
    step: Callable[[], bool],
) -> tuple[list[SensitivityRow], float | None, bool]:
    """Consume the base's outcome then each parameter's low and high; ``step()`` true stops the run."""
    rows: list[SensitivityRow] = []
    base_outcome = next(outcomes)
    if base_outcome.error is not None:  # pragma: no cover - validate_sweep loaded the base already
        raise SimulationConfigError(f"base: {base_outcome.error['message']}", field="base")
    if step():
        return rows, base_outcome.metric, True
    for parameter, resolved in zip(spec.parameters, resolved_paths, strict=True):
        at_low = next(outcomes)
        if step():
            return rows, base_outcome.metric, True
        at_high = next(outcomes)
        rows.append(
            SensitivityRow(
                path=parameter.path,
                base_value=effective_value(base_config, resolved),
                low=parameter.low,
                high=parameter.high,
                at_low=at_low,
                at_high=at_high,
            )
        )
        if step():
            return rows, base_outcome.metric, True
    return rows, base_outcome.metric, False


def run_backsolve(
    spec: BacksolveSpec,
    *,
    progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
    threads: int | None = None,
    prepare_point: PointPreparer | None = None,
    runner: PointRunner | None = None,
) -> BacksolveResult:
    """Bisection over ``[low, high]`` on common random numbers until the metric is within the tolerance.

    Assumes the metric moves one way between the ends (it need only change sign once); with common random
    numbers the same value always gives the same metric, so the search is deterministic. When the metric
    at both ends is on the same side of the target the answer is ``notReachable`` (with both end values);
    after ``max_steps`` bisection steps without reaching the tolerance it is ``notConverged`` with the
    closest value seen. A configuration that is invalid at an end or between them raises its error (the
    range is the caller's).
    """
    validate_sweep(spec, threads=threads)
    evaluate = _Evaluator(spec, runner or LocalPointRunner(threads), prepare_point)
    resolved = resolve_path(spec.path, field="path")
    total = spec.point_count
    history: list[tuple[float, float]] = []

    def measure(value: float) -> float:
        outcome = evaluate(with_values(spec.base, {resolved: value}))
        if outcome.error is not None or outcome.metric is None:
            error = outcome.error or {}
            raise SimulationConfigError(
                f"{spec.path} = {value:g}: {error.get('message', 'invalid configuration')}",
                field=error.get("field") or spec.path,
            )
        history.append((value, outcome.metric))
        if progress is not None:
            progress(len(history), total)
        return outcome.metric

    def stopped() -> bool:
        return should_stop is not None and should_stop()

    def finish(status: BacksolveStatus, value: float | None, achieved: float | None) -> BacksolveResult:
        if progress is not None and history:
            progress(total, total)
        return BacksolveResult(
            metric=spec.metric,
            path=spec.path,
            target=spec.target,
            tolerance=spec.tolerance,
            status=status,
            value=value,
            achieved_metric=achieved,
            low=spec.low,
            high=spec.high,
            metric_at_low=history[0][1] if history else None,
            metric_at_high=history[1][1] if len(history) > 1 else None,
            history=list(history),
            iterations=spec.iterations,
            seed=spec.seed,
            engine_version=ENGINE_VERSION,
        )

    return finish(*_search(spec, measure, stopped, history))


_Outcome = tuple[BacksolveStatus, float | None, float | None]
"""(status, value, metric achieved at that value)."""


def _search(
    spec: BacksolveSpec,
    measure: Callable[[float], float],
    stopped: Callable[[], bool],
    history: list[tuple[float, float]],
) -> _Outcome:
    """The ends first (reached at an end, or not reachable when both lie on one side), then bisection."""
    if stopped():
        return "cancelled", None, None
    at_low = measure(spec.low) - spec.target
    if stopped():
        return "cancelled", None, None
    at_high = measure(spec.high) - spec.target
    for value, gap in ((spec.low, at_low), (spec.high, at_high)):
        if abs(gap) <= spec.tolerance:
            return "reached", value, gap + spec.target
    if (at_low > 0) == (at_high > 0):
        return "notReachable", None, None
    low, high, gap_low = spec.low, spec.high, at_low
    for _ in range(spec.max_steps):
        if stopped():
            return ("cancelled", *_closest(history, spec.target))
        middle = (low + high) / 2
        if middle in (low, high):  # the interval cannot be split any further in floating point
            break
        gap = measure(middle) - spec.target
        if abs(gap) <= spec.tolerance:
            return "reached", middle, gap + spec.target
        if (gap > 0) == (gap_low > 0):
            low, gap_low = middle, gap
        else:
            high = middle
    return ("notConverged", *_closest(history, spec.target))


def _closest(history: list[tuple[float, float]], target: float) -> tuple[float, float]:
    return min(history, key=lambda pair: abs(pair[1] - target))


def _stoppable(outcomes: Iterator[PointOutcome], should_stop: StopCheck | None) -> Iterator[PointOutcome]:
    """``outcomes`` until ``should_stop()`` answers true (asked before each point)."""
    for outcome in outcomes:
        if should_stop is not None and should_stop():
            return
        yield outcome


@dataclass(frozen=True, slots=True)
class _PreparedPoint:
    config: SimulationConfig | None
    warnings: tuple[dict[str, Any], ...]
    error: dict[str, Any] | None


class _Evaluator:
    """Points' bodies to outcomes: preparation, renormalization, ``load_config``, the runner, readout."""

    def __init__(self, spec: AnySpec, runner: PointRunner, prepare_point: PointPreparer | None) -> None:
        self._spec = spec
        self._runner = runner
        self._prepare_point = prepare_point

    def __call__(self, body: dict[str, Any]) -> PointOutcome:
        with closing(self.many([body])) as outcomes:
            return next(outcomes)

    def many(self, bodies: Iterable[dict[str, Any]]) -> Generator[PointOutcome, None, None]:
        """The outcomes of ``bodies`` in order; the valid ones go to the runner as one stream, so a runner
        that works ahead overlaps them. Preparing every body first costs one small config per point."""
        prepared = [self._prepare(body) for body in bodies]
        configs = (point.config for point in prepared if point.config is not None)
        with closing(
            self._runner.run_points(configs, iterations=self._spec.iterations, seed=self._spec.seed)
        ) as results:
            for point in prepared:
                if point.config is None:
                    yield PointOutcome(metric=None, summary=None, warnings=point.warnings, error=point.error)
                    continue
                result = next(results)
                if isinstance(result, FundmodelError):
                    yield PointOutcome(
                        metric=None, summary=None, warnings=point.warnings, error=_error_json(result)
                    )
                    continue
                result_json = result.to_json()
                del result  # only the current point's per-fund arrays stay alive
                yield PointOutcome(
                    metric=metric_value(self._spec.metric, result_json),
                    summary=standard_summary(result_json),
                    warnings=point.warnings,
                    error=None,
                )

    def _prepare(self, body: dict[str, Any]) -> _PreparedPoint:
        warnings: list[dict[str, Any]] = []
        try:
            if self._prepare_point is not None:
                prepared = self._prepare_point(body)
                body = prepared.body
                warnings.extend(prepared.warnings)
            if self._spec.renormalize_stages:
                warning = _renormalize_stages(body)
                if warning is not None:
                    warnings.append(warning)
            config = load_config(body)
        except FundmodelError as error:
            return _PreparedPoint(config=None, warnings=tuple(warnings), error=_error_json(error))
        return _PreparedPoint(config=config, warnings=tuple(warnings), error=None)


def _renormalize_stages(body: dict[str, Any]) -> dict[str, Any] | None:
    """Scale the stage weights to sum to 1 when they do not (within the stage core's tolerance)."""
    weights = body.get("stageDistribution")
    if not isinstance(weights, Mapping) or not weights:
        return None
    numbers = list(weights.values())
    if any(isinstance(weight, bool) or not isinstance(weight, int | float) for weight in numbers):
        return None  # malformed: load_config reports it
    total = math.fsum(numbers)
    if total <= 0.0 or not math.isfinite(total) or abs(total - 1.0) <= STAGE_SUM_TOLERANCE:
        return None
    body["stageDistribution"] = {key: weight / total for key, weight in weights.items()}
    return {
        "code": STAGE_WEIGHTS_RENORMALIZED,
        "message": f"stage weights summed to {total:.6g}; scaled to sum to 1",
        "field": "stageDistribution",
    }


def _error_json(error: FundmodelError) -> dict[str, Any]:
    field = error.field if isinstance(error, InvalidInputError) else None
    return {"code": error.code, "message": error.detail, "field": field}


__all__ = [
    "STAGE_WEIGHTS_RENORMALIZED",
    "GridPoint",
    "LocalPointRunner",
    "PointPreparer",
    "PointRunner",
    "PreparedPoint",
    "ProgressCallback",
    "ResolvedPath",
    "StopCheck",
    "expand_grid",
    "run_backsolve",
    "run_sensitivity",
    "run_sweep",
    "validate_sweep",
]
