"""What one spelling of a stage name contributes to a distribution, prepared once per spelling.

Exact spellings (the taxonomy and the alias table) are answered from one prepared dict; any other string goes
through :func:`~fundmodel.stages.normalize_stage` once and is memoised (bounded).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache, lru_cache
from typing import NamedTuple

from fundmodel.stages.alias_table import alias_table
from fundmodel.stages.distribution_result import AliasUse, Problem, ProblemCode, UnstorableKey
from fundmodel.stages.matching import has_unstorable_characters
from fundmodel.stages.normalizer import MatchKind, normalize_stage
from fundmodel.stages.taxonomy import STAGE_ORDER, Stage

OTHER_SPELLINGS_MEMO_SIZE = 4096
UNKNOWN_NAME = -1
"""The position of an unknown name (its ``problem`` is ``UNKNOWN_STAGE``)."""
MALFORMED_KEY = -2
"""The position of a malformed key (here: text with NUL or an unpaired surrogate); ``problem`` says why."""


class Spelling(NamedTuple):
    """What one spelling contributes to a distribution.

    ``problem`` is set exactly for the spellings that need reporting: ``DEPRECATED_ALIAS`` for an alias (with
    ``alias_use``), ``UNKNOWN_STAGE`` for an unknown name (``stage`` is then ``None``).
    """

    stage: Stage | None
    position: int
    """The stage's index in the canonical order; ``UNKNOWN_NAME`` or ``MALFORMED_KEY`` when there is none."""
    alias_use: AliasUse | None
    problem: Problem | None
    suggestions: tuple[Stage, ...]


def _known_spelling(name: str, stage: Stage, *, deprecated: bool) -> Spelling:
    position = STAGE_ORDER.index(stage)
    if not deprecated:
        return Spelling(stage, position, None, None, ())
    return Spelling(
        stage, position, AliasUse(name, stage), Problem(ProblemCode.DEPRECATED_ALIAS, name, stage), ()
    )


@cache
def exact_spellings() -> Mapping[str, Spelling]:
    """The spellings of the taxonomy and the alias table, prepared once (read-only by contract: a plain dict
    because ``dict.get`` is about twice as fast as a ``MappingProxyType``'s on the hot path)."""
    exact: dict[str, Spelling] = {}
    for stage, spellings in alias_table().aliases.items():
        for spelling in spellings:
            exact[spelling] = _known_spelling(spelling, stage, deprecated=True)
    for stage in STAGE_ORDER:
        exact[stage.value] = _known_spelling(stage.value, stage, deprecated=False)
    return exact


# Traffic repeats the same few variants and unknown names, and judging one costs the matching rule plus an
# edit-distance scan, so the prepared answers are memoised; the memo is bounded and holds only pure results.
_UNSTORABLE_SPELLING = Spelling(
    None, MALFORMED_KEY, None, Problem(ProblemCode.INVALID_KEY, detail=UnstorableKey()), ()
)


@lru_cache(maxsize=OTHER_SPELLINGS_MEMO_SIZE)
def other_spelling(name: str) -> Spelling:
    """A spelling not written exactly as in the table (a ``str`` of at most the maximum length).

    Text no store or client can hold (NUL, an unpaired surrogate) is judged here too, so a repeated key
    costs one cache hit and no character scan."""
    if has_unstorable_characters(name):
        return _UNSTORABLE_SPELLING
    match = normalize_stage(name)
    if match.canonical is None:
        problem = Problem(ProblemCode.UNKNOWN_STAGE, name, None, match.suggestions)
        return Spelling(None, UNKNOWN_NAME, None, problem, match.suggestions)
    return _known_spelling(name, match.canonical, deprecated=match.kind is MatchKind.ALIAS)


def forget_spellings() -> None:
    """Empty the memos of non-exact spellings (benchmarks use it to time the cold path)."""
    other_spelling.cache_clear()


def spelling_of(name: str) -> Spelling:
    """Any valid stage-name key (a plain ``str`` of at most the maximum length, storable)."""
    return exact_spellings().get(name) or other_spelling(name)


__all__ = [
    "MALFORMED_KEY",
    "OTHER_SPELLINGS_MEMO_SIZE",
    "UNKNOWN_NAME",
    "Spelling",
    "exact_spellings",
    "forget_spellings",
    "other_spelling",
    "spelling_of",
]
