"""Validation modes, the stored mode state and the effective mode of one client."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
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
    aliases_rejected: bool = False
    """The Sunset step: this client's deprecated aliases are rejected under ``enforce`` before the date."""


FULL_ROLLOUT = 100.0
MAX_CANARY_CLIENTS = 100


@dataclass(frozen=True, slots=True)
class ModeState:
    """The stored rollout state: a mode and, for ``enforce``, which clients it applies to.

    Under ``enforce`` with a canary percentage below 100, clients outside the canary cohort get ``warn``.
    Named canary clients (API key names) are in the cohort whatever the percentage: with a handful of
    client applications a hash percentage alone may hold none of them. ``aliases_rejected`` is the
    Sunset step: enforced clients' deprecated aliases are rejected as if the Sunset date had passed.
    The percentage, names and flag are kept when the mode is not ``enforce`` but have no effect there.
    """

    mode: ValidationMode
    canary_percent: float = FULL_ROLLOUT
    canary_clients: frozenset[str] = frozenset()
    aliases_rejected: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.mode, ValidationMode):
            raise InvalidInputError(f"unknown validation mode {self.mode!r}", field="mode")
        clients = self.canary_clients
        if not isinstance(clients, frozenset):
            object.__setattr__(self, "canary_clients", frozenset(clients))
        if len(self.canary_clients) > MAX_CANARY_CLIENTS or not all(
            isinstance(name, str) and name.strip() for name in self.canary_clients
        ):
            raise InvalidInputError(
                f"canary clients must be at most {MAX_CANARY_CLIENTS} non-empty API key names",
                field="canaryClients",
            )
        percent = self.canary_percent
        if isinstance(percent, bool) or not isinstance(percent, (int, float)):
            raise InvalidInputError("canary percentage must be a number", field="canaryPercent")
        if not (math.isfinite(percent) and 0.0 <= percent <= FULL_ROLLOUT):
            raise InvalidInputError(
                f"canary percentage must be between 0 and 100, got {percent!r}", field="canaryPercent"
            )

    @property
    def sorted_clients(self) -> list[str]:
        return sorted(self.canary_clients)

    def in_canary(self, client_id: str, *, salt: str, client_name: str | None = None) -> bool:
        """Whether ``client_id`` (API key ``client_name``) is enforced at this percentage and names."""
        return (
            self.canary_percent >= FULL_ROLLOUT
            or (client_name is not None and client_name in self.canary_clients)
            or in_canary_cohort(client_id, salt=salt, percent=self.canary_percent)
        )

    def mode_for_client(self, client_id: str, *, salt: str, client_name: str | None = None) -> ClientMode:
        """The effective mode of ``client_id``: sticky across requests, monotonic in the percentage;
        a named canary client (``client_name``) is always in the canary cohort."""
        if self.mode is not ValidationMode.ENFORCE:
            return ClientMode(self.mode, Cohort.BASELINE)
        if self.in_canary(client_id, salt=salt, client_name=client_name):
            return ClientMode(ValidationMode.ENFORCE, Cohort.CANARY, self.aliases_rejected)
        return ClientMode(ValidationMode.WARN, Cohort.BASELINE)

    def is_stricter_than(self, other: ModeState) -> bool:
        """Whether this state rejects more clients' bad input than ``other`` does (named canary clients
        choose who goes first; they do not count as a step)."""
        mine, theirs = self.mode.strictness, other.mode.strictness
        if mine != theirs:
            return mine > theirs
        if self.mode is not ValidationMode.ENFORCE:
            return False
        if self.canary_percent != other.canary_percent:
            return self.canary_percent > other.canary_percent
        return self.aliases_rejected and not other.aliases_rejected

    def downgraded(self) -> ModeState:
        """The state after an automatic downgrade: ``enforce`` (any percentage) becomes ``warn``."""
        if self.mode is ValidationMode.ENFORCE:
            return replace(self, mode=ValidationMode.WARN)
        return self

    def describe(self) -> str:
        if self.mode is not ValidationMode.ENFORCE:
            return self.mode.value
        text = "enforce"
        if self.canary_percent < FULL_ROLLOUT:
            text = f"enforce {self.canary_percent:g}%"
            if self.canary_clients:
                text += f" + {', '.join(self.sorted_clients)}"
        if self.aliases_rejected:
            text += " (aliases rejected)"
        return text
