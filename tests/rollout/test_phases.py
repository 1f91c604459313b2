from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fundmodel.errors import InvalidInputError
from fundmodel.rollout.phases import LADDER, Phase, next_phase, parse_phase, phase_label, phase_of, same_phase
from fundmodel.validation import ModeState, ValidationMode

states = st.builds(
    ModeState,
    st.sampled_from(list(ValidationMode)),
    st.floats(min_value=0, max_value=100, allow_nan=False),
    st.frozensets(st.sampled_from(["acme", "globex", "initech"])),
    st.booleans(),
)


def test_ladder_starts_at_the_first_run_state_and_ends_with_the_sunset_step() -> None:
    assert [p.value for p in LADDER] == ["warn", "enforce-10", "enforce-50", "enforce-100", "sunset"]
    assert [p.state.describe() for p in LADDER] == [
        "warn",
        "enforce 10%",
        "enforce 50%",
        "enforce",
        "enforce (aliases rejected)",
    ]
    for lower, higher in itertools.pairwise([Phase.OFF, *LADDER]):
        assert higher.state.is_stricter_than(lower.state)
        assert next_phase(lower.state) is higher
    assert next_phase(Phase.SUNSET.state) is None
    assert Phase.SUNSET.label == "sunset (enforce 100%, aliases rejected)"


def test_named_canary_clients_are_not_a_ladder_position() -> None:
    named = ModeState(ValidationMode.ENFORCE, 10, frozenset({"acme"}))
    assert phase_of(named) is Phase.ENFORCE_10
    assert next_phase(named) is Phase.ENFORCE_50
    assert phase_label(named) == "enforce 10%"
    assert phase_of(ModeState(ValidationMode.ENFORCE, 10, aliases_rejected=True)) is None


def test_percentage_is_ignored_outside_enforce() -> None:
    downgraded = ModeState(ValidationMode.ENFORCE, 10).downgraded()
    assert downgraded == ModeState(ValidationMode.WARN, 10)
    assert phase_of(downgraded) is Phase.WARN
    assert next_phase(downgraded) is Phase.ENFORCE_10
    assert same_phase(downgraded, Phase.WARN.state)


def test_off_ladder_percentages_go_to_the_next_stricter_phase() -> None:
    assert phase_of(ModeState(ValidationMode.ENFORCE, 25)) is None
    assert phase_label(ModeState(ValidationMode.ENFORCE, 25)) == "enforce 25%"
    assert next_phase(ModeState(ValidationMode.ENFORCE, 25)) is Phase.ENFORCE_50
    assert next_phase(ModeState(ValidationMode.ENFORCE, 0)) is Phase.ENFORCE_10
    assert next_phase(ModeState(ValidationMode.ENFORCE, 99.5)) is Phase.ENFORCE_100


@given(states)
def test_next_phase_is_always_stricter_and_on_the_ladder(state: ModeState) -> None:
    target = next_phase(state)
    if target is None:
        assert state.mode is ValidationMode.ENFORCE
        assert state.canary_percent == 100
        assert state.aliases_rejected
    else:
        assert target in LADDER
        assert target.state.is_stricter_than(state)
        # never skips a ladder phase that is also stricter
        assert not any(
            p.state.is_stricter_than(state) and target.state.is_stricter_than(p.state) for p in LADDER
        )


@pytest.mark.parametrize(
    ("text", "phase"),
    [
        ("off", Phase.OFF),
        (" WARN ", Phase.WARN),
        ("enforce-10", Phase.ENFORCE_10),
        ("enforce 10%", Phase.ENFORCE_10),
        ("enforce_50", Phase.ENFORCE_50),
        ("enforce", Phase.ENFORCE_100),
        ("enforce-100", Phase.ENFORCE_100),
        ("Sunset", Phase.SUNSET),
    ],
)
def test_parse_phase(text: str, phase: Phase) -> None:
    assert parse_phase(text) is phase


@pytest.mark.parametrize("text", ["", "on", "enforce-25", "enforce 101", "warn-10"])
def test_parse_phase_rejects_unknown_names(text: str) -> None:
    with pytest.raises(
        InvalidInputError, match="choose one of warn, enforce-10, enforce-50, enforce-100, sunset"
    ):
        parse_phase(text)
