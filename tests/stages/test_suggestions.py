from hypothesis import given
from hypothesis import strategies as st

from fundmodel.stages import Stage
from fundmodel.stages.alias_table import alias_table
from fundmodel.stages.suggestions import MAX_SUGGESTIONS, suggest_stages, suggestion_limit


def reference_distance(left: str, right: str) -> int:
    rows = [[0] * (len(right) + 1) for _ in range(len(left) + 1)]
    for i in range(len(left) + 1):
        rows[i][0] = i
    for j in range(len(right) + 1):
        rows[0][j] = j
    for i in range(1, len(left) + 1):
        for j in range(1, len(right) + 1):
            cost = 0 if left[i - 1] == right[j - 1] else 1
            rows[i][j] = min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost)
    return rows[-1][-1]


@given(st.text(max_size=20))
def test_suggestions_are_the_closest_stages_within_the_limit(key: str) -> None:
    table = alias_table().by_key
    distance_of = {}
    for spelling, stage in table.items():
        distance = reference_distance(key, spelling)
        distance_of[stage] = min(distance, distance_of.get(stage, distance))
    limit = suggestion_limit(key)
    expected = sorted(
        (stage for stage, distance in distance_of.items() if distance <= limit),
        key=lambda stage: (distance_of[stage], stage.position),
    )[:MAX_SUGGESTIONS]
    assert suggest_stages(key) == tuple(expected)


def test_typos_suggest_the_intended_stage_first() -> None:
    assert suggest_stages("seris a")[0] is Stage.SERIES_A
    assert suggest_stages("sed")[0] is Stage.SEED
    assert suggest_stages("growht")[0] is Stage.GROWTH


def test_far_away_names_get_no_suggestions() -> None:
    assert suggest_stages("venture debt") == ()
    assert suggest_stages("a") == ()


@given(st.text(max_size=30))
def test_at_most_three_distinct_suggestions(key: str) -> None:
    suggestions = suggest_stages(key)
    assert len(suggestions) <= MAX_SUGGESTIONS
    assert len(set(suggestions)) == len(suggestions)
