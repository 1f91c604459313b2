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
weights sum != 1       renormalized, silent         renormalized + warning +    400 INVALID_STAGE_DISTRIBUTION
                       (unknown_accepted)           headers (would_reject)      (rejected)
malformed              422 (malformed)              422 (malformed)             422 (malformed)
=====================  ===========================  ==========================  =============================

A sum mismatch carries the deprecation headers like an unknown name: renormalizing a bad sum is the lenient
legacy behaviour that ``enforce`` retires (the "lenient-unknown-stages" deprecation), not a style issue.

For a single stage field (a company's ``stage``, a ``?stage=`` filter) an accepted unknown name is kept as
sent, trimmed (``stored_value``), since there are no weights to drop it from. Non-strings, empty and
over-long names are malformed there. A name holding NUL or an unpaired surrogate is malformed everywhere
(single field, override key, distribution key): such text can be neither stored nor echoed back. When a
distribution has no known stage with positive weight left after dropping unknown names, there is nothing
to use: 422 in every mode.

Stage names used as the keys of per-stage overrides (``stageProfiles``, :func:`validate_stage_keys`) follow
the same table, except that an accepted unknown key is dropped: there is no stage to apply its override to,
so the default profile applies (the warning says so). Two keys naming the same stage (``seed`` and ``Seed``)
are malformed (422 ``DUPLICATE_STAGE``) in every mode: overrides are partial objects with no natural way to
merge them, and silently keeping one would simulate something the client did not ask for.

Deprecated aliases stay accepted under ``enforce`` until the Sunset date; pass ``aliases_accepted=False``
after it, and they are rejected like unknown names (with their canonical name as the suggestion).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from fundmodel.errors import (
    FundmodelError,
    InvalidStageDistributionError,
    InvalidStageError,
    MalformedStageInputError,
)
from fundmodel.stages import (
    MAX_ENTRIES,
    MAX_STAGE_NAME_LENGTH,
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
MAX_STAGE_KEYS = MAX_ENTRIES
"""More override keys than this are malformed (there are eight stages), like a too-long distribution."""
VALID_STAGES: tuple[str, ...] = tuple(stage.value for stage in STAGE_ORDER)
_ACCEPTED_UNKNOWN_OUTCOME: Mapping[ValidationMode, Outcome] = MappingProxyType(
    {
        ValidationMode.OFF: Outcome.UNKNOWN_ACCEPTED,
        ValidationMode.WARN: Outcome.WOULD_REJECT,
    }
)


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
                f"{field} must not contain NUL (U+0000) or an unpaired surrogate"
                if match.reason is UnknownReason.UNSTORABLE_TEXT
                else f"{field} must be a non-empty string of at most {MAX_STAGE_NAME_LENGTH} characters",
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


@dataclass(frozen=True, slots=True)
class StageKeysDecision:
    """The decision on the stage names used as keys of per-stage overrides (``stageProfiles``)."""

    outcome: Outcome
    stages: dict[str, Stage]
    """Each kept key, as sent, with its canonical stage (unknown keys dropped in off/warn); empty on error."""
    error: FundmodelError | None = None
    warnings: tuple[ValidationWarning, ...] = ()
    deprecated_input: bool = False
    offending_names: tuple[str, ...] = ()

    @property
    def accepted(self) -> bool:
        return self.error is None


def validate_stage_keys(
    keys: Iterable[object],
    mode: ValidationMode,
    *,
    field: str = "stageProfiles",
    aliases_accepted: bool = True,
) -> StageKeysDecision:
    """Decide what to do with the keys of a per-stage override mapping under ``mode``.

    Each key is judged like a single stage name (:func:`validate_stage`, field ``<field>.<key>``); the
    mapping gets one outcome, the most severe of its keys. See the module docstring for what differs.
    """
    names = list(keys)
    if len(names) > MAX_STAGE_KEYS:
        return StageKeysDecision(
            Outcome.MALFORMED,
            {},
            MalformedStageInputError(
                f"{field} has {len(names)} entries; at most {MAX_STAGE_KEYS} are allowed",
                code="MALFORMED_STAGE",
                field=field,
                extra={"invalid": [], "validStages": VALID_STAGES},
            ),
        )
    judged = [
        (name, validate_stage(name, mode, field=_key_field(field, name), aliases_accepted=aliases_accepted))
        for name in names
    ]
    if any(decision.outcome is Outcome.MALFORMED for _, decision in judged):
        # Not the single-field message: it would name (and echo) the over-long key as the field.
        return StageKeysDecision(
            Outcome.MALFORMED,
            {},
            MalformedStageInputError(
                f"{field} keys must be stage names: non-empty strings of at most "
                f"{MAX_STAGE_NAME_LENGTH} characters, without NUL or unpaired surrogates",
                code="MALFORMED_STAGE",
                field=field,
                extra={"invalid": [], "validStages": VALID_STAGES},
            ),
        )
    offending = tuple(name for _, decision in judged for name in decision.offending_names)
    offending = offending[:MAX_OFFENDING_NAMES]
    # Only strings get past the malformed check above.
    stages = {str(name): decision.stage for name, decision in judged if decision.stage is not None}
    duplicated = _duplicated_stages(stages)
    if duplicated:
        spelled = "; ".join(f"{stage.value!r} ({_names(same)})" for stage, same in duplicated.items())
        return StageKeysDecision(
            Outcome.MALFORMED,
            {},
            MalformedStageInputError(
                f"{field} names the same stage more than once: {spelled}; send each stage once, "
                "by its canonical name",
                code="DUPLICATE_STAGE",
                field=field,
                extra={
                    "invalid": [key for same in duplicated.values() for key in same],
                    "suggestions": {key: [stage.value] for stage, same in duplicated.items() for key in same},
                    "validStages": VALID_STAGES,
                },
            ),
            offending_names=offending,
        )
    rejected = [(str(name), decision) for name, decision in judged if decision.outcome is Outcome.REJECTED]
    if rejected:
        return StageKeysDecision(
            Outcome.REJECTED,
            {},
            _rejected_keys(rejected, field),
            deprecated_input=True,
            offending_names=offending,
        )

    warnings: list[ValidationWarning] = []
    outcomes = {decision.outcome for _, decision in judged}
    for _, decision in judged:
        if decision.outcome is Outcome.WOULD_REJECT:
            warnings.extend(_ignored_override(warning) for warning in decision.warnings)
        else:
            warnings.extend(decision.warnings)
    if outcomes & {Outcome.UNKNOWN_ACCEPTED, Outcome.WOULD_REJECT}:
        outcome = _ACCEPTED_UNKNOWN_OUTCOME[mode]
    elif Outcome.NORMALIZED_ALIAS in outcomes:
        outcome = Outcome.NORMALIZED_ALIAS
    else:
        outcome = Outcome.VALID
    return StageKeysDecision(
        outcome,
        stages,
        warnings=tuple(warnings),
        deprecated_input=any(decision.deprecated_input for _, decision in judged),
        offending_names=offending,
    )


def _key_field(field: str, key: object) -> str:
    # The key names the field in warnings and problems; bounded, since an over-long key is the problem.
    return f"{field}.{key[:MAX_STAGE_NAME_LENGTH]}" if isinstance(key, str) else field


def _duplicated_stages(stages: dict[str, Stage]) -> dict[Stage, tuple[str, ...]]:
    by_stage: dict[Stage, list[str]] = {}
    for key, stage in stages.items():
        by_stage.setdefault(stage, []).append(key)
    return {stage: tuple(keys) for stage, keys in by_stage.items() if len(keys) > 1}


def _ignored_override(warning: ValidationWarning) -> ValidationWarning:
    # Unlike a single stage field, an unknown override key is not kept: nothing would ever read it.
    return replace(
        warning,
        message=f"{warning.value!r} is not a known stage; its override was ignored and the default stage "
        "profiles apply. It will be rejected when strict validation is enforced.",
    )


def _rejected_keys(rejected: list[tuple[str, StageDecision]], field: str) -> InvalidStageError:
    suggestions: dict[str, Any] = {}
    for _, decision in rejected:
        if decision.error is not None:
            suggestions.update(decision.error.extra.get("suggestions", {}))
    retired = [key for key, _ in rejected if normalize_stage(key).canonical is not None]
    unknown = [key for key, _ in rejected if key not in retired]
    reasons = []
    if unknown:
        reasons.append(f"names unknown stages: {_names(unknown)}")
    if retired:
        reasons.append(
            f"uses names that are no longer accepted: {_names(retired)}; send canonical stage names"
        )
    return InvalidStageError(
        f"{field} " + "; ".join(reasons),
        field=field,
        extra={
            "invalid": [key for key, _ in rejected],
            "suggestions": suggestions,
            "validStages": VALID_STAGES,
        },
    )


_MALFORMED_REASONS = frozenset(
    {
        UnknownReason.NOT_A_STRING,
        UnknownReason.EMPTY,
        UnknownReason.TOO_LONG,
        UnknownReason.UNSTORABLE_TEXT,
    }
)


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
