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
)


def test_ladder_order_and_states() -> None:
    assert [p.value for p in LADDER] == ["off", "warn", "enforce-10", "enforce-50", "enforce-100"]
    assert [p.state.describe() for p in LADDER] == ["off", "warn", "enforce 10%", "enforce 50%", "enforce"]
    for lower, higher in itertools.pairwise(LADDER):
        assert higher.state.is_stricter_than(lower.state)
        assert next_phase(lower.state) is higher
    assert next_phase(Phase.ENFORCE_100.state) is None


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
    ],
)
def test_parse_phase(text: str, phase: Phase) -> None:
    assert parse_phase(text) is phase


@pytest.mark.parametrize("text", ["", "on", "enforce-25", "enforce 101", "warn-10"])
def test_parse_phase_rejects_unknown_names(text: str) -> None:
    with pytest.raises(InvalidInputError, match="choose one of off, warn, enforce-10"):
        parse_phase(text)
