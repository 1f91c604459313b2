"""The per-mode decision on stage input. The behaviour table (also in the README and OpenAPI):

=====================  ===========================  ==========================  =============================
input                  off                          warn                        enforce
=====================  ===========================  ==========================  =============================
canonical              accepted (valid)             accepted (valid)            accepted (valid)
deprecated alias       normalized, silent           normalized + warning +      normalized + warning +
                       (normalized_alias)           headers (normalized_alias)  headers (normalized_alias)
unknown name           dropped, weights             dropped, weights            400 INVALID_STAGE (rejected)
                       renormalized, silent         renormalized + warning +
                       (unknown_accepted)           headers (would_reject)
weights sum != 1       renormalized, silent         renormalized + warning      400 INVALID_STAGE_DISTRIBUTION
malformed              422 (malformed)              422 (malformed)             422 (malformed)
=====================  ===========================  ==========================  =============================

For a single stage field (a company's ``stage``, a ``?stage=`` filter) an accepted unknown name is kept as
sent, trimmed (``stored_value``), since there are no weights to drop it from. Non-strings, empty and
over-long names are malformed there. When a distribution has no known stage with positive weight left
after dropping unknown names, there is nothing to use: 422 in every mode.

Deprecated aliases stay accepted under ``enforce`` until the Sunset date; pass ``aliases_accepted=False``
after it, and they are rejected like unknown names (with their canonical name as the suggestion).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from fundmodel.errors import (
    FundmodelError,
    InvalidStageDistributionError,
    InvalidStageError,
    MalformedStageInputError,
)
from fundmodel.stages import (
    STAGE_ORDER,
    MatchKind,
    ProblemCode,
    Stage,
    UnknownReason,
    normalize_stage,
    parse_stage_distribution,
)
from fundmodel.validation.mode import ValidationMode
from fundmodel.validation.outcome import Outcome

MAX_OFFENDING_NAMES = 5
VALID_STAGES: tuple[str, ...] = tuple(stage.value for stage in STAGE_ORDER)
_ACCEPTED_UNKNOWN_OUTCOME = {
    ValidationMode.OFF: Outcome.UNKNOWN_ACCEPTED,
    ValidationMode.WARN: Outcome.WOULD_REJECT,
}


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
class DistributionDecision:
    outcome: Outcome
    weights: dict[Stage, float]
    """Canonical weights to use (unknown names dropped and renormalized in off/warn); empty on error."""
    error: FundmodelError | None = None
    warnings: tuple[ValidationWarning, ...] = ()
    deprecated_input: bool = False
    """An alias or an unknown name was sent: the response carries deprecation headers (warn, enforce)."""
    offending_names: tuple[str, ...] = ()
    """Up to five unknown or deprecated names, as sent, for the offender log (never for metric labels)."""

    @property
    def accepted(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class StageDecision:
    outcome: Outcome
    stage: Stage | None
    stored_value: str
    """What to store or filter by: the canonical value, or the trimmed name of an accepted unknown."""
    error: FundmodelError | None = None
    warnings: tuple[ValidationWarning, ...] = ()
    deprecated_input: bool = False
    offending_names: tuple[str, ...] = field(default=())

    @property
    def accepted(self) -> bool:
        return self.error is None


def validate_stage_distribution(
    raw: object,
    mode: ValidationMode,
    *,
    field: str = "stageDistribution",
    aliases_accepted: bool = True,
) -> DistributionDecision:
    """Decide what to do with a stage distribution under ``mode``; see the module docstring."""
    result = parse_stage_distribution(raw)
    if result.is_malformed:
        errors = [
            {"code": p.code.value, "key": p.key, "message": p.message}
            for p in result.problems
            if p.code.is_malformed
        ]
        return DistributionDecision(
            Outcome.MALFORMED,
            {},
            MalformedStageInputError(
                f"{field} is malformed: {errors[0]['message']}",
                field=field,
                errors=errors,
                extra={
                    "invalid": [e["key"] for e in errors if e["key"] is not None],
                    "validStages": VALID_STAGES,
                },
            ),
        )

    alias_names = tuple(alias.name for alias in result.aliases)
    unknown_names = tuple(unknown.name for unknown in result.unknown)
    offending = (unknown_names + alias_names)[:MAX_OFFENDING_NAMES]
    if not aliases_accepted and mode is ValidationMode.ENFORCE and result.aliases:
        suggestions = {alias.name: [alias.canonical.value] for alias in result.aliases}
        suggestions.update({u.name: [s.value for s in u.suggestions] for u in result.unknown})
        invalid = list(unknown_names + alias_names)
        return _rejected_distribution(
            InvalidStageError(
                f"{field} uses names that are no longer accepted: {_names(invalid)}; "
                "send canonical stage names",
                field=field,
                extra={"invalid": invalid, "suggestions": suggestions, "validStages": VALID_STAGES},
            ),
            offending,
        )

    if result.ok:
        if mode is ValidationMode.OFF or not alias_names:
            return DistributionDecision(
                Outcome.NORMALIZED_ALIAS if alias_names else Outcome.VALID,
                result.weights,
                offending_names=offending,
            )
        return DistributionDecision(
            Outcome.NORMALIZED_ALIAS,
            result.weights,
            warnings=_alias_warnings(result.aliases, field),
            deprecated_input=True,
            offending_names=offending,
        )

    if mode is ValidationMode.ENFORCE:
        if result.unknown:
            suggestions = {u.name: [s.value for s in u.suggestions] for u in result.unknown}
            return _rejected_distribution(
                InvalidStageError(
                    f"{field} names unknown stages: {_names(unknown_names)}",
                    field=field,
                    extra={
                        "invalid": list(unknown_names),
                        "suggestions": suggestions,
                        "validStages": VALID_STAGES,
                    },
                ),
                offending,
            )
        return _rejected_distribution(
            InvalidStageDistributionError(
                f"{field} weights sum to {result.total:.6g}; they must sum to 1 within 0.001",
                field=field,
                extra={"invalid": [], "suggestions": {}, "validStages": VALID_STAGES, "total": result.total},
            ),
            offending,
        )

    known_total = sum(result.weights.values())
    if known_total <= 0.0:
        return DistributionDecision(
            Outcome.MALFORMED,
            {},
            MalformedStageInputError(
                f"{field} has no known stage with a positive weight: nothing is left to use",
                field=field,
                extra={
                    "invalid": list(unknown_names),
                    "suggestions": {u.name: [s.value for s in u.suggestions] for u in result.unknown},
                    "validStages": VALID_STAGES,
                },
            ),
            offending_names=offending,
        )
    weights = {stage: weight / known_total for stage, weight in result.weights.items()}
    outcome = _ACCEPTED_UNKNOWN_OUTCOME[mode]
    if mode is ValidationMode.OFF:
        return DistributionDecision(outcome, weights, offending_names=offending)
    warnings = list(_alias_warnings(result.aliases, field))
    for unknown in result.unknown:
        warnings.append(
            ValidationWarning(
                ProblemCode.UNKNOWN_STAGE.value,
                field,
                f"{unknown.name!r} is not a known stage; it was ignored and the other weights were "
                "renormalized. It will be rejected when strict validation is enforced.",
                value=unknown.name,
                suggestions=unknown.suggestions,
            )
        )
    if result.has_sum_mismatch:
        warnings.append(
            ValidationWarning(
                ProblemCode.SUM_MISMATCH.value,
                field,
                f"weights sum to {result.total:.6g}, not 1; they were renormalized. This will be "
                "rejected when strict validation is enforced.",
            )
        )
    return DistributionDecision(
        outcome, weights, warnings=tuple(warnings), deprecated_input=True, offending_names=offending
    )


def validate_stage(
    raw: object,
    mode: ValidationMode,
    *,
    field: str = "stage",
    aliases_accepted: bool = True,
) -> StageDecision:
    """Decide what to do with one stage name under ``mode``; see the module docstring."""
    match = normalize_stage(raw)
    if not isinstance(raw, str) or match.reason in _MALFORMED_REASONS:
        return StageDecision(
            Outcome.MALFORMED,
            None,
            "",
            MalformedStageInputError(
                f"{field} must be a non-empty string of at most 64 characters",
                code="MALFORMED_STAGE",
                field=field,
                extra={"invalid": [], "validStages": VALID_STAGES},
            ),
        )
    if match.kind is MatchKind.CANONICAL:
        return StageDecision(Outcome.VALID, match.canonical, raw)
    stage = match.canonical
    if stage is not None:
        if not aliases_accepted and mode is ValidationMode.ENFORCE:
            return _rejected_stage(raw, field, (stage,), "is no longer accepted; send its canonical name")
        warnings = () if mode is ValidationMode.OFF else (_alias_warning(raw, stage, field),)
        return StageDecision(
            Outcome.NORMALIZED_ALIAS,
            stage,
            stage.value,
            warnings=warnings,
            deprecated_input=mode is not ValidationMode.OFF,
            offending_names=(raw,),
        )
    if mode is ValidationMode.ENFORCE:
        return _rejected_stage(raw, field, match.suggestions, "is not a known stage")
    stored = raw.strip()
    if mode is ValidationMode.OFF:
        return StageDecision(Outcome.UNKNOWN_ACCEPTED, None, stored, offending_names=(raw,))
    warning = ValidationWarning(
        ProblemCode.UNKNOWN_STAGE.value,
        field,
        f"{raw!r} is not a known stage; it was accepted as sent. It will be rejected when strict "
        "validation is enforced.",
        value=raw,
        suggestions=match.suggestions,
    )
    return StageDecision(
        Outcome.WOULD_REJECT,
        None,
        stored,
        warnings=(warning,),
        deprecated_input=True,
        offending_names=(raw,),
    )


_MALFORMED_REASONS = frozenset({UnknownReason.NOT_A_STRING, UnknownReason.EMPTY, UnknownReason.TOO_LONG})


# The same few deprecated spellings arrive again and again; their (immutable) warnings are built once.
@lru_cache(maxsize=1024)
def _alias_warning(name: str, stage: Stage, field: str) -> ValidationWarning:
    return ValidationWarning(
        ProblemCode.DEPRECATED_ALIAS.value,
        field,
        f"{name!r} is a deprecated spelling of {stage.value!r}; send {stage.value!r} instead.",
        value=name,
        normalized_to=stage,
    )


def _alias_warnings(aliases: tuple[Any, ...], field: str) -> tuple[ValidationWarning, ...]:
    return tuple(_alias_warning(alias.name, alias.canonical, field) for alias in aliases)


def _rejected_distribution(error: FundmodelError, offending: tuple[str, ...]) -> DistributionDecision:
    return DistributionDecision(Outcome.REJECTED, {}, error, deprecated_input=True, offending_names=offending)


def _rejected_stage(raw: str, field: str, suggestions: tuple[Stage, ...], reason: str) -> StageDecision:
    return StageDecision(
        Outcome.REJECTED,
        None,
        "",
        InvalidStageError(
            f"{field} {raw!r} {reason}",
            field=field,
            extra={
                "invalid": [raw],
                "suggestions": {raw: [stage.value for stage in suggestions]},
                "validStages": VALID_STAGES,
            },
        ),
        deprecated_input=True,
        offending_names=(raw,),
    )


def _names(names: tuple[str, ...] | list[str]) -> str:
    shown = ", ".join(repr(name[:64]) for name in names[:MAX_OFFENDING_NAMES])
    return shown + (
        f" and {len(names) - MAX_OFFENDING_NAMES} more" if len(names) > MAX_OFFENDING_NAMES else ""
    )
