import pytest
from hypothesis import given
from hypothesis import strategies as st

from fundmodel.stages import matching_key, matching_keys


@pytest.mark.parametrize(
    ("spelling", "key"),
    [
        ("Series A", "series a"),
        ("  series_a  ", "series a"),
        ("SERIES_A", "series a"),
        ("SeRiEs_a", "series a"),
        ("series\u00a0\u00a0a", "series a"),
        ("series\u2014a", "series a"),
        ("series \u2013 _ a", "series a"),
        ("series-c+", "series c+"),
        ("Series C+", "series c+"),
        ("", ""),
        (" _- ", ""),
    ],
)
def test_matching_rule_examples(spelling: str, key: str) -> None:
    assert matching_key(spelling) == key


@given(st.text(max_size=40))
def test_matching_key_is_idempotent(spelling: str) -> None:
    once = matching_key(spelling)
    assert matching_key(once) == once


@given(st.text(max_size=40))
def test_matching_key_has_single_inner_separators(spelling: str) -> None:
    key = matching_key(spelling)
    assert "  " not in key
    assert key == key.strip()
    assert "_" not in key
    assert "-" not in key


@pytest.mark.parametrize(
    ("spelling", "keys"),
    [
        ("seriesA", ("seriesa", "series a")),
        ("preSeed", ("preseed", "pre seed")),
        ("PreIPO", ("preipo", "pre ipo")),
        ("pre seeD", ("pre seed", "pre see d")),
        ("Series A", ("series a",)),
        ("SERIES_A", ("series a",)),
    ],
)
def test_camel_case_split_is_a_second_key(spelling: str, keys: tuple[str, ...]) -> None:
    assert matching_keys(spelling) == keys
