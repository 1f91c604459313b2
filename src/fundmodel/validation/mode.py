"""Validation modes, the stored mode state and the effective mode of one client."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from fundmodel.errors import InvalidInputError
from fundmodel.validation.cohort import in_canary_cohort


class ValidationMode(StrEnum):
    """How strictly stage input is validated, from least to most strict."""

    OFF = "off"
    WARN = "warn"
    ENFORCE = "enforce"

    __hash__ = str.__hash__

    @property
    def strictness(self) -> int:
        return _STRICTNESS[self]


_STRICTNESS: Mapping[ValidationMode, int] = MappingProxyType(
    {ValidationMode.OFF: 0, ValidationMode.WARN: 1, ValidationMode.ENFORCE: 2}
)


class Cohort(StrEnum):
    """Which side of the canary split a client is on (a metric label, so only two values)."""

    CANARY = "canary"
    BASELINE = "baseline"

    __hash__ = str.__hash__


@dataclass(frozen=True, slots=True)
class ClientMode:
    """The mode that applies to one client's requests, and its cohort."""

    mode: ValidationMode
    cohort: Cohort


FULL_ROLLOUT = 100.0


@dataclass(frozen=True, slots=True)
class ModeState:
    """The stored rollout state: a mode and, for ``enforce``, the percentage of clients it applies to.

    Under ``enforce`` with a canary percentage below 100, clients outside the canary cohort get ``warn``.
    The percentage is kept when the mode is not ``enforce`` but has no effect there.
    """

    mode: ValidationMode
    canary_percent: float = FULL_ROLLOUT

    def __post_init__(self) -> None:
        if not isinstance(self.mode, ValidationMode):
            raise InvalidInputError(f"unknown validation mode {self.mode!r}", field="mode")
        percent = self.canary_percent
        if isinstance(percent, bool) or not isinstance(percent, (int, float)):
            raise InvalidInputError("canary percentage must be a number", field="canaryPercent")
        if not (math.isfinite(percent) and 0.0 <= percent <= FULL_ROLLOUT):
            raise InvalidInputError(
                f"canary percentage must be between 0 and 100, got {percent!r}", field="canaryPercent"
            )

    def mode_for_client(self, client_id: str, *, salt: str) -> ClientMode:
        """The effective mode of ``client_id``: sticky across requests, monotonic in the percentage."""
        if self.mode is not ValidationMode.ENFORCE:
            return ClientMode(self.mode, Cohort.BASELINE)
        if self.canary_percent >= FULL_ROLLOUT or in_canary_cohort(
            client_id, salt=salt, percent=self.canary_percent
        ):
            return ClientMode(ValidationMode.ENFORCE, Cohort.CANARY)
        return ClientMode(ValidationMode.WARN, Cohort.BASELINE)

    def is_stricter_than(self, other: ModeState) -> bool:
        """Whether this state rejects more clients' bad input than ``other`` does."""
        mine, theirs = self.mode.strictness, other.mode.strictness
        if mine != theirs:
            return mine > theirs
        return self.mode is ValidationMode.ENFORCE and self.canary_percent > other.canary_percent

    def downgraded(self) -> ModeState:
        """The state after an automatic downgrade: ``enforce`` (any percentage) becomes ``warn``."""
        if self.mode is ValidationMode.ENFORCE:
            return ModeState(ValidationMode.WARN, self.canary_percent)
        return self

    def describe(self) -> str:
        if self.mode is ValidationMode.ENFORCE and self.canary_percent < FULL_ROLLOUT:
            return f"enforce {self.canary_percent:g}%"
        return self.mode.value
