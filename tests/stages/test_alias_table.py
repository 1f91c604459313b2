import pytest

from fundmodel.stages import Stage, matching_key
from fundmodel.stages.alias_table import AliasTableError, alias_table, parse_alias_table


def test_shipped_table_covers_every_stage_and_indexes_canonical_names() -> None:
    table = alias_table()
    assert set(table.aliases) == set(Stage)
    for stage in Stage:
        assert table.by_key[matching_key(stage.value)] is stage


def test_collisions_between_stages_are_rejected() -> None:
    text = '[seed]\naliases = ["early"]\n[series_a]\naliases = ["Early"]\n'
    with pytest.raises(AliasTableError, match="collides"):
        parse_alias_table(text)


def test_unknown_sections_are_rejected() -> None:
    with pytest.raises(AliasTableError, match="unknown stages: series_z"):
        parse_alias_table('[series_z]\naliases = ["z"]\n')


@pytest.mark.parametrize("bad", ['aliases = "seed round"', "aliases = [1]", 'aliases = [" "]'])
def test_malformed_entries_are_rejected(bad: str) -> None:
    with pytest.raises(AliasTableError):
        parse_alias_table(f"[seed]\n{bad}\n")
