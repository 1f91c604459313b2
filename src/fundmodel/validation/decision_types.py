"""What a per-mode decision on stage input is: one generic :class:`Decision`, its three kinds, the errors.

The policy itself (which decision for which input and mode) is in :mod:`~fundmodel.validation.decisions`.
Every problem a decision raises carries ``invalid`` and ``validStages`` (and ``suggestions`` where a name
could be corrected): :func:`problem_extra` builds them, once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Generic, NamedTuple, Self, TypeVar

from fundmodel.errors import FundmodelError, MalformedStageInputError
from fundmodel.stages import STAGE_ORDER, Stage
from fundmodel.validation.mode import ValidationMode
from fundmodel.validation.outcome import Outcome

MAX_OFFENDING_NAMES = 5
VALID_STAGES: tuple[str, ...] = tuple(stage.value for stage in STAGE_ORDER)

ACCEPTED_UNKNOWN_OUTCOME: Mapping[ValidationMode, Outcome] = MappingProxyType(
    {ValidationMode.OFF: Outcome.UNKNOWN_ACCEPTED, ValidationMode.WARN: Outcome.WOULD_REJECT}
)
"""The outcome of input with an unknown name (or a bad sum) that a lenient mode accepts."""

ValueT = TypeVar("ValueT", covariant=True)


class UsageKind(StrEnum):
    """What one piece of stage input counts as in the per-client usage ledger (``stage_usage.kind``)."""

    VALID = "valid"
    """Canonical input: one per validation, no spelling."""
    ALIAS = "alias"
    """A deprecated spelling, normalized to its canonical stage."""
    UNKNOWN = "unknown"
    """An unknown name that ``off`` / ``warn`` accepted (dropped, or kept as sent)."""
    SUM = "sum"
    """Weights that did not sum to 1, renormalized by ``off`` / ``warn`` (no spelling)."""
    REJECTED = "rejected"
    """A reason ``enforce`` answered 400: an offending name, or the sum (no spelling)."""

    __hash__ = str.__hash__


StageUse = tuple[UsageKind, str]
"""One counted use of deprecated handling (or one rejection reason) in a decision: its kind and the name as
sent (empty for a sum). A plain tuple, not a NamedTuple: building one is several times cheaper, and alias
traffic builds one per name."""


NO_USES: tuple[StageUse, ...] = ()


@dataclass(frozen=True, slots=True)
class ValidationWarning:
    """One thing the client should change, returned in the body's ``warnings`` array."""

    code: str
    field: str
    message: str
    value: str | None = None
    normalized_to: Stage | None = None
    suggestions: tuple[Stage, ...] = ()

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "field": self.field, "message": self.message}
        if self.value is not None:
            body["value"] = self.value
        if self.normalized_to is not None:
            body["normalizedTo"] = self.normalized_to.value
        if self.suggestions:
            body["suggestions"] = [stage.value for stage in self.suggestions]
        return body


@dataclass(frozen=True, slots=True)
class Decision(Generic[ValueT]):
    """The decision on one piece of stage input under one mode; each kind names its ``value``."""

    outcome: Outcome
    value: ValueT
    """What to use when accepted; the kind's empty value on error."""
    error: FundmodelError | None = None
    warnings: tuple[ValidationWarning, ...] = ()
    deprecated_input: bool = False
    """An alias or an unknown name was sent: the response carries deprecation headers (warn, enforce)."""
    offending_names: tuple[str, ...] = ()
    """Up to five unknown or deprecated names, as sent, for the offender log (never for metric labels)."""
    uses: tuple[StageUse, ...] = NO_USES
    """Every deprecated handling the decision relied on (each alias, each unknown name, a renormalized
    sum), or under ``enforce`` every reason for the rejection; empty for canonical and malformed input.
    What the usage ledger counts (all names, not only the first five)."""

    @property
    def accepted(self) -> bool:
        return self.error is None

    @classmethod
    def empty_value(cls) -> ValueT:
        """The value of a decision that is not accepted (nothing to use)."""
        raise NotImplementedError(f"{cls.__name__} does not name its empty value")

    @classmethod
    def malformed(cls, error: MalformedStageInputError, *, offending_names: tuple[str, ...] = ()) -> Self:
        """Input no mode can use (422)."""
        return cls(Outcome.MALFORMED, cls.empty_value(), error, offending_names=offending_names)

    @classmethod
    def rejected(
        cls, error: FundmodelError, offending_names: tuple[str, ...], reasons: tuple[str, ...]
    ) -> Self:
        """Well-formed input that strict validation refuses (400); always deprecated input.

        ``reasons``: each name refused, as sent (an empty string for a bad sum).
        """
        return cls(
            Outcome.REJECTED,
            cls.empty_value(),
            error,
            deprecated_input=True,
            offending_names=offending_names,
            uses=tuple((UsageKind.REJECTED, reason) for reason in reasons),
        )


class DistributionDecision(Decision[dict[Stage, float]]):
    """The decision on a stage distribution."""

    __slots__ = ()

    @property
    def weights(self) -> dict[Stage, float]:
        """Canonical weights to use (unknown names dropped and renormalized in off/warn); empty on error."""
        return self.value

    @classmethod
    def empty_value(cls) -> dict[Stage, float]:
        return {}


class StagePick(NamedTuple):
    stage: Stage | None
    stored_value: str
    """What to store or filter by: the canonical value, or the trimmed name of an accepted unknown."""


class StageDecision(Decision[StagePick]):
    """The decision on one stage name (a company's ``stage``, a ``?stage=`` filter)."""

    __slots__ = ()

    @property
    def stage(self) -> Stage | None:
        return self.value.stage

    @property
    def stored_value(self) -> str:
        return self.value.stored_value

    @classmethod
    def empty_value(cls) -> StagePick:
        return StagePick(None, "")


class StageKeysDecision(Decision[dict[str, Stage]]):
    """The decision on the stage names used as keys of per-stage overrides (``stageProfiles``)."""

    __slots__ = ()

    @property
    def stages(self) -> dict[str, Stage]:
        """Each kept key, as sent, with its canonical stage (unknown keys dropped in off/warn); empty on
        error."""
        return self.value

    @classmethod
    def empty_value(cls) -> dict[str, Stage]:
        return {}


def problem_extra(
    invalid: Sequence[str], suggestions: Mapping[str, list[str]] | None = None, **more: object
) -> dict[str, Any]:
    """The members of a stage problem, in this order: ``invalid``, ``suggestions`` (where a name could be
    corrected), ``validStages``, then ``more``."""
    extra: dict[str, Any] = {"invalid": list(invalid)}
    if suggestions is not None:
        extra["suggestions"] = dict(suggestions)
    extra["validStages"] = VALID_STAGES
    return extra | more


def names_list(names: Sequence[str]) -> str:
    """Names for a message: at most five, each cut at 64 characters, then how many more."""
    shown = ", ".join(repr(name[:64]) for name in names[:MAX_OFFENDING_NAMES])
    more = len(names) - MAX_OFFENDING_NAMES
    return shown + (f" and {more} more" if more > 0 else "")


__all__ = [
    "ACCEPTED_UNKNOWN_OUTCOME",
    "MAX_OFFENDING_NAMES",
    "NO_USES",
    "VALID_STAGES",
    "Decision",
    "DistributionDecision",
    "StageDecision",
    "StageKeysDecision",
    "StagePick",
    "StageUse",
    "UsageKind",
    "ValidationWarning",
    "names_list",
    "problem_extra",
]
