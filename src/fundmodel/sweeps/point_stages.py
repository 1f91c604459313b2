"""Stage names inside sweep jobs: the stage in a varied path and every point's varied stage distribution,
decided by the request's stage-validation layer at submission, and the worker's hook that applies them.

Under enforce, the points whose varied stage weights are rejected are listed, one entry per point, in one
error; under warn/off each distinct point distribution is renormalized by the layer and its warnings are kept
for that point's result.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, TypeVar

from fundmodel.engines.sweep import PreparedPoint, resolve_path
from fundmodel.engines.sweep.parameters import with_values
from fundmodel.errors import InvalidInputError, MalformedStageInputError, StageValidationError
from fundmodel.stages import Stage
from fundmodel.validation import ClientMode, StageDecision, ValidationMode

MAX_REPORTED_POINTS = 50
POINT_FIELD = "points.stageDistribution"
"""The field a point's varied stage distribution is validated (and its warnings reported) as."""
DISTRIBUTION_FIELD = "stageDistribution"
"""The config field whose weights a point may vary."""
_Value = TypeVar("_Value")


class RequestStageValidation(Protocol):
    """The request's stage validation (``api/stage_validation.py``), as this service uses it."""

    @property
    def client_mode(self) -> ClientMode: ...

    @property
    def warnings(self) -> list[dict[str, Any]]: ...

    def distribution(self, raw: object, *, field: str = ...) -> dict[Stage, float]: ...

    def stage(self, raw: object, *, field: str = ...) -> StageDecision: ...

    def stage_keyed(self, raw: Mapping[str, _Value], *, field: str) -> dict[Stage, _Value]: ...


def canonical_path(path: str, validation: RequestStageValidation, field: str) -> str:
    """The path with its stage (if any) decided by the caller's mode, then written canonically.

    The stage is judged by the layer before the path is resolved, so an unknown stage is the mode's
    answer (400 INVALID_STAGE under enforce), not only the core's "cannot vary this" (422)."""
    spelling = _stage_spelling(path)
    if spelling is not None:
        validation.stage(spelling, field=field)
    return ".".join(resolve_path(path, field=field).segments)


def _stage_spelling(path: str) -> str | None:
    """The stage segment of a path into a stage-keyed field (``stageDistribution.<stage>``, ...)."""
    segments = path.split(".")
    if segments[0] in {DISTRIBUTION_FIELD, "stageProfiles"} and len(segments) > 1:
        return segments[1]
    return None


def renormalizes(validation: RequestStageValidation) -> bool:
    return validation.client_mode.mode is not ValidationMode.ENFORCE


def is_distribution(path: str) -> bool:
    return path.split(".", 1)[0] == DISTRIBUTION_FIELD


def distribution_at(base: Mapping[str, Any], path: str, value: float) -> object:
    return with_values(base, {resolve_path(path): value}).get(DISTRIBUTION_FIELD)


def decide_point_stages(
    points: Iterable[tuple[str, object]], validation: RequestStageValidation
) -> list[dict[str, Any]]:
    """Each distinct varied distribution decided by the layer: its canonical weights and warnings.

    Raises one error listing every rejected point (400 under enforce; 422 when a point's weights are
    malformed, e.g. negative, in every mode)."""
    decided: dict[str, dict[str, Any]] = {}
    refused: dict[str, InvalidInputError] = {}
    rejected: list[tuple[str, InvalidInputError]] = []
    for where, raw in points:
        key = _distribution_key(raw)
        if key not in decided and key not in refused:
            decision = _decide_point(raw, validation)
            if isinstance(decision, InvalidInputError):
                refused[key] = decision
            else:
                decided[key] = decision
        if key in refused:
            rejected.append((where, refused[key]))
    if rejected:
        raise _rejected_points(rejected, validation.client_mode.mode)
    return list(decided.values())


def _decide_point(raw: object, validation: RequestStageValidation) -> dict[str, Any] | InvalidInputError:
    """One varied distribution through the layer: its canonical weights and warnings, or its error.

    One fixed field name for every point: the usage ledger and the metrics count by field, so a point's
    index must not become one (a grid has up to 1,000)."""
    before = len(validation.warnings)
    try:
        weights = validation.distribution(raw, field=POINT_FIELD)
    except (StageValidationError, MalformedStageInputError) as error:
        return error
    finally:
        # A point's warnings belong to its result; the request's own list keeps the base's.
        point_warnings = validation.warnings[before:]
        del validation.warnings[before:]
    return {
        "raw": raw,
        "weights": {stage.value: weight for stage, weight in weights.items()},
        "warnings": point_warnings,
    }


def _rejected_points(
    rejected: list[tuple[str, InvalidInputError]], mode: ValidationMode
) -> InvalidInputError:
    """One error for every rejected point: 422 if any is malformed (every mode), else the first's 400."""
    malformed = [error for _, error in rejected if isinstance(error, MalformedStageInputError)]
    first = malformed[0] if malformed else rejected[0][1]
    problems = [
        {"point": where, "code": error.code, "detail": error.detail}
        for where, error in rejected[:MAX_REPORTED_POINTS]
    ]
    return type(first)(
        f"{len(rejected)} point(s) of this job have a stage distribution that {mode.value} mode rejects "
        f"(each listed in problems); the first: {first.detail}",
        code=first.code,
        field=first.field,
        extra={"problems": problems},
    )


def _distribution_key(raw: object) -> str:
    return json.dumps(raw, sort_keys=True, default=str)


def point_preparer(point_stages: Iterable[Mapping[str, Any]]) -> Callable[[dict[str, Any]], PreparedPoint]:
    """The worker's per-point hook: a point's varied distribution replaced by the layer's decision."""
    decided = {_distribution_key(entry["raw"]): entry for entry in point_stages}

    def prepare(body: dict[str, Any]) -> PreparedPoint:
        entry = decided.get(_distribution_key(body.get(DISTRIBUTION_FIELD)))
        if entry is None:
            return PreparedPoint(body)  # the base's distribution, decided with the base
        return PreparedPoint({**body, DISTRIBUTION_FIELD: dict(entry["weights"])}, tuple(entry["warnings"]))

    return prepare
