"""The general path of :func:`~fundmodel.stages.parse_stage_distribution`: any input, judged entry by entry.

Also the reference the key plans (:mod:`~fundmodel.stages.key_plans`) are derived from, so the two paths
cannot disagree on anything that depends only on the keys. The steps: refuse what is not a usable object,
tally the entries in one pass (weights, unknown names, aliases, malformed keys and weights), then settle the
merges, the sum and the canonical order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, cast

from fundmodel.stages.distribution_result import (
    MAX_ENTRIES,
    AliasUse,
    DistributionResult,
    KeyNotAString,
    Merge,
    NotAnObject,
    Problem,
    ProblemCode,
    SumMismatch,
    TooManyEntries,
    UnknownStage,
    refused,
)
from fundmodel.stages.matching import MAX_STAGE_NAME_LENGTH
from fundmodel.stages.spellings import MALFORMED_KEY, Spelling, exact_spellings, other_spelling, spelling_of
from fundmodel.stages.taxonomy import STAGE_ORDER, Stage

BOUNDARY_MARGIN = 1e-12
"""Closer than this to the tolerance, the sum is recomputed exactly (see :func:`exact_total`)."""

# Measured on Python 3.11: tuple.__new__ skips a NamedTuple's Python-level constructor (~0.2 vs ~0.5 µs a
# result), and a module name is read ~10x faster than an enum member from its class.
_new_tuple = tuple.__new__
_INVALID_WEIGHT = ProblemCode.INVALID_WEIGHT
_MERGED_KEYS = ProblemCode.MERGED_KEYS


class _Tally(NamedTuple):
    """What one pass over the entries found, before merges, the sum and the order are settled."""

    weights: dict[Stage, float]
    unknown: list[UnknownStage]
    aliases: list[AliasUse]
    problems: list[Problem]
    total: float
    malformed: bool
    first_names: dict[Stage, str]
    """Per stage in ``weights``: the key that named it first."""
    repeats: list[tuple[Stage, str]]
    """Later keys naming a stage already in ``weights``, in input order."""
    rescan_merges: bool
    """A key with an invalid weight named a known stage: the merges are worked out by a second pass."""
    in_order: bool
    """``weights`` was filled in canonical order (else it is reordered)."""


def parse_entry_by_entry(
    mapping: object, divisor: float, upper: float, tolerance: float
) -> DistributionResult:
    """Judge ``mapping`` entry by entry (weights are valid in ``[0, upper]`` and divided by ``divisor``)."""
    if type(mapping) is not dict and not isinstance(mapping, Mapping):
        return refused(Problem(ProblemCode.NOT_AN_OBJECT, detail=NotAnObject(type(mapping).__name__)))
    if not mapping:
        return refused(Problem(ProblemCode.EMPTY))
    if len(mapping) > MAX_ENTRIES:
        return refused(Problem(ProblemCode.TOO_MANY_ENTRIES, detail=TooManyEntries(len(mapping))))
    return _settle(_tally(mapping, divisor, upper), mapping, divisor, tolerance)


def exact_total(mapping: Mapping[object, object], divisor: float) -> float:
    """The correctly rounded sum of the weights of a distribution with no malformed entry.

    Rounding in a running sum depends on key order; this close to the tolerance that could flip the verdict,
    so both paths decide on the correctly rounded sum, which does not.
    """
    return math.fsum(cast(float, weight) / divisor for weight in mapping.values())


def _tally(mapping: Mapping[Any, Any], divisor: float, upper: float) -> _Tally:
    """One pass over the entries, in input order (the hot loop of the general path: locals only)."""
    # A dict's keys are hashable by construction; another Mapping's need not be: look up strings only.
    lookup = exact_spellings().get if type(mapping) is dict else _lookup_strings_only(exact_spellings())
    weights: dict[Stage, float] = {}
    unknown: list[UnknownStage] = []
    aliases: list[AliasUse] = []
    problems: list[Problem] = []
    total = 0.0
    malformed = rescan_merges = False
    first_names: dict[Stage, str] = {}
    repeats: list[tuple[Stage, str]] = []
    in_order = True
    last_position = -1
    for name, raw_weight in mapping.items():
        spelling = lookup(name)
        if spelling is None:
            # The usual unlisted key (a plain, short str) goes straight to its memo: no Python call.
            if type(name) is str and len(name) <= MAX_STAGE_NAME_LENGTH:
                spelling = other_spelling(name)
            else:
                name, spelling = _judge_unusual_key(name)
        stage, position, alias_use, problem, suggestions = spelling
        if position == MALFORMED_KEY:
            problems.append(problem)  # type: ignore[arg-type]  # a malformed key's spelling has its problem
            malformed = True
            continue
        # Exact type checks: bool is an int subclass but never a weight; nor are str, None or containers.
        # An int is range-checked before the division so a huge int cannot overflow.
        weight_type = type(raw_weight)
        if (weight_type is float or weight_type is int) and 0.0 <= raw_weight <= upper:
            weight = raw_weight / divisor
            total += weight
        else:
            weight = None
            problems.append(_new_tuple(Problem, (_INVALID_WEIGHT, name, None, (), None)))
            malformed = True
            rescan_merges |= stage is not None  # left out of ``weights``, its stage may be named again
        if problem is not None:
            problems.append(problem)
            if stage is None:
                unknown.append(_new_tuple(UnknownStage, (name, suggestions, weight)))
                continue
            aliases.append(alias_use)  # type: ignore[arg-type]  # set for every known spelling with a problem
        if stage in weights:
            repeats.append((stage, name))
            if weight is not None:
                weights[stage] += weight
        elif weight is not None:
            weights[stage] = weight  # type: ignore[index]  # unknown names (stage None) continued above
            first_names[stage] = name  # type: ignore[index]
            in_order &= position > last_position
            last_position = position
    return _new_tuple(
        _Tally,
        (
            weights,
            unknown,
            aliases,
            problems,
            total,
            malformed,
            first_names,
            repeats,
            rescan_merges,
            in_order,
        ),
    )


def _judge_unusual_key(name: object) -> tuple[str, Spelling]:
    """A key that is not a plain ``str`` of at most the maximum length: its text and spelling, where the
    spelling of a malformed key (not a str, too long) has the position ``MALFORMED_KEY`` and its problem."""
    if not isinstance(name, str):
        return "", _malformed_key(Problem(ProblemCode.INVALID_KEY, detail=KeyNotAString(type(name).__name__)))
    text = str.__str__(name)  # a str subclass is judged by its text (whatever its own __str__ says)
    if len(text) > MAX_STAGE_NAME_LENGTH:
        return text, _malformed_key(Problem(ProblemCode.KEY_TOO_LONG, text[:MAX_STAGE_NAME_LENGTH]))
    return text, other_spelling(text)


def _malformed_key(problem: Problem) -> Spelling:
    return Spelling(None, MALFORMED_KEY, None, problem, ())


def _settle(
    tally: _Tally, mapping: Mapping[object, object], divisor: float, tolerance: float
) -> DistributionResult:
    """Merges, the sum check and the canonical order, once every entry has been tallied."""
    weights, unknown, aliases, problems, total, malformed, first_names, repeats, rescan_merges, in_order = (
        tally
    )
    merged: tuple[Merge, ...] = ()
    if rescan_merges:
        merged = _merges(mapping)
    elif repeats:
        merged = _merges_of(first_names, repeats)
    for stage, names in merged:
        problems.append(_new_tuple(Problem, (_MERGED_KEYS, names[0], stage, (), None)))
    if not malformed:
        if abs(abs(total - 1.0) - tolerance) < BOUNDARY_MARGIN:
            total = exact_total(mapping, divisor)
        if abs(total - 1.0) > tolerance:
            problems.append(Problem(ProblemCode.SUM_MISMATCH, detail=SumMismatch(total, tolerance)))
    if not in_order:
        weights = {stage: weights[stage] for stage in STAGE_ORDER if stage in weights}
    return _new_tuple(
        DistributionResult,
        (
            weights,
            tuple(unknown) if unknown else (),
            tuple(aliases) if aliases else (),
            merged,
            total,
            tuple(problems) if problems else (),
        ),
    )


def _lookup_strings_only(exact: Mapping[str, Spelling]) -> Callable[[object], Spelling | None]:
    def lookup(name: object) -> Spelling | None:
        return exact.get(name) if type(name) is str else None

    return lookup


def _merges_of(first_names: dict[Stage, str], repeats: list[tuple[Stage, str]]) -> tuple[Merge, ...]:
    merged_names: dict[Stage, list[str]] = {}
    for stage, name in repeats:
        merged_names.setdefault(stage, [first_names[stage]]).append(name)
    return tuple([_new_tuple(Merge, (stage, tuple(names))) for stage, names in merged_names.items()])


def _merges(mapping: Mapping[object, object]) -> tuple[Merge, ...]:
    """The stages named by more than one valid key, each with its keys in input order (the rare path: a key
    with an invalid weight is missing from the tally's first names)."""
    first_names: dict[Stage, str] = {}
    merged_names: dict[Stage, list[str]] = {}
    for name in mapping:
        if not isinstance(name, str) or len(name) > MAX_STAGE_NAME_LENGTH:
            continue
        name = str.__str__(name)
        stage = spelling_of(name).stage
        if stage is None:
            continue
        if stage in first_names:
            merged_names.setdefault(stage, [first_names[stage]]).append(name)
        else:
            first_names[stage] = name
    return tuple([Merge(stage, tuple(names)) for stage, names in merged_names.items()])


__all__ = ["BOUNDARY_MARGIN", "exact_total", "parse_entry_by_entry"]
