"""A mode change as the store will write it: who may change the mode (sources), and the checked request.

Validation lives here, apart from the store's I/O, so every write path (manual, Alertmanager, rollout)
refuses the same bad input with the same :class:`InvalidInputError` before a transaction is opened.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from fundmodel.errors import InvalidInputError
from fundmodel.validation import ModeState, ValidationMode

MAX_ACTOR_LENGTH = 100
MAX_REASON_LENGTH = 1000


class ModeChangeSource(StrEnum):
    """Which path changed the mode: the audit row's ``source`` and the mode-change metric's label."""

    MANUAL = "manual"
    ALERTMANAGER = "alertmanager"
    ROLLOUT = "rollout"

    __hash__ = str.__hash__


MODE_CHANGE_SOURCES = frozenset(ModeChangeSource)


@dataclass(frozen=True, slots=True)
class ModeWriteRequest:
    """A validated mode change, ready to be written."""

    mode: ValidationMode
    canary_percent: float
    actor: str
    reason: str
    source: str
    extra: dict[str, Any]
    canary_clients: frozenset[str] | None = None
    """``None``: keep the stored names."""
    aliases_rejected: bool | None = None
    """``None``: keep the stored flag."""

    def applied_to(self, old: ModeState) -> ModeState:
        """The state this request writes over ``old``."""
        return ModeState(
            self.mode,
            self.canary_percent,
            old.canary_clients if self.canary_clients is None else self.canary_clients,
            old.aliases_rejected if self.aliases_rejected is None else self.aliases_rejected,
        )

    @classmethod
    def checked(
        cls,
        mode: ValidationMode,
        canary_percent: float,
        *,
        actor: str,
        reason: str,
        source: str,
        extra: Mapping[str, Any] | None = None,
        canary_clients: Iterable[str] | None = None,
        aliases_rejected: bool | None = None,
    ) -> ModeWriteRequest:
        if source not in MODE_CHANGE_SOURCES:
            raise InvalidInputError(
                f"source must be one of {', '.join(sorted(MODE_CHANGE_SOURCES))}", field="source"
            )
        clients = None if canary_clients is None else _check_clients(canary_clients)
        checked = ModeState(ValidationMode(mode), _check_canary(canary_percent), clients or frozenset())
        return cls(
            mode=checked.mode,
            canary_percent=checked.canary_percent,
            actor=_check_text("actor", actor, MAX_ACTOR_LENGTH),
            reason=_check_text("reason", reason, MAX_REASON_LENGTH),
            source=source,
            extra=dict(extra or {}),
            canary_clients=clients,
            aliases_rejected=None if aliases_rejected is None else bool(aliases_rejected),
        )


def _check_clients(names: Iterable[str]) -> frozenset[str]:
    if isinstance(names, str):
        raise InvalidInputError("canary clients must be a list of API key names", field="canaryClients")
    checked = set()
    for name in names:
        text = name.strip() if isinstance(name, str) else ""
        if not text or len(text) > MAX_ACTOR_LENGTH or any(ord(ch) < 32 for ch in text):
            raise InvalidInputError(
                f"canary client {name!r} is not an API key name (1-{MAX_ACTOR_LENGTH} characters)",
                field="canaryClients",
            )
        checked.add(text)
    return frozenset(checked)


def _check_canary(value: float) -> float:
    number = float(value)
    if not math.isfinite(number) or not 0.0 <= number <= 100.0:
        raise InvalidInputError(
            f"canary percentage must be between 0 and 100, got {value!r}", field="canaryPercent"
        )
    return number


def _check_text(name: str, value: str, limit: int) -> str:
    text = value.strip()
    if not text:
        raise InvalidInputError(f"{name} is required", field=name)
    if len(text) > limit or any(ord(ch) < 32 and ch not in "\t" for ch in text):
        raise InvalidInputError(
            f"{name} must be at most {limit} characters without control characters", field=name
        )
    return text
