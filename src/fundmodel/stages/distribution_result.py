"""What :func:`~fundmodel.stages.parse_stage_distribution` returns: the result, its problems, their messages.

Types only (no parsing): both parser paths (:mod:`~fundmodel.stages.entry_parser` and
:mod:`~fundmodel.stages.key_plans`) build these, and :mod:`~fundmodel.stages.distribution` re-exports them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Literal, NamedTuple

from fundmodel.stages.matching import MAX_STAGE_NAME_LENGTH
from fundmodel.stages.taxonomy import Stage

MAX_ENTRIES = 32
"""More entries than this are refused outright (there are only eight stages; the rest is noise or abuse)."""
DEFAULT_TOLERANCE = 1e-3


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


class NotAnObject(NamedTuple):
    """``NOT_AN_OBJECT``: the type that was sent instead of a JSON object."""

    type_name: str

    @property
    def message(self) -> str:
        return f"stage distribution must be a JSON object, not {self.type_name}"


class TooManyEntries(NamedTuple):
    """``TOO_MANY_ENTRIES``: how many entries were sent."""

    entries: int

    @property
    def message(self) -> str:
        return f"stage distribution has {self.entries} entries; at most {MAX_ENTRIES} are allowed"


class KeyNotAString(NamedTuple):
    """``INVALID_KEY`` for a key that is not a string: its type."""

    type_name: str

    @property
    def message(self) -> str:
        return f"stage names must be strings, not {self.type_name}"


class UnstorableKey(NamedTuple):
    """``INVALID_KEY`` for a string key holding NUL or an unpaired surrogate (never echoed: it could not be
    written into a response or a log line)."""

    @property
    def message(self) -> str:
        return "a stage name contains NUL (U+0000) or an unpaired surrogate"


class SumMismatch(NamedTuple):
    """``SUM_MISMATCH``: the sum of the weights and the tolerance it missed, both as fractions."""

    total: float
    tolerance: float

    @property
    def message(self) -> str:
        return f"weights sum to {self.total:.6g}; they must sum to 1 within {self.tolerance:g}"


ProblemDetail = NotAnObject | TooManyEntries | KeyNotAString | UnstorableKey | SumMismatch
"""The specifics of a whole-distribution problem (or of a key that cannot be echoed), typed per kind."""


class Problem(NamedTuple):
    """One finding about a distribution. ``message`` is rendered on demand, off the hot path."""

    code: ProblemCode
    key: str | None = None
    """The offending key as sent (truncated when too long); ``None`` for the distribution as a whole."""
    stage: Stage | None = None
    """For ``DEPRECATED_ALIAS`` and ``MERGED_KEYS``: the canonical stage meant."""
    suggestions: tuple[Stage, ...] = ()
    """For ``UNKNOWN_STAGE``: closest stages by edit distance."""
    detail: ProblemDetail | None = None
    """For the problems that are not about one echoed key: what exactly was wrong."""

    @property
    def severity(self) -> Literal["error", "warning"]:
        return self.code.severity

    @property
    def message(self) -> str:
        if self.detail is not None:
            return self.detail.message
        return _KEY_MESSAGES[self.code](self)


def _unknown_stage_message(problem: Problem) -> str:
    if problem.suggestions:
        hint = " or ".join(repr(stage.value) for stage in problem.suggestions)
        return f"{problem.key!r} is not a known stage; did you mean {hint}?"
    return f"{problem.key!r} is not a known stage"


def _stage_value(problem: Problem) -> str:
    return problem.stage.value if problem.stage else ""


_KEY_MESSAGES: Mapping[ProblemCode, Callable[[Problem], str]] = MappingProxyType(
    {
        ProblemCode.EMPTY: lambda _: "stage distribution has no entries",
        ProblemCode.KEY_TOO_LONG: lambda problem: (
            f"stage name {problem.key!r}... is longer than {MAX_STAGE_NAME_LENGTH} characters"
        ),
        ProblemCode.INVALID_WEIGHT: lambda problem: (
            f"weight of {problem.key!r} must be a finite number within the scale (0 to 1, or 0 to 100 %)"
        ),
        ProblemCode.UNKNOWN_STAGE: _unknown_stage_message,
        ProblemCode.DEPRECATED_ALIAS: lambda problem: (
            f"{problem.key!r} is a deprecated spelling of {_stage_value(problem)!r}"
        ),
        ProblemCode.MERGED_KEYS: lambda problem: (
            f"several names mean {_stage_value(problem)!r}; their weights were added"
        ),
    }
)
"""Messages of the problems that carry no detail, by code (the others render their detail)."""


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


def refused(problem: Problem) -> DistributionResult:
    """The result for input refused as a whole (not an object, empty, too many entries)."""
    return DistributionResult({}, (), (), (), 0.0, (problem,))
