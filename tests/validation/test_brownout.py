"""The brownout rule: stored state + windows + now -> the state requests are validated under."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fundmodel.errors import ConflictError, InvalidInputError
from fundmodel.validation import ModeState, ValidationMode
from fundmodel.validation.brownout import (
    MAX_BROWNOUT_DURATION,
    BrownoutWindow,
    active_window,
    brownout_state,
    check_new_window,
    effective_state,
    next_start,
    upcoming_windows,
)

T0 = datetime(2027, 1, 12, 14, 0, tzinfo=UTC)
SUNSET = datetime(2027, 6, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
WARN = ModeState(ValidationMode.WARN)

states = st.builds(
    ModeState,
    st.sampled_from(list(ValidationMode)),
    st.floats(min_value=0, max_value=100),
    st.frozensets(st.sampled_from(["alpha", "beta", "gamma"]), max_size=2),
    st.booleans(),
)
percents = st.floats(min_value=0.01, max_value=100)
offsets = st.integers(min_value=-10_000, max_value=10_000).map(lambda s: timedelta(seconds=s))
windows = st.builds(
    lambda number, start, length, percent: BrownoutWindow(
        number, T0 + start, T0 + start + timedelta(seconds=length), percent
    ),
    st.integers(min_value=1, max_value=1000),
    offsets,
    st.integers(min_value=1, max_value=5000),
    percents,
)
client_ids = st.text(min_size=1, max_size=12)
client_names = st.one_of(st.none(), st.sampled_from(["alpha", "beta", "gamma", "delta"]))


def test_outside_every_window_the_stored_state_applies_unchanged() -> None:
    window = BrownoutWindow(1, T0, T0 + HOUR)
    assert effective_state(WARN, (window,), T0 - timedelta(microseconds=1)) is WARN
    assert effective_state(WARN, (window,), T0 + HOUR) is WARN  # the end is exclusive
    assert effective_state(WARN, (), T0) is WARN


def test_inside_a_window_warn_becomes_enforce_at_the_window_percentage() -> None:
    assert effective_state(WARN, (BrownoutWindow(1, T0, T0 + HOUR),), T0) == ModeState(ValidationMode.ENFORCE)
    canary = effective_state(WARN, (BrownoutWindow(1, T0, T0 + HOUR, 10.0),), T0 + HOUR / 2)
    assert canary == ModeState(ValidationMode.ENFORCE, 10.0)


def test_a_stricter_stored_step_is_kept_and_a_weaker_one_raised() -> None:
    sunset_step = ModeState(ValidationMode.ENFORCE, 100.0, frozenset({"alpha"}), aliases_rejected=True)
    window = BrownoutWindow(1, T0, T0 + HOUR, 50.0)
    assert brownout_state(sunset_step, window) is sunset_step
    canary = ModeState(ValidationMode.ENFORCE, 10.0, frozenset({"alpha"}))
    assert brownout_state(canary, window) == ModeState(ValidationMode.ENFORCE, 50.0, frozenset({"alpha"}))


def test_a_brownout_never_rejects_aliases_on_its_own() -> None:
    flagged_warn = ModeState(ValidationMode.WARN, 100.0, aliases_rejected=True)
    raised = brownout_state(flagged_warn, BrownoutWindow(1, T0, T0 + HOUR))
    assert raised == ModeState(ValidationMode.ENFORCE, 100.0)


@given(states, st.lists(windows, max_size=4), offsets, client_ids, client_names)
def test_a_brownout_never_lowers_any_clients_strictness(
    state: ModeState,
    scheduled: list[BrownoutWindow],
    offset: timedelta,
    client_id: str,
    client_name: str | None,
) -> None:
    now = T0 + offset
    stored = state.mode_for_client(client_id, salt="s", client_name=client_name)
    effective = effective_state(state, scheduled, now).mode_for_client(
        client_id, salt="s", client_name=client_name
    )
    assert effective.mode.strictness >= stored.mode.strictness
    # Aliases are rejected only where the stored Sunset step says so (a brownout may widen its cohort).
    assert state.aliases_rejected or not effective.aliases_rejected
    assert stored.aliases_rejected <= effective.aliases_rejected
    window = active_window(scheduled, now)
    if window is None:
        assert effective == stored
    elif window.canary_percent >= 100:
        # A full brownout enforces every client, whatever the stored state.
        assert effective.mode is ValidationMode.ENFORCE


@given(states, windows, offsets, client_ids)
def test_inside_a_window_its_canary_cohort_is_enforced(
    state: ModeState, window: BrownoutWindow, offset: timedelta, client_id: str
) -> None:
    now = window.starts_at + min(abs(offset), window.duration - timedelta(microseconds=1))
    effective = effective_state(state, (window,), now)
    at_window = ModeState(ValidationMode.ENFORCE, window.canary_percent)
    if at_window.in_canary(client_id, salt="s"):
        assert effective.mode_for_client(client_id, salt="s").mode is ValidationMode.ENFORCE
    assert not state.is_stricter_than(effective)


def test_the_widest_of_overlapping_windows_applies() -> None:
    narrow, wide = BrownoutWindow(1, T0, T0 + HOUR, 10.0), BrownoutWindow(2, T0, T0 + HOUR, 60.0)
    assert active_window([narrow, wide], T0) == wide


def test_upcoming_and_next_start() -> None:
    past = BrownoutWindow(1, T0 - 2 * HOUR, T0 - HOUR)
    now_on = BrownoutWindow(2, T0 - HOUR, T0 + HOUR)
    later = BrownoutWindow(3, T0 + 2 * HOUR, T0 + 3 * HOUR)
    assert upcoming_windows([later, past, now_on], T0) == [now_on, later]
    assert next_start([later, past, now_on], T0) == later.starts_at
    assert next_start([past], T0) is None


def _check(
    existing: list[BrownoutWindow], start: datetime, duration: timedelta, **kw: float
) -> BrownoutWindow:
    return check_new_window(
        existing,
        starts_at=start,
        duration=duration,
        canary_percent=kw.get("canary", 100.0),
        now=T0,
        sunset_at=SUNSET,
    )


def test_a_sensible_window_is_accepted() -> None:
    window = _check([], T0 + HOUR, timedelta(hours=12), canary=50.0)
    assert (window.starts_at, window.ends_at, window.canary_percent) == (T0 + HOUR, T0 + 13 * HOUR, 50.0)
    assert _check([], T0, MAX_BROWNOUT_DURATION).duration == MAX_BROWNOUT_DURATION


@pytest.mark.parametrize(
    ("start", "duration", "canary", "message"),
    [
        (T0 - timedelta(seconds=1), HOUR, 100.0, "in the past"),
        (T0, timedelta(0), 100.0, "lasts between"),
        (T0, -HOUR, 100.0, "lasts between"),
        (T0, MAX_BROWNOUT_DURATION + timedelta(seconds=1), 100.0, "lasts between"),
        (SUNSET - HOUR, 2 * HOUR, 100.0, "after the Sunset"),
        (T0, HOUR, 0.0, "canary percentage"),
        (T0, HOUR, 101.0, "canary percentage"),
    ],
)
def test_nonsense_windows_are_refused_with_a_reason(
    start: datetime, duration: timedelta, canary: float, message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        _check([], start, duration, canary=canary)


def test_a_naive_start_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="timezone"):
        _check([], datetime(2027, 1, 13), HOUR)


@pytest.mark.parametrize(
    ("start", "overlaps"),
    [
        (T0 + HOUR / 2, True),
        (T0 + 2.5 * HOUR, True),
        (T0 + 2 * HOUR, True),
        (T0, False),
        (T0 + 3 * HOUR, False),
    ],
)
def test_overlapping_windows_are_refused(start: datetime, overlaps: bool) -> None:
    existing = [BrownoutWindow(7, T0 + HOUR, T0 + 3 * HOUR)]
    if overlaps:
        with pytest.raises(ConflictError, match="overlaps brownout 7"):
            _check(existing, start, HOUR)
    else:
        assert _check(existing, start, HOUR).starts_at == start
