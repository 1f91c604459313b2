import pytest
from hypothesis import given
from hypothesis import strategies as st

from fundmodel.stages import MatchKind, Stage, UnknownReason, has_unstorable_characters, normalize_stage
from fundmodel.stages.alias_table import alias_table

from .strategies import case_and_separator_variants, json_values

ISSUE_EXAMPLES = {
    Stage.PRE_SEED: ["pre-seed", "Pre Seed", "preseed", "preSeed", "angel"],
    Stage.SEED: ["Seed", "SEED", "seed stage", "seed round", " seed "],
    Stage.SERIES_A: ["Series A", "series-a", "seriesA", "SERIES_A", "round a"],
    Stage.SERIES_B: ["Series B", "series-b", "seriesB", "SERIES_B", "round b"],
    Stage.SERIES_C: ["Series C", "series-c+", "Series C+", "series_c_plus", "seriesC"],
    Stage.SERIES_D: ["series d+", "series-d-plus", "series_dplus", "Series E", "Series F"],
    Stage.GROWTH: ["growth stage", "growth equity", "expansion", "Growth"],
    Stage.LATE_STAGE: ["late stage", "late-stage", "latestage", "pre-ipo", "Pre IPO", "preipo"],
}


@pytest.mark.parametrize(
    ("stage", "spelling"),
    [(stage, spelling) for stage, spellings in ISSUE_EXAMPLES.items() for spelling in spellings],
)
def test_spellings_from_the_issue_are_aliases(stage: Stage, spelling: str) -> None:
    match = normalize_stage(spelling)
    assert match.kind is MatchKind.ALIAS
    assert match.canonical is stage
    assert match.is_deprecated


@pytest.mark.parametrize("stage", list(Stage))
def test_canonical_name_is_identity(stage: Stage) -> None:
    match = normalize_stage(stage.value)
    assert match == (MatchKind.CANONICAL, stage, (), None)
    assert normalize_stage(stage) == match  # a Stage member is judged by its text


def test_every_alias_in_the_table_maps_to_its_canonical() -> None:
    for stage, spellings in alias_table().aliases.items():
        for spelling in spellings:
            assert normalize_stage(spelling).canonical is stage, spelling


@given(st.sampled_from(list(Stage)).flatmap(lambda s: st.tuples(st.just(s), case_and_separator_variants(s))))
def test_case_and_separator_variants_map_to_the_canonical(pair: tuple[Stage, str]) -> None:
    stage, spelling = pair
    assert normalize_stage(spelling).canonical is stage


_ALL_ALIASES = [spelling for spellings in alias_table().aliases.values() for spelling in spellings]
_STAGE_SPELLINGS = (
    st.sampled_from([stage.value for stage in Stage])
    | st.sampled_from(_ALL_ALIASES)
    | st.sampled_from(list(Stage)).flatmap(case_and_separator_variants)
    | st.text(max_size=70)
)


@given(_STAGE_SPELLINGS)
def test_normalize_is_idempotent(raw: str) -> None:
    # Drawn mostly from real spellings (canonical, aliases, variants) so that the known branch is exercised.
    first = normalize_stage(raw)
    assert normalize_stage(raw) == first
    if first.canonical is not None:
        again = normalize_stage(first.canonical.value)
        assert again.kind is MatchKind.CANONICAL
        assert again.canonical is first.canonical
        assert again.suggestions == ()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("a", UnknownReason.NOT_IN_TAXONOMY),
        ("A", UnknownReason.NOT_IN_TAXONOMY),
        ("pre", UnknownReason.NOT_IN_TAXONOMY),
        ("late", UnknownReason.NOT_IN_TAXONOMY),
        ("series", UnknownReason.NOT_IN_TAXONOMY),
        ("seed-ish", UnknownReason.NOT_IN_TAXONOMY),
        ("", UnknownReason.EMPTY),
        ("   ", UnknownReason.EMPTY),
        ("\u00a0_-", UnknownReason.EMPTY),
        ("series a" + " " * 60, UnknownReason.TOO_LONG),
        ("x" * 65, UnknownReason.TOO_LONG),
        (None, UnknownReason.NOT_A_STRING),
        (1, UnknownReason.NOT_A_STRING),
        (True, UnknownReason.NOT_A_STRING),
        (["seed"], UnknownReason.NOT_A_STRING),
        ({"seed": 1}, UnknownReason.NOT_A_STRING),
        (b"seed", UnknownReason.NOT_A_STRING),
    ],
)
def test_unknown_inputs(raw: object, reason: UnknownReason) -> None:
    match = normalize_stage(raw)
    assert match.kind is MatchKind.UNKNOWN
    assert match.canonical is None
    assert match.reason is reason
    assert not match.is_known


def test_sixty_four_characters_is_still_inspected() -> None:
    assert normalize_stage(" " * 28 + "Series A" + " " * 28).canonical is Stage.SERIES_A


def test_unknown_names_carry_ranked_suggestions() -> None:
    match = normalize_stage("Seires A")
    assert match.kind is MatchKind.UNKNOWN
    assert match.suggestions[0] is Stage.SERIES_A
    assert len(match.suggestions) <= 3


@given(json_values)
def test_never_raises_on_any_json_value(raw: object) -> None:
    match = normalize_stage(raw)
    assert match.kind in set(MatchKind)
    assert (match.canonical is None) == (match.kind is MatchKind.UNKNOWN)


@pytest.mark.parametrize(
    "raw", ["se\x00ed", "\x00", "seed\x00", "Series A\x00", "\ud800", "seed\udfff", "é\ud83d"]
)
def test_nul_and_lone_surrogates_are_unstorable_text_not_an_unknown_name(raw: str) -> None:
    match = normalize_stage(raw)
    assert match.kind is MatchKind.UNKNOWN
    assert match.canonical is None
    assert match.reason is UnknownReason.UNSTORABLE_TEXT
    assert match.suggestions == ()  # nothing is guessed from such text


@pytest.mark.parametrize("raw", ["Série A", "seed 🌱", "seed\t", "pré-seed"])
def test_other_unicode_is_judged_by_the_matching_rule(raw: str) -> None:
    assert normalize_stage(raw).reason is not UnknownReason.UNSTORABLE_TEXT


@given(st.text())
def test_unstorable_exactly_when_it_cannot_be_stored_or_encoded(text: str) -> None:
    def storable(value: str) -> bool:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return "\x00" not in value

    assert has_unstorable_characters(text) is not storable(text)
