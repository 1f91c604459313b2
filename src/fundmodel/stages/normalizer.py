"""``normalize_stage``: one raw value in, a typed verdict out. Never raises."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from functools import cache, lru_cache
from typing import NamedTuple

from fundmodel.stages.alias_table import alias_table
from fundmodel.stages.matching import MAX_STAGE_NAME_LENGTH, has_unstorable_characters, matching_keys
from fundmodel.stages.suggestions import suggest_stages
from fundmodel.stages.taxonomy import Stage


class MatchKind(StrEnum):
    CANONICAL = "canonical"
    """The value is exactly a canonical stage name."""
    ALIAS = "alias"
    """A deprecated spelling of a canonical stage."""
    UNKNOWN = "unknown"
    """Not a stage: not a string, empty, too long, unstorable text, or no spelling in the alias table."""


class UnknownReason(StrEnum):
    NOT_A_STRING = "not_a_string"
    EMPTY = "empty"
    TOO_LONG = "too_long"
    UNSTORABLE_TEXT = "unstorable_text"
    """NUL or an unpaired surrogate: not a name anyone could have meant, nor one that can be stored."""
    NOT_IN_TAXONOMY = "not_in_taxonomy"


class StageMatch(NamedTuple):
    """The verdict on one raw stage value."""

    kind: MatchKind
    canonical: Stage | None
    suggestions: tuple[Stage, ...] = ()
    """For unknown values: up to 3 stages whose spellings are closest by edit distance, closest first."""
    reason: UnknownReason | None = None

    @property
    def is_known(self) -> bool:
        return self.canonical is not None

    @property
    def is_deprecated(self) -> bool:
        """True for aliases: accepted, but spelled in a way clients should stop using."""
        return self.kind is MatchKind.ALIAS


_NOT_A_STRING = StageMatch(MatchKind.UNKNOWN, None, (), UnknownReason.NOT_A_STRING)
_EMPTY = StageMatch(MatchKind.UNKNOWN, None, (), UnknownReason.EMPTY)
_TOO_LONG = StageMatch(MatchKind.UNKNOWN, None, (), UnknownReason.TOO_LONG)
_UNSTORABLE_TEXT = StageMatch(MatchKind.UNKNOWN, None, (), UnknownReason.UNSTORABLE_TEXT)
_SLOW_PATH_MEMO_SIZE = 4096


def normalize_stage(raw: object) -> StageMatch:
    """Classify ``raw`` as a canonical stage, an alias of one, or unknown (with suggestions).

    Exact spellings from the taxonomy and the alias table are answered from a prepared index; any other
    string goes through the matching rule (see :mod:`fundmodel.stages.matching`).
    """
    if type(raw) is not str:
        if not isinstance(raw, str):
            return _NOT_A_STRING
        raw = str.__str__(raw)  # a str subclass (e.g. a str Enum member) is judged by its text
    exact = _exact_spellings().get(raw)
    if exact is not None:
        return exact
    if len(raw) > MAX_STAGE_NAME_LENGTH:
        return _TOO_LONG
    return _match_by_key(raw)


@cache
def _exact_spellings() -> Mapping[str, StageMatch]:
    # Read-only by contract; a plain dict because its ``get`` is about twice as fast as a mapping proxy's.
    table = alias_table()
    exact: dict[str, StageMatch] = {}
    for stage, spellings in table.aliases.items():
        for spelling in spellings:
            exact[spelling] = StageMatch(MatchKind.ALIAS, stage)
    for stage in Stage:
        exact[stage.value] = StageMatch(MatchKind.CANONICAL, stage)
    return exact


# Traffic repeats the same few misspellings, and suggestions cost an edit-distance scan, so the
# verdicts on non-exact spellings are memoised; the memo is bounded and holds only pure results.
@lru_cache(maxsize=_SLOW_PATH_MEMO_SIZE)
def _match_by_key(raw: str) -> StageMatch:
    if has_unstorable_characters(raw):
        return _UNSTORABLE_TEXT
    keys = matching_keys(raw)
    if not keys[0]:
        return _EMPTY
    by_key = alias_table().by_key
    for key in keys:
        stage = by_key.get(key)
        if stage is not None:
            return StageMatch(MatchKind.ALIAS, stage)
    return StageMatch(MatchKind.UNKNOWN, None, suggest_stages(keys[-1]), UnknownReason.NOT_IN_TAXONOMY)
