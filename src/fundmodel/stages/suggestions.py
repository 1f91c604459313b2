"""Suggestions for unknown stage names, ranked by edit distance to the accepted spellings.

Levenshtein distances come from rapidfuzz (C++): a scan of every accepted spelling takes microseconds, so
even a flood of never-seen names cannot make suggestions expensive.
"""

from __future__ import annotations

from functools import cache

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from fundmodel.stages.alias_table import alias_table
from fundmodel.stages.taxonomy import Stage

MAX_SUGGESTIONS = 3


def suggestion_limit(key: str) -> int:
    """How far a spelling may be from ``key`` and still be suggested: about a third of its length."""
    return max(1, min(4, len(key) // 3))


@cache
def _spelling_keys() -> tuple[tuple[str, ...], tuple[Stage, ...]]:
    by_key = alias_table().by_key
    return tuple(by_key), tuple(by_key.values())


def suggest_stages(key: str) -> tuple[Stage, ...]:
    """Up to three stages whose accepted spellings are closest to the matching key ``key``.

    Ties are broken by the canonical stage order, so the answer is deterministic.
    """
    keys, stages = _spelling_keys()
    matches = process.extract(
        key, keys, scorer=Levenshtein.distance, score_cutoff=suggestion_limit(key), limit=None
    )
    best: dict[Stage, int] = {}
    for _spelling, distance, index in matches:
        stage = stages[index]
        if distance < best.get(stage, distance + 1):
            best[stage] = int(distance)
    ranked = sorted(best, key=lambda stage: (best[stage], stage.position))
    return tuple(ranked[:MAX_SUGGESTIONS])
