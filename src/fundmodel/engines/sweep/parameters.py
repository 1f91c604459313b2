"""Varied parameters: a dotted camelCase path into the simulate body and the values it takes.

A path names one numeric field of :class:`~fundmodel.engines.montecarlo.SimulationConfig`
(``reserveRatio``, ``riskModel.marketOnOutcomes``, ``stageDistribution.seed``,
``stageProfiles.seed.exitMultipleMedian``). It is checked against the config's schema, not against the
base body, so a stage or an override the base does not mention yet can be varied. Stage names inside a
path go through :func:`~fundmodel.stages.normalize_stage`; the spelling is kept so the HTTP layer can
apply its mode policy to it.
"""

from __future__ import annotations

import copy
import math
import types
import typing
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from fundmodel.engines.montecarlo import SimulationConfig
from fundmodel.errors import InvalidInputError
from fundmodel.stages import MatchKind, Stage, normalize_stage

INVALID_SWEEP = "INVALID_SWEEP"
"""The error code of a sweep, sensitivity or backsolve request that cannot run at all."""
MAX_VALUES_PER_PARAMETER = 1_000
"""No single parameter takes more values than a whole grid may have points."""


@dataclass(frozen=True, slots=True)
class ResolvedPath:
    """A checked parameter path: its segments as they are written into the body, and its stage if any."""

    path: str
    segments: tuple[str, ...]
    """Segments with a stage segment replaced by the canonical stage name."""
    stage: Stage | None
    stage_spelling: str | None
    """The stage as the caller spelled it (an alias, or the canonical name)."""


@dataclass(frozen=True, slots=True)
class Parameter:
    """One varied parameter of a sweep: its path and its values, in the order given."""

    path: str
    values: tuple[float, ...]


def parse_values(text: str, *, field: str = "values") -> tuple[float, ...]:
    """``start:stop:count`` (inclusive, evenly spaced, count >= 2) or a comma-separated list of numbers."""
    stripped = text.strip()
    if ":" in stripped:
        parts = stripped.split(":")
        if len(parts) != 3:
            raise InvalidInputError(
                f"{field}: {text!r} is not start:stop:count", code=INVALID_SWEEP, field=field
            )
        start, stop = (_number(part, text, field) for part in parts[:2])
        count = _count(parts[2], text, field)
        if count > MAX_VALUES_PER_PARAMETER:
            raise InvalidInputError(
                f"{field}: at most {MAX_VALUES_PER_PARAMETER:,} values per parameter, not {count:,}",
                code=INVALID_SWEEP,
                field=field,
            )
        step = (stop - start) / (count - 1)
        # The ends exactly as given; the values between as a person would write them (0.6, not
        # 0.6000000000000001: 15 significant digits drop only the step's binary rounding).
        inner = (float(f"{start + step * position:.15g}") for position in range(1, count - 1))
        return (start, *inner, stop)
    values = tuple(_number(part, text, field) for part in stripped.split(","))
    return check_values(values, field=field)


def check_values(values: object, *, field: str = "values") -> tuple[float, ...]:
    """A non-empty sequence of finite numbers (not booleans), as floats."""
    if isinstance(values, str | bytes) or not isinstance(values, list | tuple):
        raise InvalidInputError(f"{field}: must be a list of numbers", code=INVALID_SWEEP, field=field)
    if not values:
        raise InvalidInputError(f"{field}: needs at least one value", code=INVALID_SWEEP, field=field)
    if len(values) > MAX_VALUES_PER_PARAMETER:
        raise InvalidInputError(
            f"{field}: at most {MAX_VALUES_PER_PARAMETER:,} values per parameter, not {len(values):,}",
            code=INVALID_SWEEP,
            field=field,
        )
    checked: list[float] = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise InvalidInputError(
                f"{field}: {value!r} is not a finite number", code=INVALID_SWEEP, field=field
            )
        checked.append(float(value))
    return tuple(checked)


def parse_parameter(text: str, *, field: str = "vary") -> Parameter:
    """The CLI form ``PATH=VALUES`` (``reserveRatio=0:0.8:9``, ``carryRate=0.2,0.25``)."""
    path, separator, values = text.partition("=")
    if not separator or not path.strip():
        raise InvalidInputError(
            f"{field}: {text!r} is not PATH=VALUES (e.g. reserveRatio=0:0.8:9)",
            code=INVALID_SWEEP,
            field=field,
        )
    resolve_path(path.strip(), field=field)
    return Parameter(path.strip(), parse_values(values, field=field))


def resolve_path(path: str, *, field: str = "path") -> ResolvedPath:
    """Check that ``path`` names a numeric field of the simulate body; raise ``InvalidInputError`` if not."""
    if not isinstance(path, str) or not path:
        raise InvalidInputError(f"{field}: a parameter path is required", code=INVALID_SWEEP, field=field)
    segments = path.split(".")
    model: type[BaseModel] = SimulationConfig
    written: list[str] = []
    stage: Stage | None = None
    spelling: str | None = None
    position = 0
    while position < len(segments):
        segment = segments[position]
        fields = {info.alias or name: info.annotation for name, info in model.model_fields.items()}
        if segment not in fields:
            choices = ", ".join(sorted(fields))
            raise InvalidInputError(
                f"{field}: {path!r}: {segment!r} is not a field here (choices: {choices})",
                code=INVALID_SWEEP,
                field=field,
            )
        written.append(segment)
        annotation = _strip_optional(fields[segment])
        if typing.get_origin(annotation) is dict:
            key_type, annotation = typing.get_args(annotation)
            if key_type is not Stage:  # pragma: no cover - every mapping of the config is keyed by stage
                raise InvalidInputError(f"{field}: {path!r} is not numeric", code=INVALID_SWEEP, field=field)
            position += 1
            if position == len(segments):
                raise InvalidInputError(
                    f"{field}: {path!r} needs a stage after {segment!r} (e.g. {segment}.seed)",
                    code=INVALID_SWEEP,
                    field=field,
                )
            spelling = segments[position]
            stage = _stage(spelling, path, field)
            written.append(stage.value)
            annotation = _strip_optional(annotation)
        position += 1
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if position == len(segments):
                raise InvalidInputError(
                    f"{field}: {path!r} is an object, not a number", code=INVALID_SWEEP, field=field
                )
            model = annotation
            continue
        if position < len(segments) or annotation not in (float, int):
            raise InvalidInputError(
                f"{field}: {path!r} is not a numeric field of the config", code=INVALID_SWEEP, field=field
            )
    return ResolvedPath(path=path, segments=tuple(written), stage=stage, stage_spelling=spelling)


def with_values(base: Mapping[str, Any], assignments: Mapping[ResolvedPath, float]) -> dict[str, Any]:
    """A deep copy of ``base`` with each path set to its value (stage keys matched in any spelling)."""
    body: dict[str, Any] = copy.deepcopy(dict(base))
    for resolved, value in assignments.items():
        _assign(body, resolved, value)
    return body


def effective_value(config: SimulationConfig, resolved: ResolvedPath) -> float | None:
    """The value a loaded config uses at ``resolved``: the base's, else the default (a stage profile's
    default included); ``None`` where the field is unset and has no number (e.g. no preferred return)."""
    if resolved.segments[0] == "stageDistribution" and resolved.stage is not None:
        return float(config.stage_distribution.get(resolved.stage, 0.0))
    node: object = config
    segments = list(resolved.segments)
    if segments[0] == "stageProfiles" and resolved.stage is not None:
        node, segments = config.resolved_stage_profiles()[resolved.stage], segments[2:]
    for segment in segments:
        node = getattr(node, _attribute(type(node), segment), None)
    if isinstance(node, bool) or not isinstance(node, int | float):
        return None
    return float(node)


def _attribute(model: type, alias: str) -> str:
    """The attribute of a camelCase field (``exitMultipleMedian`` -> ``exit_multiple_median``)."""
    fields = getattr(model, "model_fields", None) or getattr(model, "__dataclass_fields__", {})
    for name, info in fields.items():
        if getattr(info, "alias", None) == alias or _camel(name) == alias:
            return str(name)
    return alias


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _assign(body: dict[str, Any], resolved: ResolvedPath, value: float) -> None:
    node: MutableMapping[str, Any] = body
    last = len(resolved.segments) - 1
    for depth, segment in enumerate(resolved.segments):
        key = segment
        if _is_stage_segment(resolved, depth):
            key = _existing_key(node, segment) or segment
        if depth == last:
            node[key] = value
            return
        child = node.get(key)
        if not isinstance(child, MutableMapping):
            # A missing (or null) object the base leaves to its defaults: the varied field is its only entry.
            child = {}
            node[key] = child
        node = child


def _is_stage_segment(resolved: ResolvedPath, depth: int) -> bool:
    # Both stage-keyed mappings of the config (stageDistribution, stageProfiles) are top-level fields.
    return resolved.stage is not None and depth == 1


def _existing_key(node: Mapping[str, Any], canonical: str) -> str | None:
    """The key of ``node`` spelling stage ``canonical`` (the base may use an alias), if there is one."""
    for key in node:
        if isinstance(key, str) and normalize_stage(key).canonical == Stage(canonical):
            return key
    return None


def _stage(spelling: str, path: str, field: str) -> Stage:
    match = normalize_stage(spelling)
    if match.canonical is None or match.kind is MatchKind.UNKNOWN:
        hint = ", ".join(stage.value for stage in match.suggestions)
        suffix = f" (did you mean: {hint})" if hint else ""
        raise InvalidInputError(
            f"{field}: {path!r}: {spelling!r} is not a known stage{suffix}", code=INVALID_SWEEP, field=field
        )
    return match.canonical


def _strip_optional(annotation: Any) -> Any:
    """``X | None`` -> ``X`` and ``Annotated[X, ...]`` -> ``X``."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _number(text: str, whole: str, field: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise InvalidInputError(
            f"{field}: {text.strip()!r} in {whole!r} is not a number", code=INVALID_SWEEP, field=field
        ) from None
    if not math.isfinite(value):
        raise InvalidInputError(
            f"{field}: {whole!r} has a non-finite number", code=INVALID_SWEEP, field=field
        )
    return value


def _count(text: str, whole: str, field: str) -> int:
    try:
        count = int(text.strip())
    except ValueError:
        raise InvalidInputError(
            f"{field}: the count in {whole!r} must be a whole number", code=INVALID_SWEEP, field=field
        ) from None
    if count < 2:
        raise InvalidInputError(
            f"{field}: the count in {whole!r} must be at least 2 (start and stop)",
            code=INVALID_SWEEP,
            field=field,
        )
    return count
