"""Brownouts: scheduled windows during which the effective mode is ``enforce``, before a Sunset.

GitHub-style: a few 12/24/48 h windows before a removal break the clients that still rely on the
deprecated behaviour for a while, so they notice before the Sunset does it for good. The rule is pure:
the stored state, the scheduled windows and the current time give the state requests are validated
under (:func:`effective_state`). A brownout never lowers strictness: it only raises the enforced
canary percentage (to the window's, 100 by default), and the canary cohort is monotonic in the
percentage, so no client is ever validated more leniently inside a window than outside it.

:func:`check_new_window` holds what an operator may schedule: a window in the future, of a sensible
length, ending before the Sunset, overlapping no other window.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from fundmodel.errors import ConflictError, InvalidInputError
from fundmodel.validation.mode import FULL_ROLLOUT, ModeState, ValidationMode

MIN_BROWNOUT_DURATION = timedelta(seconds=1)
"""Short windows are for drills and tests; production brownouts last hours (GitHub: 12, 24, 48 h)."""
MAX_BROWNOUT_DURATION = timedelta(hours=72)
"""Longer than GitHub's longest brownout (48 h) with margin; a longer "brownout" is a mode change."""


@dataclass(frozen=True, slots=True)
class BrownoutWindow:
    """One scheduled window: ``[starts_at, ends_at)`` enforced at ``canary_percent``.

    ``ends_at`` is when the window stops applying: its scheduled end, or the moment it was cancelled or
    ended by an automatic downgrade (so an ended window is simply one whose end has passed).
    """

    window_id: int
    starts_at: datetime
    ends_at: datetime
    canary_percent: float = FULL_ROLLOUT

    def __post_init__(self) -> None:
        if self.starts_at.tzinfo is None or self.ends_at.tzinfo is None:
            raise InvalidInputError("brownout times must be timezone-aware", field="start")
        percent = self.canary_percent
        if isinstance(percent, bool) or not isinstance(percent, (int, float)):
            raise InvalidInputError("brownout canary percentage must be a number", field="canary")
        if not (math.isfinite(percent) and 0.0 < percent <= FULL_ROLLOUT):
            raise InvalidInputError(
                f"brownout canary percentage must be above 0 and at most 100, got {percent!r}",
                field="canary",
            )

    @property
    def duration(self) -> timedelta:
        return self.ends_at - self.starts_at

    def active_at(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def overlaps(self, starts_at: datetime, ends_at: datetime) -> bool:
        return self.starts_at < ends_at and starts_at < self.ends_at


def active_window(windows: Iterable[BrownoutWindow], now: datetime) -> BrownoutWindow | None:
    """The window in force at ``now`` (the widest, should several ever overlap), or ``None``."""
    active = [window for window in windows if window.active_at(now)]
    return max(active, key=lambda window: window.canary_percent) if active else None


def upcoming_windows(windows: Iterable[BrownoutWindow], now: datetime) -> list[BrownoutWindow]:
    """The windows in force or still to come at ``now``, earliest first."""
    return sorted((w for w in windows if w.ends_at > now), key=lambda w: (w.starts_at, w.window_id))


def next_start(windows: Iterable[BrownoutWindow], now: datetime) -> datetime | None:
    """When the next window starts after ``now`` (``None``: none scheduled)."""
    return min((w.starts_at for w in windows if w.starts_at > now), default=None)


def brownout_state(state: ModeState, window: BrownoutWindow) -> ModeState:
    """``state`` as raised by ``window``: enforce at the larger of the two percentages.

    The named canary clients and the Sunset flag of the stored state stay as they are (a named client is
    enforced first in a brownout too); a stored enforce step stricter than the window is kept unchanged.
    """
    if state.mode is ValidationMode.ENFORCE:
        if state.canary_percent >= window.canary_percent:
            return state
        return replace(state, canary_percent=window.canary_percent)
    # The Sunset flag only ever comes with a stored enforce step: a brownout does not reject aliases.
    return ModeState(ValidationMode.ENFORCE, window.canary_percent, state.canary_clients, False)


def effective_state(state: ModeState, windows: Sequence[BrownoutWindow], now: datetime) -> ModeState:
    """The state requests are validated under at ``now``: ``state`` raised by the window in force."""
    if not windows:  # the common case, on every request: no brownout scheduled
        return state
    window = active_window(windows, now)
    return state if window is None else brownout_state(state, window)


def check_new_window(
    existing: Iterable[BrownoutWindow],
    *,
    starts_at: datetime,
    duration: timedelta,
    canary_percent: float,
    now: datetime,
    sunset_at: datetime,
) -> BrownoutWindow:
    """The window an operator asks for, or the one-line reason it is refused.

    Refused (:class:`InvalidInputError`): a start in the past, a duration outside
    [:data:`MIN_BROWNOUT_DURATION`, :data:`MAX_BROWNOUT_DURATION`], a window ending after the Sunset (a
    brownout is a rehearsal of it), a percentage outside (0, 100]. Refused (:class:`ConflictError`): an
    overlap with a window still scheduled (one window at a time keeps every edge unambiguous).
    """
    if starts_at.tzinfo is None:
        raise InvalidInputError("the brownout start must carry a timezone (or be UTC)", field="start")
    if starts_at < now:
        raise InvalidInputError(
            f"the brownout start {starts_at.isoformat()} is in the past (now {now.isoformat()})",
            field="start",
        )
    if not MIN_BROWNOUT_DURATION <= duration <= MAX_BROWNOUT_DURATION:
        raise InvalidInputError(
            f"a brownout lasts between {_seconds(MIN_BROWNOUT_DURATION)} and "
            f"{_seconds(MAX_BROWNOUT_DURATION)}, got {_seconds(duration)}",
            field="duration",
        )
    window = BrownoutWindow(0, starts_at, starts_at + duration, canary_percent)
    if window.ends_at > sunset_at:
        raise InvalidInputError(
            f"the brownout would end at {window.ends_at.isoformat()}, after the Sunset "
            f"({sunset_at.isoformat()}): brownouts come before it",
            field="start",
        )
    for other in existing:
        if other.overlaps(window.starts_at, window.ends_at):
            raise ConflictError(
                f"the brownout overlaps brownout {other.window_id} "
                f"({other.starts_at.isoformat()} to {other.ends_at.isoformat()})",
            )
    return window


def _seconds(duration: timedelta) -> str:
    seconds = duration.total_seconds()
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    return f"{seconds:g}s"
