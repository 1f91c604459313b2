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

Stage names used as the keys of per-stage overrides (``stageProfiles``,
:func:`~fundmodel.validation.stage_keys.validate_stage_keys`) follow
the same table, except that an accepted unknown key is dropped: there is no stage to apply its override to,
so the default profile applies (the warning says so). Two keys naming the same stage (``seed`` and ``Seed``)
are malformed (422 ``DUPLICATE_STAGE``) in every mode: overrides are partial objects with no natural way to
merge them, and silently keeping one would simulate something the client did not ask for.

Deprecated aliases stay accepted under ``enforce`` until the Sunset date; pass ``aliases_accepted=False``
after it, and they are rejected like unknown names (with their canonical name as the suggestion).
"""

from __future__ import annotations

from functools import lru_cache

from fundmodel.errors import (
    InvalidStageDistributionError,
    InvalidStageError,
    MalformedStageInputError,
    StageValidationError,
)
from fundmodel.stages import (
    MAX_STAGE_NAME_LENGTH,
    AliasUse,
    DistributionResult,
    MatchKind,
    ProblemCode,
    Stage,
    StageMatch,
    UnknownReason,
    normalize_stage,
    parse_stage_distribution,
)
from fundmodel.validation.decision_types import (
    ACCEPTED_UNKNOWN_OUTCOME,
    MAX_OFFENDING_NAMES,
    VALID_STAGES,
    Decision,
    DistributionDecision,
    StageDecision,
    StageKeysDecision,
    StagePick,
    StageUse,
    UsageKind,
    ValidationWarning,
    names_list,
    problem_extra,
)
from fundmodel.validation.mode import ValidationMode
from fundmodel.validation.outcome import Outcome

_MALFORMED_REASONS = frozenset(
    {
        UnknownReason.NOT_A_STRING,
        UnknownReason.EMPTY,
        UnknownReason.TOO_LONG,
        UnknownReason.UNSTORABLE_TEXT,
    }
)


# --- a stage distribution -----------------------------------------------------------------------------------


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
        return _malformed_distribution(result, field)
    offending = _offending_names(result)
    if not aliases_accepted and mode is ValidationMode.ENFORCE and result.aliases:
        return DistributionDecision.rejected(
            _retired_aliases_error(result, field), offending, tuple(_names_to_report(result))
        )
    if result.ok:
        return _accepted_distribution(result, mode, field, offending)
    if mode is ValidationMode.ENFORCE:
        # The reasons of the 400: the unknown names, else the sum (accepted aliases are no reason).
        reasons = tuple(unknown.name for unknown in result.unknown) or ("",)
        return DistributionDecision.rejected(_strict_distribution_error(result, field), offending, reasons)
    return _renormalized_distribution(result, mode, field, offending)


def _offending_names(result: DistributionResult) -> tuple[str, ...]:
    if not result.unknown and not result.aliases:
        return ()  # the usual request: nothing to build
    return tuple(_names_to_report(result)[:MAX_OFFENDING_NAMES])


def _names_to_report(result: DistributionResult) -> list[str]:
    """Unknown names, then deprecated aliases, as sent."""
    return [unknown.name for unknown in result.unknown] + [alias.name for alias in result.aliases]


def _alias_uses(result: DistributionResult) -> tuple[StageUse, ...]:
    return _alias_uses_of(result.aliases)


@lru_cache(maxsize=1024)
def _alias_uses_of(aliases: tuple[AliasUse, ...]) -> tuple[StageUse, ...]:
    # Memoised (bounded, pure): clients repeat the same aliased key sets, and building the tuple on every
    # aliased request cost ~0.5 µs of the layer's ~15 µs (timeit, 3 aliases).
    return tuple([(UsageKind.ALIAS, alias.name) for alias in aliases])


def _renormalized_uses(result: DistributionResult) -> tuple[StageUse, ...]:
    """Off and warn: each alias, each dropped unknown name, and the sum when it missed 1."""
    unknown = tuple((UsageKind.UNKNOWN, entry.name) for entry in result.unknown)
    uses = _alias_uses(result) + unknown
    return (*uses, (UsageKind.SUM, "")) if result.has_sum_mismatch else uses


def _unknown_suggestions(result: DistributionResult) -> dict[str, list[str]]:
    return {unknown.name: [stage.value for stage in unknown.suggestions] for unknown in result.unknown}


def _malformed_distribution(result: DistributionResult, field: str) -> DistributionDecision:
    errors = [
        {"code": problem.code.value, "key": problem.key, "message": problem.message}
        for problem in result.problems
        if problem.code.is_malformed
    ]
    return DistributionDecision.malformed(
        MalformedStageInputError(
            f"{field} is malformed: {errors[0]['message']}",
            field=field,
            errors=errors,
            extra=problem_extra([error["key"] for error in errors if error["key"] is not None]),
        )
    )


def _retired_aliases_error(result: DistributionResult, field: str) -> InvalidStageError:
    """After the Sunset date under enforce: aliases are refused like unknown names."""
    suggestions = {alias.name: [alias.canonical.value] for alias in result.aliases}
    suggestions.update(_unknown_suggestions(result))
    invalid = _names_to_report(result)
    return InvalidStageError(
        f"{field} uses names that are no longer accepted: {names_list(invalid)}; send canonical stage names",
        field=field,
        extra=problem_extra(invalid, suggestions),
    )


def _strict_distribution_error(result: DistributionResult, field: str) -> StageValidationError:
    """Enforce: unknown names first; else the sum is wrong."""
    if result.unknown:
        suggestions = _unknown_suggestions(result)
        return InvalidStageError(
            f"{field} names unknown stages: {names_list(list(suggestions))}",
            field=field,
            extra=problem_extra(list(suggestions), suggestions),
        )
    return InvalidStageDistributionError(
        f"{field} weights sum to {result.total:.6g}; they must sum to 1 within 0.001",
        field=field,
        extra=problem_extra([], {}, total=result.total),
    )


def _accepted_distribution(
    result: DistributionResult, mode: ValidationMode, field: str, offending: tuple[str, ...]
) -> DistributionDecision:
    """No unknown name and a good sum: accepted as sent, with alias warnings outside ``off``."""
    if not result.aliases:
        return DistributionDecision(Outcome.VALID, result.weights)
    if mode is ValidationMode.OFF:
        return DistributionDecision(
            Outcome.NORMALIZED_ALIAS, result.weights, offending_names=offending, uses=_alias_uses(result)
        )
    return DistributionDecision(
        Outcome.NORMALIZED_ALIAS,
        result.weights,
        warnings=_alias_warnings(result.aliases, field),
        deprecated_input=True,
        offending_names=offending,
        uses=_alias_uses(result),
    )


def _renormalized_distribution(
    result: DistributionResult, mode: ValidationMode, field: str, offending: tuple[str, ...]
) -> DistributionDecision:
    """Off and warn: unknown names dropped and the known weights renormalized (nothing left is malformed)."""
    known_total = sum(result.weights.values())
    if known_total <= 0.0:
        error = MalformedStageInputError(
            f"{field} has no known stage with a positive weight: nothing is left to use",
            field=field,
            extra=problem_extra([unknown.name for unknown in result.unknown], _unknown_suggestions(result)),
        )
        return DistributionDecision.malformed(error, offending_names=offending)
    weights = {stage: weight / known_total for stage, weight in result.weights.items()}
    outcome = ACCEPTED_UNKNOWN_OUTCOME[mode]
    uses = _renormalized_uses(result)
    if mode is ValidationMode.OFF:
        return DistributionDecision(outcome, weights, offending_names=offending, uses=uses)
    warnings = _alias_warnings(result.aliases, field) + _renormalization_warnings(result, field)
    return DistributionDecision(
        outcome, weights, warnings=warnings, deprecated_input=True, offending_names=offending, uses=uses
    )


def _renormalization_warnings(result: DistributionResult, field: str) -> tuple[ValidationWarning, ...]:
    warnings = [
        ValidationWarning(
            ProblemCode.UNKNOWN_STAGE.value,
            field,
            f"{unknown.name!r} is not a known stage; it was ignored and the other weights were "
            "renormalized. It will be rejected when strict validation is enforced.",
            value=unknown.name,
            suggestions=unknown.suggestions,
        )
        for unknown in result.unknown
    ]
    if result.has_sum_mismatch:
        warnings.append(
            ValidationWarning(
                ProblemCode.SUM_MISMATCH.value,
                field,
                f"weights sum to {result.total:.6g}, not 1; they were renormalized. This will be "
                "rejected when strict validation is enforced.",
            )
        )
    return tuple(warnings)


# --- one stage name -----------------------------------------------------------------------------------------


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
        return StageDecision.malformed(_malformed_stage_error(match, field))
    if match.kind is MatchKind.CANONICAL:
        return StageDecision(Outcome.VALID, StagePick(match.canonical, raw))
    if match.canonical is not None:
        return _alias_stage(raw, match.canonical, mode, field, aliases_accepted)
    if mode is ValidationMode.ENFORCE:
        return _rejected_stage(raw, field, match.suggestions, "is not a known stage")
    return _accepted_unknown_stage(raw, match, mode, field)


def _malformed_stage_error(match: StageMatch, field: str) -> MalformedStageInputError:
    if match.reason is UnknownReason.UNSTORABLE_TEXT:
        message = f"{field} must not contain NUL (U+0000) or an unpaired surrogate"
    else:
        message = f"{field} must be a non-empty string of at most {MAX_STAGE_NAME_LENGTH} characters"
    return MalformedStageInputError(message, code="MALFORMED_STAGE", field=field, extra=problem_extra([]))


def _alias_stage(
    raw: str, stage: Stage, mode: ValidationMode, field: str, aliases_accepted: bool
) -> StageDecision:
    if not aliases_accepted and mode is ValidationMode.ENFORCE:
        return _rejected_stage(raw, field, (stage,), "is no longer accepted; send its canonical name")
    lenient = mode is ValidationMode.OFF
    return StageDecision(
        Outcome.NORMALIZED_ALIAS,
        StagePick(stage, stage.value),
        warnings=() if lenient else (_alias_warning(raw, stage, field),),
        deprecated_input=not lenient,
        offending_names=(raw,),
        uses=((UsageKind.ALIAS, raw),),
    )


def _accepted_unknown_stage(raw: str, match: StageMatch, mode: ValidationMode, field: str) -> StageDecision:
    """Off and warn: an unknown name is kept as sent, trimmed (there are no weights to drop it from)."""
    kept = StagePick(None, raw.strip())
    if mode is ValidationMode.OFF:
        return StageDecision(
            Outcome.UNKNOWN_ACCEPTED, kept, offending_names=(raw,), uses=((UsageKind.UNKNOWN, raw),)
        )
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
        kept,
        warnings=(warning,),
        deprecated_input=True,
        offending_names=(raw,),
        uses=((UsageKind.UNKNOWN, raw),),
    )


def _rejected_stage(raw: str, field: str, suggestions: tuple[Stage, ...], reason: str) -> StageDecision:
    suggested = {raw: [stage.value for stage in suggestions]}
    error = InvalidStageError(f"{field} {raw!r} {reason}", field=field, extra=problem_extra([raw], suggested))
    return StageDecision.rejected(error, (raw,), (raw,))


# --- alias warnings (a distribution, one stage name) --------------------------------------------------------


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


def _alias_warnings(aliases: tuple[AliasUse, ...], field: str) -> tuple[ValidationWarning, ...]:
    return tuple(_alias_warning(alias.name, alias.canonical, field) for alias in aliases)


__all__ = [
    "MAX_OFFENDING_NAMES",
    "VALID_STAGES",
    "Decision",
    "DistributionDecision",
    "StageDecision",
    "StageKeysDecision",
    "ValidationWarning",
    "validate_stage",
    "validate_stage_distribution",
]
