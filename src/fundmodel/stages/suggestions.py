"""Suggestions for unknown stage names, ranked by edit distance to the accepted spellings."""

from __future__ import annotations

from fundmodel.stages.alias_table import alias_table
from fundmodel.stages.taxonomy import STAGE_ORDER, Stage

MAX_SUGGESTIONS = 3


def edit_distance(left: str, right: str, *, limit: int) -> int:
    """Levenshtein distance between two strings, or ``limit + 1`` as soon as it must exceed ``limit``."""
    if abs(len(left) - len(right)) > limit:
        return limit + 1
    previous = list(range(len(right) + 1))
    for i, left_char in enumerate(left, start=1):
        current = [i]
        for j, right_char in enumerate(right, start=1):
            cost = 0 if left_char == right_char else 1
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost))
        if min(current) > limit:
            return limit + 1
        previous = current
    return min(previous[-1], limit + 1)


def suggestion_limit(key: str) -> int:
    """How far a spelling may be from ``key`` and still be suggested: about a third of its length."""
    return max(1, min(4, len(key) // 3))


def suggest_stages(key: str) -> tuple[Stage, ...]:
    """Up to three stages whose accepted spellings are closest to the matching key ``key``.

    Ties are broken by the canonical stage order, so the answer is deterministic.
    """
    limit = suggestion_limit(key)
    best: dict[Stage, int] = {}
    for spelling_key, stage in alias_table().by_key.items():
        distance = edit_distance(key, spelling_key, limit=limit)
        if distance <= limit and distance < best.get(stage, limit + 1):
            best[stage] = distance
    ranked = sorted(best, key=lambda stage: (best[stage], STAGE_ORDER.index(stage)))
    return tuple(ranked[:MAX_SUGGESTIONS])
