"""The decision on the stage names used as the keys of per-stage overrides (``stageProfiles``).

Each key is judged like a single stage name (:func:`~fundmodel.validation.decisions.validate_stage`); what
differs is in the behaviour table of :mod:`fundmodel.validation.decisions`: an accepted unknown key is
dropped, and two keys naming the same stage are malformed in every mode.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from fundmodel.errors import InvalidStageError, MalformedStageInputError
from fundmodel.stages import MAX_ENTRIES, MAX_STAGE_NAME_LENGTH, Stage, normalize_stage
from fundmodel.validation.decision_types import (
    ACCEPTED_UNKNOWN_OUTCOME,
    MAX_OFFENDING_NAMES,
    StageDecision,
    StageKeysDecision,
    ValidationWarning,
    names_list,
    problem_extra,
)
from fundmodel.validation.decisions import validate_stage
from fundmodel.validation.mode import ValidationMode
from fundmodel.validation.outcome import Outcome

MAX_STAGE_KEYS = MAX_ENTRIES
"""More override keys than this are malformed (there are eight stages), like a too-long distribution."""


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
        message = f"{field} has {len(names)} entries; at most {MAX_STAGE_KEYS} are allowed"
        error = MalformedStageInputError(
            message, code="MALFORMED_STAGE", field=field, extra=problem_extra([])
        )
        return StageKeysDecision.malformed(error)
    judged = [
        (name, validate_stage(name, mode, field=_key_field(field, name), aliases_accepted=aliases_accepted))
        for name in names
    ]
    if any(decision.outcome is Outcome.MALFORMED for _, decision in judged):
        return StageKeysDecision.malformed(_malformed_keys_error(field))
    # Only strings get past the malformed check above.
    judged_keys = [(str(name), decision) for name, decision in judged]
    offending = tuple(name for _, decision in judged_keys for name in decision.offending_names)
    offending = offending[:MAX_OFFENDING_NAMES]
    stages = {key: decision.stage for key, decision in judged_keys if decision.stage is not None}
    duplicated = _duplicated_stages(stages)
    if duplicated:
        return StageKeysDecision.malformed(
            _duplicate_keys_error(duplicated, field), offending_names=offending
        )
    rejected = [(key, decision) for key, decision in judged_keys if decision.outcome is Outcome.REJECTED]
    if rejected:
        return StageKeysDecision.rejected(
            _rejected_keys_error(rejected, field), offending, tuple(key for key, _ in rejected)
        )
    return _accepted_keys(judged_keys, stages, mode, offending)


def _key_field(field: str, key: object) -> str:
    # The key names the field in warnings and problems; bounded, since an over-long key is the problem.
    return f"{field}.{key[:MAX_STAGE_NAME_LENGTH]}" if isinstance(key, str) else field


def _malformed_keys_error(field: str) -> MalformedStageInputError:
    # Not the single-field message: it would name (and echo) the over-long key as the field.
    return MalformedStageInputError(
        f"{field} keys must be stage names: non-empty strings of at most "
        f"{MAX_STAGE_NAME_LENGTH} characters, without NUL or unpaired surrogates",
        code="MALFORMED_STAGE",
        field=field,
        extra=problem_extra([]),
    )


def _duplicated_stages(stages: dict[str, Stage]) -> dict[Stage, tuple[str, ...]]:
    by_stage: dict[Stage, list[str]] = {}
    for key, stage in stages.items():
        by_stage.setdefault(stage, []).append(key)
    return {stage: tuple(keys) for stage, keys in by_stage.items() if len(keys) > 1}


def _duplicate_keys_error(duplicated: dict[Stage, tuple[str, ...]], field: str) -> MalformedStageInputError:
    spelled = "; ".join(f"{stage.value!r} ({names_list(same)})" for stage, same in duplicated.items())
    return MalformedStageInputError(
        f"{field} names the same stage more than once: {spelled}; send each stage once, "
        "by its canonical name",
        code="DUPLICATE_STAGE",
        field=field,
        extra=problem_extra(
            [key for same in duplicated.values() for key in same],
            {key: [stage.value] for stage, same in duplicated.items() for key in same},
        ),
    )


def _rejected_keys_error(rejected: list[tuple[str, StageDecision]], field: str) -> InvalidStageError:
    suggestions: dict[str, list[str]] = {}
    for _, decision in rejected:
        if decision.error is not None:
            suggestions.update(decision.error.extra.get("suggestions", {}))
    retired = [key for key, _ in rejected if normalize_stage(key).canonical is not None]
    unknown = [key for key, _ in rejected if key not in retired]
    reasons = []
    if unknown:
        reasons.append(f"names unknown stages: {names_list(unknown)}")
    if retired:
        reasons.append(
            f"uses names that are no longer accepted: {names_list(retired)}; send canonical stage names"
        )
    invalid = [key for key, _ in rejected]
    return InvalidStageError(
        f"{field} " + "; ".join(reasons), field=field, extra=problem_extra(invalid, suggestions)
    )


def _accepted_keys(
    judged: list[tuple[str, StageDecision]],
    stages: dict[str, Stage],
    mode: ValidationMode,
    offending: tuple[str, ...],
) -> StageKeysDecision:
    """Off and warn (or nothing to refuse): the most severe outcome of the keys; unknown keys dropped."""
    warnings: list[ValidationWarning] = []
    for _, decision in judged:
        if decision.outcome is Outcome.WOULD_REJECT:
            warnings.extend(_ignored_override(warning) for warning in decision.warnings)
        else:
            warnings.extend(decision.warnings)
    outcomes = {decision.outcome for _, decision in judged}
    if outcomes & {Outcome.UNKNOWN_ACCEPTED, Outcome.WOULD_REJECT}:
        outcome = ACCEPTED_UNKNOWN_OUTCOME[mode]
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
        uses=tuple(use for _, decision in judged for use in decision.uses),
    )


def _ignored_override(warning: ValidationWarning) -> ValidationWarning:
    # Unlike a single stage field, an unknown override key is not kept: nothing would ever read it.
    return replace(
        warning,
        message=f"{warning.value!r} is not a known stage; its override was ignored and the default stage "
        "profiles apply. It will be rejected when strict validation is enforced.",
    )


__all__ = ["MAX_STAGE_KEYS", "validate_stage_keys"]
