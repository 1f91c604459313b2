"""``parse_stage_distribution``: a JSON object of stage name -> weight in, a typed verdict out. Never raises.

Rules (the documented contract):

* The input must be a JSON object (``Mapping``) with 1 to :data:`MAX_ENTRIES` entries whose keys are
  strings of at most :data:`~fundmodel.stages.matching.MAX_STAGE_NAME_LENGTH` characters, with no NUL
  (U+0000) and no unpaired surrogate (``INVALID_KEY``: such text could be neither stored nor echoed).
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

import math
from collections.abc import Callable, Mapping
from enum import StrEnum
from functools import cache, lru_cache
from typing import Literal, NamedTuple, cast

from fundmodel.stages.alias_table import alias_table
from fundmodel.stages.matching import MAX_STAGE_NAME_LENGTH, has_unstorable_characters
from fundmodel.stages.normalizer import MatchKind, normalize_stage
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
    """What one spelling contributes to a distribution, prepared once per spelling.

    ``problem`` is set exactly for the spellings that need reporting: ``DEPRECATED_ALIAS`` for an alias (with
    ``alias_use``), ``UNKNOWN_STAGE`` for an unknown name (``stage`` is then ``None``).
    """

    stage: Stage | None
    position: int
    alias_use: AliasUse | None
    problem: Problem | None
    suggestions: tuple[Stage, ...]


def _known_spelling(name: str, stage: Stage, *, deprecated: bool) -> _Spelling:
    position = STAGE_ORDER.index(stage)
    if not deprecated:
        return _Spelling(stage, position, None, None, ())
    return _Spelling(
        stage, position, AliasUse(name, stage), Problem(ProblemCode.DEPRECATED_ALIAS, name, stage), ()
    )


@cache
def _exact_spellings() -> Mapping[str, _Spelling]:
    """The spellings of the taxonomy and the alias table, prepared once (read-only by contract: a plain dict
    because ``dict.get`` is about twice as fast as a ``MappingProxyType``'s on the hot path)."""
    exact: dict[str, _Spelling] = {}
    for stage, spellings in alias_table().aliases.items():
        for spelling in spellings:
            exact[spelling] = _known_spelling(spelling, stage, deprecated=True)
    for stage in STAGE_ORDER:
        exact[stage.value] = _known_spelling(stage.value, stage, deprecated=False)
    return exact


# Traffic repeats the same few variants and unknown names, and judging one costs the matching rule plus an
# edit-distance scan, so the prepared answers are memoised; the memo is bounded and holds only pure results.
@lru_cache(maxsize=4096)
def _other_spelling(name: str) -> _Spelling:
    """A spelling not written exactly as in the table (a ``str`` of at most the maximum length)."""
    match = normalize_stage(name)
    if match.canonical is None:
        problem = Problem(ProblemCode.UNKNOWN_STAGE, name, None, match.suggestions)
        return _Spelling(None, -1, None, problem, match.suggestions)
    return _known_spelling(name, match.canonical, deprecated=match.kind is MatchKind.ALIAS)


# Calling tuple.__new__ directly skips NamedTuple's Python-level constructor, a large share of a short call;
# and an Enum member read from its class costs more than a plain name (Python 3.11), hence the aliases.
_new_tuple = tuple.__new__
_MERGED_KEYS = ProblemCode.MERGED_KEYS
_BOUNDARY_MARGIN = 1e-12
_INVALID_WEIGHT = ProblemCode.INVALID_WEIGHT
_UNSTORABLE_KEY = "unstorable text"
"""``INVALID_KEY``'s detail for a string key holding NUL or an unpaired surrogate (else the key's type)."""


class _KeyPlan(NamedTuple):
    """Everything about a distribution that depends on its keys alone, worked out once per key tuple.

    Clients send the same few sets of stage names again and again with different weights, so the per-key
    work (lookups, alias and unknown reports, merges, canonical order) is done once per key tuple and a call
    only checks and adds up the weights.
    """

    entries: tuple[tuple[Stage | None, bool], ...]
    """Per key, in input order: its stage (``None`` when unknown) and whether it is the first key of it."""
    stages: tuple[Stage, ...]
    """The known stages, in canonical order (the keys of ``weights``)."""
    unknown_names: tuple[tuple[str, tuple[Stage, ...]], ...]
    """Per unknown key, in input order: its name and suggestions."""
    aliases: tuple[AliasUse, ...]
    merged: tuple[Merge, ...]
    problems: tuple[Problem, ...]
    """Every problem except the weight-dependent ones (``INVALID_WEIGHT``, ``SUM_MISMATCH``)."""


KEY_PLAN_CAPACITY = 4096


class _KeyPlans:
    """Plans for the key tuples seen at least twice: a bounded memo of pure results, like ``lru_cache``.

    A plan costs about as much as one entry-by-entry parse to build, so building one for a key tuple seen
    only once (a flood of never-repeated names) would double the cost of those calls; a tuple is planned on
    its second sighting instead. Each of the two tables is bounded and forgotten at once when full, which
    keeps a hit one ``dict.get`` (no recency bookkeeping on the hot path). Races between threads at worst
    build a plan twice: every plan for the same keys is the same.
    """

    def __init__(self, capacity: int = KEY_PLAN_CAPACITY) -> None:
        self._capacity = capacity
        self._sighted: dict[tuple[object, ...], None] = {}
        self.plans: dict[tuple[object, ...], _KeyPlan | None] = {}
        """Key tuple -> its plan, or ``None`` for key tuples with a malformed key."""

    def plan_on_second_sighting(self, keys: tuple[object, ...]) -> _KeyPlan | None:
        """The plan for ``keys`` when they were seen before (now planned); ``None`` on a first sighting."""
        if keys not in self._sighted:
            if len(self._sighted) >= self._capacity:
                self._sighted.clear()
            self._sighted[keys] = None
            return None
        del self._sighted[keys]
        plan = _key_plan(keys)
        if len(self.plans) >= self._capacity:
            self.plans.clear()
        self.plans[keys] = plan
        return plan

    def forget(self) -> None:
        self._sighted.clear()
        self.plans.clear()


@cache
def _key_plans() -> _KeyPlans:
    return _KeyPlans()


def _key_plan(keys: tuple[object, ...]) -> _KeyPlan | None:
    """The plan for a tuple of dict keys, or ``None`` when a key itself is malformed (not a string, too long).

    Derived from the entry-by-entry parser itself (with weights that are all valid), so the two paths cannot
    disagree on anything that depends only on the keys.
    """
    probe = _parse_entry_by_entry(dict.fromkeys(keys, 0.0), 1.0, 1.0, DEFAULT_TOLERANCE)
    if probe.is_malformed:
        return None
    exact = _exact_spellings()
    entries: list[tuple[Stage | None, bool]] = []
    unknown_names: list[tuple[str, tuple[Stage, ...]]] = []
    seen: set[Stage] = set()
    for key in keys:
        name = str.__str__(cast(str, key))
        spelling = exact.get(name) or _other_spelling(name)
        stage = spelling.stage
        if stage is None:
            entries.append((None, False))
            unknown_names.append((name, spelling.suggestions))
        else:
            entries.append((stage, stage not in seen))
            seen.add(stage)
    problems = tuple(problem for problem in probe.problems if problem.code is not ProblemCode.SUM_MISMATCH)
    return _KeyPlan(
        tuple(entries),
        tuple(stage for stage in STAGE_ORDER if stage in seen),
        tuple(unknown_names),
        probe.aliases,
        probe.merged,
        problems,
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
    if type(mapping) is not dict or not 0 < len(mapping) <= MAX_ENTRIES:
        return _parse_entry_by_entry(mapping, divisor, upper, tolerance)
    keys = tuple(mapping)
    plans = _key_plans()
    try:
        plan = plans.plans[keys]
    except KeyError:
        plan = plans.plan_on_second_sighting(keys)
    if plan is None:
        return _parse_entry_by_entry(mapping, divisor, upper, tolerance)

    # The fast path: every key is well-formed and known to the plan; only the weights are new.
    entries, stages, unknown_names, aliases, merged, problems = plan
    weights: dict[Stage, float] = dict.fromkeys(stages)  # type: ignore[assignment]  # all set below
    unknown_weights: list[float] | None = None
    total = 0.0
    for (stage, first), raw_weight in zip(entries, mapping.values(), strict=True):
        # Exact type checks, as in the entry-by-entry path (which reports a malformed weight).
        weight_type = type(raw_weight)
        if not ((weight_type is float or weight_type is int) and 0.0 <= raw_weight <= upper):
            return _parse_entry_by_entry(mapping, divisor, upper, tolerance)
        weight: float = raw_weight / divisor
        total += weight
        if stage is None:
            if unknown_weights is None:
                unknown_weights = [weight]
            else:
                unknown_weights.append(weight)
        elif first:
            weights[stage] = weight
        else:
            weights[stage] += weight
    deviation = abs(total - 1.0)
    if abs(deviation - tolerance) < _BOUNDARY_MARGIN:
        total = _exact_total(mapping, divisor)  # see the entry-by-entry path
        deviation = abs(total - 1.0)
    if deviation > tolerance:
        problems = (*problems, Problem(ProblemCode.SUM_MISMATCH, detail=f"{total:.6g}|{tolerance:g}"))
    unknown: tuple[UnknownStage, ...] = ()
    if unknown_weights is not None:
        unknown = tuple(
            [
                _new_tuple(UnknownStage, (name, suggestions, weight))
                for (name, suggestions), weight in zip(unknown_names, unknown_weights, strict=True)
            ]
        )
    return _new_tuple(DistributionResult, (weights, unknown, aliases, merged, total, problems))


def _parse_entry_by_entry(
    mapping: object, divisor: float, upper: float, tolerance: float
) -> DistributionResult:
    """The general path: any input, judged key by key (also the reference the key plans are derived from)."""
    if type(mapping) is not dict and not isinstance(mapping, Mapping):
        return _refused(Problem(ProblemCode.NOT_AN_OBJECT, detail=type(mapping).__name__))
    if not mapping:
        return _refused(Problem(ProblemCode.EMPTY))
    if len(mapping) > MAX_ENTRIES:
        return _refused(Problem(ProblemCode.TOO_MANY_ENTRIES, detail=str(len(mapping))))

    # A dict's keys are hashable by construction; another Mapping's need not be: look up strings only.
    exact = _exact_spellings()
    lookup = exact.get if type(mapping) is dict else _lookup_strings_only(exact)
    weights: dict[Stage, float] = {}
    unknown: list[UnknownStage] = []
    aliases: list[AliasUse] = []
    problems: list[Problem] = []
    total = 0.0
    malformed = False
    first_names: dict[Stage, str] = {}
    merged_names: dict[Stage, list[str]] | None = None
    merges_need_rescan = False
    in_order = True
    last_position = -1
    for name, raw_weight in mapping.items():
        # Exact type checks: bool is an int subclass but never a weight; nor are str, None or containers.
        # An int is range-checked before the division so a huge int cannot overflow.
        weight_type = type(raw_weight)
        if (weight_type is float or weight_type is int) and 0.0 <= raw_weight <= upper:
            weight: float | None = raw_weight / divisor
        else:
            weight = None
        spelling = lookup(name)
        if spelling is None:
            if not isinstance(name, str):
                problems.append(Problem(ProblemCode.INVALID_KEY, detail=type(name).__name__))
                malformed = True
                continue
            name = str.__str__(name)  # a str subclass is judged by its text
            if len(name) > MAX_STAGE_NAME_LENGTH:
                problems.append(Problem(ProblemCode.KEY_TOO_LONG, name[:MAX_STAGE_NAME_LENGTH]))
                malformed = True
                continue
            if has_unstorable_characters(name):
                # Not echoed as the key: it could not be written into a response or a log line.
                problems.append(Problem(ProblemCode.INVALID_KEY, detail=_UNSTORABLE_KEY))
                malformed = True
                continue
            spelling = _other_spelling(name)
        stage, position, alias_use, problem, suggestions = spelling
        if weight is None:
            problems.append(_new_tuple(Problem, (_INVALID_WEIGHT, name, None, (), "")))
            malformed = True
            # An entry left out of ``weights`` may still share its stage with another key.
            if stage is not None:
                merges_need_rescan = True
        else:
            total += weight
        if problem is not None:
            problems.append(problem)
            if stage is None:
                unknown.append(_new_tuple(UnknownStage, (name, suggestions, weight)))
                continue
            aliases.append(alias_use)  # type: ignore[arg-type]  # set for every known spelling with a problem
        if stage in weights:
            if weight is not None:
                weights[stage] += weight
            if merged_names is None:
                merged_names = {}
            merged_names.setdefault(stage, [first_names[stage]]).append(name)
        elif weight is not None:
            weights[stage] = weight  # type: ignore[index]  # unknown names (stage None) continued above
            first_names[stage] = name  # type: ignore[index]
            if position < last_position:
                in_order = False
            last_position = position

    merged: tuple[Merge, ...] = ()
    if merges_need_rescan:
        merged = _merges(mapping)
    elif merged_names is not None:
        merged = tuple([_new_tuple(Merge, (stage, tuple(names))) for stage, names in merged_names.items()])
    for stage, names in merged:
        problems.append(_new_tuple(Problem, (_MERGED_KEYS, names[0], stage, (), "")))
    if not malformed and abs(abs(total - 1.0) - tolerance) < _BOUNDARY_MARGIN:
        # Rounding in a running sum depends on key order; this close to the tolerance that could flip the
        # verdict, so decide on the correctly rounded sum, which does not.
        total = _exact_total(mapping, divisor)
    if not malformed and abs(total - 1.0) > tolerance:
        problems.append(Problem(ProblemCode.SUM_MISMATCH, detail=f"{total:.6g}|{tolerance:g}"))
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


def _exact_total(mapping: Mapping[object, object], divisor: float) -> float:
    """The correctly rounded sum of the weights of a distribution with no malformed entry."""
    return math.fsum(cast(float, weight) / divisor for weight in mapping.values())


def _lookup_strings_only(exact: Mapping[str, _Spelling]) -> Callable[[object], _Spelling | None]:
    def lookup(name: object) -> _Spelling | None:
        return exact.get(name) if type(name) is str else None

    return lookup


def _merges(mapping: Mapping[object, object]) -> tuple[Merge, ...]:
    """The stages named by more than one key (the rare path, taken only when a stage repeats)."""
    first_names: dict[Stage, str] = {}
    merged_names: dict[Stage, list[str]] = {}
    for name in mapping:
        if not isinstance(name, str):
            continue
        name = str.__str__(name)
        if len(name) > MAX_STAGE_NAME_LENGTH:
            continue
        stage = (_exact_spellings().get(name) or _other_spelling(name)).stage
        if stage is None:
            continue
        if stage in first_names:
            merged_names.setdefault(stage, [first_names[stage]]).append(name)
        else:
            first_names[stage] = name
    return tuple(Merge(stage, tuple(names)) for stage, names in merged_names.items())


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
        if problem.detail == _UNSTORABLE_KEY:
            return "a stage name contains NUL (U+0000) or an unpaired surrogate"
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
