import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fundmodel.errors import InvalidInputError
from fundmodel.validation import Cohort, ModeState, ValidationMode


@pytest.mark.parametrize("mode", [ValidationMode.OFF, ValidationMode.WARN])
def test_non_enforce_modes_apply_to_everybody(mode: ValidationMode) -> None:
    client = ModeState(mode, 10.0).mode_for_client("anyone", salt="s")
    assert (client.mode, client.cohort) == (mode, Cohort.BASELINE)


def test_full_enforce_applies_to_everybody() -> None:
    client = ModeState(ValidationMode.ENFORCE).mode_for_client("anyone", salt="s")
    assert (client.mode, client.cohort) == (ValidationMode.ENFORCE, Cohort.CANARY)


@given(st.text(min_size=1, max_size=30), st.floats(min_value=0, max_value=99.99))
def test_canary_clients_are_enforced_and_the_rest_warned(client_id: str, percent: float) -> None:
    client = ModeState(ValidationMode.ENFORCE, percent).mode_for_client(client_id, salt="s")
    if client.cohort is Cohort.CANARY:
        assert client.mode is ValidationMode.ENFORCE
    else:
        assert client.mode is ValidationMode.WARN


@pytest.mark.parametrize("percent", [-1, 100.5, math.nan, math.inf, True, "10"])
def test_bad_canary_percentages_are_refused(percent: object) -> None:
    with pytest.raises(InvalidInputError, match="canary"):
        ModeState(ValidationMode.ENFORCE, percent)  # type: ignore[arg-type]


def test_downgrade_only_lowers_enforce() -> None:
    assert ModeState(ValidationMode.ENFORCE, 10).downgraded() == ModeState(ValidationMode.WARN, 10)
    assert ModeState(ValidationMode.WARN).downgraded() == ModeState(ValidationMode.WARN)
    assert ModeState(ValidationMode.OFF).downgraded() == ModeState(ValidationMode.OFF)


def test_strictness_order() -> None:
    off, warn = ModeState(ValidationMode.OFF), ModeState(ValidationMode.WARN)
    canary, full = ModeState(ValidationMode.ENFORCE, 10), ModeState(ValidationMode.ENFORCE)
    assert warn.is_stricter_than(off)
    assert canary.is_stricter_than(warn)
    assert full.is_stricter_than(canary)
    assert not canary.is_stricter_than(full)
    assert not warn.is_stricter_than(ModeState(ValidationMode.WARN, 50))
    assert canary.describe() == "enforce 10%"
    assert full.describe() == "enforce"
