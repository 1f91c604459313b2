"""Who the canary cohort holds: for a rollout state, which active clients are enforced and what share.

A fund-modelling API has a handful of client applications, so a hash percentage alone may hold none of
them (and a canary step would wait for a sample that never comes). The preview names them, per step, so
the operator sees an empty cohort before advancing and can name clients (``--canary-client``) instead.
Pure: the API keys are read by :mod:`fundmodel.rollout.controller`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fundmodel.validation import ModeState, ValidationMode
from fundmodel.validation.mode import FULL_ROLLOUT

__all__ = ["CohortPreview", "KnownClient", "preview_cohort"]


@dataclass(frozen=True, slots=True)
class KnownClient:
    """An unrevoked API key as the preview sees it (``client_id`` is what the cohort hash takes)."""

    name: str
    client_id: str
    last_used_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CohortPreview:
    """The canary cohort of one rollout step among the active clients."""

    step: str
    canary: tuple[str, ...]
    """Active clients enforced at this step (named ones included), sorted."""
    baseline: tuple[str, ...]
    """Active clients left in warn at this step."""
    named: tuple[str, ...]
    """The state's named canary clients (active or not)."""
    basis: str
    """What "active" and the share rest on (there are no per-client request counts, only last use)."""
    canary_step: bool = True
    """Whether the step enforces only part of the clients (``enforce`` below 100 %)."""

    @property
    def active(self) -> int:
        return len(self.canary) + len(self.baseline)

    @property
    def share(self) -> float | None:
        """Share of the active clients in the canary (``None`` without any active client)."""
        return len(self.canary) / self.active if self.active else None

    @property
    def empty(self) -> bool:
        return not self.canary

    def suggestion(self) -> str | None:
        if not self.canary_step or not self.empty or not self.active:
            return None
        return (
            "no active client is in the canary at this step: name some with "
            "`fundmodel rollout advance --canary-client NAME` (repeatable)"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "canary": list(self.canary),
            "baseline": list(self.baseline),
            "named": list(self.named),
            "active_clients": self.active,
            "canary_share": self.share,
            "canary_step": self.canary_step,
            "empty": self.empty,
            "basis": self.basis,
            "suggestion": self.suggestion(),
        }


def preview_cohort(
    step: str,
    state: ModeState,
    clients: Sequence[KnownClient],
    *,
    salt: str,
    now: datetime,
    recent: timedelta,
) -> CohortPreview:
    """The cohort of ``state`` among the clients used in the last ``recent`` (a key never used since its
    last use was first recorded is not active)."""
    active = [c for c in clients if c.last_used_at is not None and now - c.last_used_at <= recent]
    days = recent.total_seconds() / 86400
    basis = f"unrevoked API keys used in the last {days:g} days; share = share of those clients"
    enforced = state.mode is ValidationMode.ENFORCE
    canary = sorted(
        c.name for c in active if enforced and state.in_canary(c.client_id, salt=salt, client_name=c.name)
    )
    baseline = sorted(c.name for c in active if c.name not in set(canary))
    canary_step = enforced and state.canary_percent < FULL_ROLLOUT
    named = tuple(state.sorted_clients)
    return CohortPreview(step, tuple(canary), tuple(baseline), named, basis, canary_step)
