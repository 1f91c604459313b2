"""The rollout ladder: ``warn -> enforce 10 % -> enforce 50 % -> enforce 100 % -> sunset``.

The ladder begins where a fresh store begins: ``warn``, the first-run state (``STAGE_VALIDATION_MODE``'s
default), recorded in the audit log by the first ``rollout status``. ``off`` is below the ladder: a store
set to ``off`` by hand (``fundmodel mode set off``) goes back up to ``warn`` behind the traffic gates.
``sunset`` is ``enforce 100 %`` with deprecated aliases rejected, so "complete" means nothing a client
sends today will break on the Sunset date.

Each phase is a stored :class:`~fundmodel.validation.ModeState`. A state set by hand outside the ladder
(say ``enforce 25 %``) is still placed on it: its next phase is the first ladder phase stricter than it.
Named canary clients choose who is enforced first; they are not a position on the ladder.
"""

from __future__ import annotations

import re
from enum import StrEnum

from fundmodel.errors import InvalidInputError
from fundmodel.validation import ModeState, ValidationMode
from fundmodel.validation.mode import FULL_ROLLOUT


class Phase(StrEnum):
    OFF = "off"
    WARN = "warn"
    ENFORCE_10 = "enforce-10"
    ENFORCE_50 = "enforce-50"
    ENFORCE_100 = "enforce-100"
    SUNSET = "sunset"

    __hash__ = str.__hash__

    @property
    def state(self) -> ModeState:
        return _STATES[self]

    @property
    def label(self) -> str:
        return _LABELS.get(self) or self.state.describe()


_STATES: dict[Phase, ModeState] = {
    Phase.OFF: ModeState(ValidationMode.OFF),
    Phase.WARN: ModeState(ValidationMode.WARN),
    Phase.ENFORCE_10: ModeState(ValidationMode.ENFORCE, 10.0),
    Phase.ENFORCE_50: ModeState(ValidationMode.ENFORCE, 50.0),
    Phase.ENFORCE_100: ModeState(ValidationMode.ENFORCE, FULL_ROLLOUT),
    Phase.SUNSET: ModeState(ValidationMode.ENFORCE, FULL_ROLLOUT, aliases_rejected=True),
}
_LABELS: dict[Phase, str] = {
    Phase.ENFORCE_100: "enforce 100%",
    Phase.SUNSET: "sunset (enforce 100%, aliases rejected)",
}
LADDER: tuple[Phase, ...] = tuple(phase for phase in Phase if phase is not Phase.OFF)
"""The phases ``rollout advance`` steps through; ``off`` is below it (see the module docstring)."""
CANARY_PHASES: frozenset[Phase] = frozenset({Phase.ENFORCE_10, Phase.ENFORCE_50})


def phase_of(state: ModeState) -> Phase | None:
    """The ladder phase a stored state is exactly at (``None`` for an off-ladder enforce percentage).

    The canary percentage is ignored outside ``enforce``: ``warn`` after a downgrade from ``enforce 10 %``
    keeps 10 in the store but is plainly the ``warn`` phase.
    """
    if state.mode is ValidationMode.OFF:
        return Phase.OFF
    if state.mode is ValidationMode.WARN:
        return Phase.WARN
    for phase in (Phase.ENFORCE_10, Phase.ENFORCE_50, Phase.ENFORCE_100, Phase.SUNSET):
        if same_phase(state, phase.state):
            return phase
    return None


def same_phase(a: ModeState, b: ModeState) -> bool:
    """Whether two stored states are the same rollout position (percentage ignored outside enforce)."""
    if a.mode is not b.mode:
        return False
    return a.mode is not ValidationMode.ENFORCE or (
        a.canary_percent == b.canary_percent and a.aliases_rejected == b.aliases_rejected
    )


def phase_label(state: ModeState) -> str:
    phase = phase_of(state)
    return phase.label if phase is not None else state.describe()


def next_phase(state: ModeState) -> Phase | None:
    """The first ladder phase stricter than ``state`` (``None`` at ``sunset``)."""
    for phase in LADDER:
        if phase.state.is_stricter_than(state) and not same_phase(phase.state, state):
            return phase
    return None


_ENFORCE_PERCENT = re.compile(r"^enforce[\s_-]*(\d{1,3})\s*%?$")


def parse_phase(text: str) -> Phase:
    """``warn``, ``enforce-10``, ``enforce 50%``, ``enforce`` (= 100 %), ``sunset`` and the like."""
    raw = text.strip().lower()
    if raw in ("off", "warn", "sunset"):
        return Phase(raw)
    if raw == "enforce":
        return Phase.ENFORCE_100
    match = _ENFORCE_PERCENT.match(raw)
    if match:
        wanted = float(match.group(1))
        for phase in (Phase.ENFORCE_10, Phase.ENFORCE_50, Phase.ENFORCE_100):
            if phase.state.canary_percent == wanted:
                return phase
    choices = ", ".join(phase.value for phase in LADDER)
    raise InvalidInputError(f"unknown rollout phase {text!r}; choose one of {choices}", field="phase")
