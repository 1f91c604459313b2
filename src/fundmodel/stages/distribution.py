"""``parse_stage_distribution``: a JSON object of stage name -> weight in, a typed verdict out. Never raises.

Rules (the documented contract):

* The input must be a JSON object (``Mapping``) with 1 to :data:`MAX_ENTRIES` entries whose keys are
  strings of at most :data:`~fundmodel.stages.matching.MAX_STAGE_NAME_LENGTH` characters.
* Weights are real numbers (``int`` or ``float``; never ``bool``, strings, ``None`` or containers), finite,
  and within ``[0, 1]`` on the default ``"fraction"`` scale or ``[0, 100]`` when the caller passes
  ``scale="percent"`` explicitly. Percent weights are divided by 100, so ``weights`` and ``total`` are always
  fractions and ``tolerance`` is always in fraction units.
* Names go through :func:`~fundmodel.stages.normalize_stage`: aliases are normalized (and reported as
  deprecated), unknown names are reported with suggestions and never guessed.
* Keys that normalize to the same stage are merged (weights added) and reported.
* The weights of all well-formed entries, known or unknown, must sum to 1 within ``tolerance`` (default 1e-3).
  The sum is not checked when an entry is malformed (its weight is unknown).

``ok`` is true only when no problem of severity ``error`` was found. ``weights`` holds the known stages in
canonical order, as sent (not renormalized); what to do with an imperfect distribution is the caller's policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from functools import cache, lru_cache, partial
from types import MappingProxyType
from typing import Literal, NamedTuple

from fundmodel.stages.alias_table import alias_table
from fundmodel.stages.matching import MAX_STAGE_NAME_LENGTH
from fundmodel.stages.normalizer import normalize_stage
from fundmodel.stages.taxonomy import STAGE_ORDER, Stage

MAX_ENTRIES = 32
"""More entries than this are refused outright (there are only eight stages; the rest is noise or abuse)."""
DEFAULT_TOLERANCE = 1e-3

Scale = Literal["fraction", "percent"]


class ProblemCode(StrEnum):
    """Stable codes of distribution problems; clients and dashboards may rely on them."""

    NOT_AN_OBJECT = "NOT_AN_OBJECT"
    EMPTY = "EMPTY"
    TOO_MANY_ENTRIES = "TOO_MANY_ENTRIES"
    INVALID_KEY = "INVALID_KEY"
    KEY_TOO_LONG = "KEY_TOO_LONG"
    INVALID_WEIGHT = "INVALID_WEIGHT"
    UNKNOWN_STAGE = "UNKNOWN_STAGE"
    SUM_MISMATCH = "SUM_MISMATCH"
    DEPRECATED_ALIAS = "DEPRECATED_ALIAS"
    MERGED_KEYS = "MERGED_KEYS"

    __hash__ = str.__hash__

    @property
    def is_malformed(self) -> bool:
        """Malformed input is unusable in every validation mode (unlike unknown names or a bad sum)."""
        return self in MALFORMED_CODES

    @property
    def severity(self) -> Literal["error", "warning"]:
        return "warning" if self in WARNING_CODES else "error"


MALFORMED_CODES = frozenset(
    {
        ProblemCode.NOT_AN_OBJECT,
        ProblemCode.EMPTY,
        ProblemCode.TOO_MANY_ENTRIES,
        ProblemCode.INVALID_KEY,
        ProblemCode.KEY_TOO_LONG,
        ProblemCode.INVALID_WEIGHT,
    }
)
WARNING_CODES = frozenset({ProblemCode.DEPRECATED_ALIAS, ProblemCode.MERGED_KEYS})


class Problem(NamedTuple):
    """One finding about a distribution. ``message`` is rendered on demand, off the hot path."""

    code: ProblemCode
    key: str | None = None
    """The offending key as sent (truncated when too long); ``None`` for the distribution as a whole."""
    stage: Stage | None = None
    """For ``DEPRECATED_ALIAS`` and ``MERGED_KEYS``: the canonical stage meant."""
    suggestions: tuple[Stage, ...] = ()
    """For ``UNKNOWN_STAGE``: closest stages by edit distance."""
    detail: str = ""
    """Pre-rendered specifics (counts, sums) for whole-distribution problems."""

    @property
    def severity(self) -> Literal["error", "warning"]:
        return self.code.severity

    @property
    def message(self) -> str:
        return _render_message(self)


class UnknownStage(NamedTuple):
    name: str
    suggestions: tuple[Stage, ...]
    weight: float | None
    """Its weight as a fraction, or ``None`` when the weight itself was invalid."""


class AliasUse(NamedTuple):
    name: str
    canonical: Stage


class Merge(NamedTuple):
    stage: Stage
    names: tuple[str, ...]


class DistributionResult(NamedTuple):
    weights: dict[Stage, float]
    unknown: tuple[UnknownStage, ...]
    aliases: tuple[AliasUse, ...]
    merged: tuple[Merge, ...]
    total: float
    """Sum of all well-formed weights (known and unknown names), as a fraction."""
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return all(problem.code in WARNING_CODES for problem in self.problems)

    @property
    def is_malformed(self) -> bool:
        return any(problem.code in MALFORMED_CODES for problem in self.problems)

    @property
    def has_sum_mismatch(self) -> bool:
        return any(problem.code is ProblemCode.SUM_MISMATCH for problem in self.problems)

    def codes(self) -> frozenset[ProblemCode]:
        return frozenset(problem.code for problem in self.problems)


class _Spelling(NamedTuple):
    """What an exact spelling from the taxonomy or alias table contributes, prepared once."""

    stage: Stage
    position: int
    alias_use: AliasUse | None
    problem: Problem | None


@cache
def _exact_spellings() -> MappingProxyType[str, _Spelling]:
    prepared: dict[str, _Spelling] = {}
    for stage, spellings in alias_table().aliases.items():
        for spelling in spellings:
            prepared[spelling] = _Spelling(
                stage,
                STAGE_ORDER.index(stage),
                AliasUse(spelling, stage),
                Problem(ProblemCode.DEPRECATED_ALIAS, spelling, stage),
            )
    for position, stage in enumerate(STAGE_ORDER):
        prepared[stage.value] = _Spelling(stage, position, None, None)
    return MappingProxyType(prepared)


# Calling tuple.__new__ directly skips NamedTuple's Python-level constructor, a large share of a short call.
_new_result = partial(tuple.__new__, DistributionResult)
_new_unknown = partial(tuple.__new__, UnknownStage)
_new_problem = partial(tuple.__new__, Problem)


@lru_cache(maxsize=4096)
def _alias_spelling(name: str) -> _Spelling | None:
    """The slow path for a spelling not written exactly as in the table; ``None`` when it is unknown."""
    stage = normalize_stage(name).canonical
    if stage is None:
        return None
    return _Spelling(
        stage,
        STAGE_ORDER.index(stage),
        AliasUse(name, stage),
        Problem(ProblemCode.DEPRECATED_ALIAS, name, stage),
    )


def parse_stage_distribution(
    mapping: object,
    *,
    scale: Scale = "fraction",
    tolerance: float = DEFAULT_TOLERANCE,
) -> DistributionResult:
    """Validate and normalize a stage distribution; see the module docstring for the rules."""
    if scale == "fraction":
        divisor = upper = 1.0
    elif scale == "percent":
        divisor = upper = 100.0
    else:
        raise ValueError(f"scale must be 'fraction' or 'percent', not {scale!r}")
    if not 0.0 <= tolerance < 1.0:
        raise ValueError(f"tolerance must be in [0, 1), not {tolerance!r}")
    if type(mapping) is not dict and not isinstance(mapping, Mapping):
        return _refused(Problem(ProblemCode.NOT_AN_OBJECT, detail=type(mapping).__name__))
    if not mapping:
        return _refused(Problem(ProblemCode.EMPTY))
    if len(mapping) > MAX_ENTRIES:
        return _refused(Problem(ProblemCode.TOO_MANY_ENTRIES, detail=str(len(mapping))))

    exact = _exact_spellings()
    weights: dict[Stage, float] = {}
    first_names: dict[Stage, str] = {}
    merged_names: dict[Stage, list[str]] | None = None
    unknown: list[UnknownStage] = []
    aliases: list[AliasUse] = []
    problems: list[Problem] = []
    total = 0.0
    malformed = False
    in_order = True
    last_position = -1
    for name, raw_weight in mapping.items():
        # Exact type checks: bool is an int subclass but never a weight; nor are str, None or containers.
        # An int is range-checked before float() so a huge int cannot overflow.
        weight_type = type(raw_weight)
        if (weight_type is float or weight_type is int) and 0.0 <= raw_weight <= upper:
            weight: float | None = raw_weight / divisor
        else:
            weight = None
        spelling: _Spelling | None = exact.get(name) if type(name) is str else None
        if spelling is None:
            if type(name) is not str:
                problems.append(Problem(ProblemCode.INVALID_KEY, detail=type(name).__name__))
                malformed = True
                continue
            if len(name) > MAX_STAGE_NAME_LENGTH:
                problems.append(Problem(ProblemCode.KEY_TOO_LONG, name[:MAX_STAGE_NAME_LENGTH]))
                malformed = True
                continue
            spelling = _alias_spelling(name)
            if spelling is None:
                if weight is None:
                    problems.append(Problem(ProblemCode.INVALID_WEIGHT, name))
                    malformed = True
                else:
                    total += weight
                suggestions = normalize_stage(name).suggestions
                unknown.append(_new_unknown((name, suggestions, weight)))
                problems.append(_new_problem((ProblemCode.UNKNOWN_STAGE, name, None, suggestions, "")))
                continue
        if weight is None:
            problems.append(Problem(ProblemCode.INVALID_WEIGHT, name))
            malformed = True
        else:
            total += weight
        if spelling.alias_use is not None:
            aliases.append(spelling.alias_use)
            problems.append(spelling.problem)  # type: ignore[arg-type]  # set whenever alias_use is
        stage = spelling.stage
        if stage in first_names:
            if merged_names is None:
                merged_names = {}
            merged_names.setdefault(stage, [first_names[stage]]).append(name)
        else:
            first_names[stage] = name
        if weight is not None:
            if stage in weights:
                weights[stage] += weight
            else:
                weights[stage] = weight
                if spelling.position < last_position:
                    in_order = False
                last_position = spelling.position

    merged: tuple[Merge, ...] = ()
    if merged_names:
        merged = tuple(Merge(stage, tuple(names)) for stage, names in merged_names.items())
        problems.extend(Problem(ProblemCode.MERGED_KEYS, m.names[0], m.stage) for m in merged)
    if not malformed and abs(total - 1.0) > tolerance:
        problems.append(Problem(ProblemCode.SUM_MISMATCH, detail=f"{total:.6g}|{tolerance:g}"))
    if not in_order:
        weights = {stage: weights[stage] for stage in STAGE_ORDER if stage in weights}
    return _new_result(
        (
            weights,
            tuple(unknown) if unknown else (),
            tuple(aliases) if aliases else (),
            merged,
            total,
            tuple(problems) if problems else (),
        )
    )


def _refused(problem: Problem) -> DistributionResult:
    return DistributionResult({}, (), (), (), 0.0, (problem,))


def _render_message(problem: Problem) -> str:
    code, key, stage = problem.code, problem.key, problem.stage
    if code is ProblemCode.NOT_AN_OBJECT:
        return f"stage distribution must be a JSON object, not {problem.detail}"
    if code is ProblemCode.EMPTY:
        return "stage distribution has no entries"
    if code is ProblemCode.TOO_MANY_ENTRIES:
        return f"stage distribution has {problem.detail} entries; at most {MAX_ENTRIES} are allowed"
    if code is ProblemCode.INVALID_KEY:
        return f"stage names must be strings, not {problem.detail}"
    if code is ProblemCode.KEY_TOO_LONG:
        return f"stage name {key!r}... is longer than {MAX_STAGE_NAME_LENGTH} characters"
    if code is ProblemCode.INVALID_WEIGHT:
        return f"weight of {key!r} must be a finite number within the scale (0 to 1, or 0 to 100 %)"
    if code is ProblemCode.UNKNOWN_STAGE:
        if problem.suggestions:
            hint = " or ".join(repr(s.value) for s in problem.suggestions)
            return f"{key!r} is not a known stage; did you mean {hint}?"
        return f"{key!r} is not a known stage"
    if code is ProblemCode.DEPRECATED_ALIAS:
        return f"{key!r} is a deprecated spelling of {stage.value if stage else ''!r}"
    if code is ProblemCode.MERGED_KEYS:
        return f"several names mean {stage.value if stage else ''!r}; their weights were added"
    total, _, tolerance = problem.detail.partition("|")
    return f"weights sum to {total}; they must sum to 1 within {tolerance}"


__all__ = [
    "DEFAULT_TOLERANCE",
    "MAX_ENTRIES",
    "AliasUse",
    "DistributionResult",
    "Merge",
    "Problem",
    "ProblemCode",
    "Scale",
    "UnknownStage",
    "parse_stage_distribution",
]
