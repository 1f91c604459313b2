from fundmodel.stages import CANONICAL_NAMES, STAGE_LABELS, STAGE_ORDER, Stage


def test_canonical_order_is_the_documented_one() -> None:
    assert [stage.value for stage in STAGE_ORDER] == [
        "pre_seed",
        "seed",
        "series_a",
        "series_b",
        "series_c",
        "series_d",
        "growth",
        "late_stage",
    ]


def test_every_stage_has_a_label_and_position() -> None:
    assert set(STAGE_LABELS) == set(Stage)
    assert Stage.SERIES_D.label == "Series D+"
    assert [stage.position for stage in Stage] == list(range(len(Stage)))


def test_stage_is_a_string_that_hashes_like_its_value() -> None:
    assert Stage.SEED == "seed"
    assert str(Stage.SEED) == "seed"
    assert {Stage.SERIES_A: 1}["series_a"] == 1
    assert {stage.value for stage in Stage} == CANONICAL_NAMES
