"""The fast path of :func:`~fundmodel.stages.parse_stage_distribution`: key plans.

Clients send the same few sets of stage names again and again with different weights, so everything that
depends only on the keys (lookups, alias and unknown reports, merges, canonical order) is worked out once per
key tuple, a *plan*, and a call only checks and adds up the weights. Plans are derived from the entry-by-entry
parser itself, so the two paths cannot disagree on anything that depends only on the keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import NamedTuple

from fundmodel.stages.distribution_result import (
    DEFAULT_TOLERANCE,
    AliasUse,
    DistributionResult,
    Merge,
    Problem,
    ProblemCode,
    SumMismatch,
    UnknownStage,
)
from fundmodel.stages.entry_parser import BOUNDARY_MARGIN, exact_total, parse_entry_by_entry
from fundmodel.stages.spellings import spelling_of
from fundmodel.stages.taxonomy import STAGE_ORDER, Stage

KEY_PLAN_CAPACITY = 4096

# Measured on Python 3.11: tuple.__new__ skips a NamedTuple's Python-level constructor (~0.2 vs ~0.5 µs a
# result), a large share of a call that takes about 2.5 µs.
_new_tuple = tuple.__new__


class KeyPlan(NamedTuple):
    """Everything about a distribution that depends on its keys alone."""

    entries: tuple[Stage | None, ...]
    """Per key, in input order: its stage, or ``None`` when unknown."""
    zeros: dict[Stage, float]
    """The known stages in canonical order (the keys of ``weights``), each at ``-0.0``: the exact additive
    identity of floats, so adding every key's weight to it gives what assigning the first would. Copied,
    never modified."""
    unknown_names: tuple[tuple[str, tuple[Stage, ...]], ...]
    """Per unknown key, in input order: its name and suggestions."""
    aliases: tuple[AliasUse, ...]
    merged: tuple[Merge, ...]
    problems: tuple[Problem, ...]
    """Every problem except the weight-dependent ones (``INVALID_WEIGHT``, ``SUM_MISMATCH``)."""

    @property
    def stages(self) -> tuple[Stage, ...]:
        """The known stages, in canonical order (the keys of ``weights``)."""
        return tuple(self.zeros)


class KeyPlans:
    """Plans for the key tuples seen at least twice: a bounded memo of pure results, like ``lru_cache``.

    A plan costs about as much as one entry-by-entry parse to build, so building one for a key tuple seen
    only once (a flood of never-repeated names) would double the cost of those calls; a tuple is planned on
    its second sighting instead. Each of the two tables is bounded and forgotten at once when full, which
    keeps a hit one ``dict`` lookup (no recency bookkeeping on the hot path). Races between threads at worst
    build a plan twice: every plan for the same keys is the same.
    """

    def __init__(self, capacity: int = KEY_PLAN_CAPACITY) -> None:
        self._capacity = capacity
        self._sighted: dict[tuple[object, ...], None] = {}
        self.plans: dict[tuple[object, ...], KeyPlan | None] = {}
        """Key tuple -> its plan, or ``None`` for key tuples with a malformed key."""

    def plan_on_second_sighting(self, keys: tuple[object, ...]) -> KeyPlan | None:
        """The plan for ``keys`` when they were seen before (now planned); ``None`` on a first sighting."""
        if keys not in self._sighted:
            if len(self._sighted) >= self._capacity:
                self._sighted.clear()
            self._sighted[keys] = None
            return None
        del self._sighted[keys]
        plan = build_key_plan(keys)
        if len(self.plans) >= self._capacity:
            self.plans.clear()
        self.plans[keys] = plan
        return plan

    def forget(self) -> None:
        self._sighted.clear()
        self.plans.clear()


@cache
def key_plans() -> KeyPlans:
    """The process's plans (one memo, built on first use)."""
    return KeyPlans()


def build_key_plan(keys: tuple[object, ...]) -> KeyPlan | None:
    """The plan for a tuple of dict keys, or ``None`` when a key itself is malformed (not a string, too long).

    The reports come from the entry-by-entry parser run on the keys with weights that are all valid.
    """
    probe = parse_entry_by_entry(dict.fromkeys(keys, 0.0), 1.0, 1.0, DEFAULT_TOLERANCE)
    if probe.is_malformed:
        return None
    entries: list[Stage | None] = []
    unknown_names: list[tuple[str, tuple[Stage, ...]]] = []
    for key in keys:
        name = str.__str__(
            key
        )  # every key is a str (the probe is not malformed); a subclass judged by its text
        spelling = spelling_of(name)
        entries.append(spelling.stage)
        if spelling.stage is None:
            unknown_names.append((name, spelling.suggestions))
    return KeyPlan(
        tuple(entries),
        dict.fromkeys([stage for stage in STAGE_ORDER if stage in entries], -0.0),
        tuple(unknown_names),
        probe.aliases,
        probe.merged,
        tuple(problem for problem in probe.problems if problem.code is not ProblemCode.SUM_MISMATCH),
    )


def apply_key_plan(
    plan: KeyPlan, mapping: Mapping[object, float], divisor: float, upper: float, tolerance: float
) -> DistributionResult | None:
    """The result for a dict whose keys are ``plan``'s, or ``None`` when a weight is malformed (the general
    path reports it)."""
    entries, zeros, unknown_names, aliases, merged, problems = plan
    weights = zeros.copy()
    unknown_weights: list[float] | None = None
    total = 0.0
    for stage, raw_weight in zip(entries, mapping.values(), strict=True):
        # Exact type checks, as in the entry-by-entry path.
        weight_type = type(raw_weight)
        if not ((weight_type is float or weight_type is int) and 0.0 <= raw_weight <= upper):
            return None
        weight = raw_weight / divisor
        total += weight
        if stage is not None:
            weights[stage] += weight
        elif unknown_weights is None:
            unknown_weights = [weight]
        else:
            unknown_weights.append(weight)
    # The same sum check as the entry-by-entry path's, inline: this is the hot path.
    if abs(abs(total - 1.0) - tolerance) < BOUNDARY_MARGIN:
        total = exact_total(mapping, divisor)
    if abs(total - 1.0) > tolerance:
        problems = (*problems, Problem(ProblemCode.SUM_MISMATCH, detail=SumMismatch(total, tolerance)))
    unknown: tuple[UnknownStage, ...] = ()
    if unknown_weights is not None:
        unknown = tuple(
            [
                _new_tuple(UnknownStage, (name, suggestions, weight))
                for (name, suggestions), weight in zip(unknown_names, unknown_weights, strict=True)
            ]
        )
    return _new_tuple(DistributionResult, (weights, unknown, aliases, merged, total, problems))


__all__ = ["KEY_PLAN_CAPACITY", "KeyPlan", "KeyPlans", "apply_key_plan", "build_key_plan", "key_plans"]
