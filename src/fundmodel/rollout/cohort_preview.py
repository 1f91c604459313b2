"""Who the canary cohort holds: for a rollout state, which active clients are enforced and what share.

A fund-modelling API has a handful of client applications, so a hash percentage alone may hold none of
them (and a canary step would wait for a sample that never comes). The preview names them, per step, so
the operator sees an empty cohort before advancing and can name clients (``--canary-client``) instead.

The share is each client's share of recent *traffic*: the validations the usage ledger counted for it over
the gate window (``client_usage_window``), so one busy client in the canary weighs what it sends, not one
seventh. Only when the ledger holds no rows for the window does the preview fall back to the share of
active clients (keys used recently); ``share_basis`` says which. Pure: the API keys and the ledger are read
by :mod:`fundmodel.rollout.controller`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from fundmodel.validation import ModeState, ValidationMode
from fundmodel.validation.mode import FULL_ROLLOUT

__all__ = ["CohortPreview", "KnownClient", "ShareBasis", "preview_cohort"]

ShareBasis = Literal["traffic", "active_clients"]


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
    """What "active" and the share rest on, in words."""
    canary_step: bool = True
    """Whether the step enforces only part of the clients (``enforce`` below 100 %)."""
    share_basis: ShareBasis = "active_clients"
    """``traffic``: shares of the validations the usage ledger counted; ``active_clients``: the ledger
    holds no rows for the window, so each active client counts as one."""
    validations: tuple[tuple[str, int], ...] = ()
    """(client, validations counted in the window) for every active client, busiest first (``traffic``)."""

    @property
    def active(self) -> int:
        return len(self.canary) + len(self.baseline)

    @property
    def total_validations(self) -> int:
        return sum(count for _, count in self.validations)

    @property
    def share(self) -> float | None:
        """The canary's share of the traffic (or of the active clients, on that basis); ``None`` without
        any active client or traffic."""
        if self.share_basis == "traffic":
            total = self.total_validations
            if not total:
                return None
            in_canary = set(self.canary)
            return sum(count for name, count in self.validations if name in in_canary) / total
        return len(self.canary) / self.active if self.active else None

    def client_share(self, name: str) -> float | None:
        """One client's share of the traffic (``None`` on the active-clients basis)."""
        total = self.total_validations
        if self.share_basis != "traffic" or not total:
            return None
        return dict(self.validations).get(name, 0) / total

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
        counts = dict(self.validations)
        in_canary = set(self.canary)
        return {
            "step": self.step,
            "canary": list(self.canary),
            "baseline": list(self.baseline),
            "named": list(self.named),
            "active_clients": self.active,
            "canary_share": self.share,
            "share_basis": self.share_basis,
            "validations": self.total_validations if self.share_basis == "traffic" else None,
            "clients": [
                {
                    "client": name,
                    "in_canary": name in in_canary,
                    "validations": counts.get(name, 0) if self.share_basis == "traffic" else None,
                    "traffic_share": self.client_share(name),
                }
                for name in self._by_share()
            ],
            "canary_step": self.canary_step,
            "empty": self.empty,
            "basis": self.basis,
            "suggestion": self.suggestion(),
        }

    def _by_share(self) -> list[str]:
        counts = dict(self.validations)
        return sorted((*self.canary, *self.baseline), key=lambda name: (-counts.get(name, 0), name))


def preview_cohort(
    step: str,
    state: ModeState,
    clients: Sequence[KnownClient],
    *,
    salt: str,
    now: datetime,
    recent: timedelta,
    traffic: Mapping[str, int] | None = None,
) -> CohortPreview:
    """The cohort of ``state`` among the active clients: a key used in the last ``recent`` (a key never
    used since its last use was first recorded is not), or any client with ``traffic`` (client id ->
    validations the usage ledger counted over ``recent``; a client id that is no listed key, such as the
    anonymous development client, is shown by its id). Shares are of that traffic; without any, of the
    active clients."""
    counts = {client_id: count for client_id, count in (traffic or {}).items() if count > 0}
    by_id = {c.client_id: c for c in clients}
    active = [
        c
        for c in clients
        if c.client_id in counts or (c.last_used_at is not None and now - c.last_used_at <= recent)
    ]
    active += [KnownClient(client_id, client_id) for client_id in sorted(counts) if client_id not in by_id]
    days = f"{recent.total_seconds() / 86400:g} days"
    share_basis: ShareBasis = "traffic" if counts else "active_clients"
    if counts:
        basis = (
            f"clients with validations counted by the usage ledger or keys used in the last {days}; "
            f"share = share of the {sum(counts.values()):,} validations counted"
        )
    else:
        basis = (
            f"unrevoked API keys used in the last {days}; share = share of those clients "
            "(the usage ledger holds no validations for the window)"
        )
    enforced = state.mode is ValidationMode.ENFORCE
    canary = sorted(
        c.name for c in active if enforced and state.in_canary(c.client_id, salt=salt, client_name=c.name)
    )
    baseline = sorted(c.name for c in active if c.name not in set(canary))
    canary_step = enforced and state.canary_percent < FULL_ROLLOUT
    named = tuple(state.sorted_clients)
    validations = tuple(
        sorted(((c.name, counts.get(c.client_id, 0)) for c in active), key=lambda item: (-item[1], item[0]))
    )
    return CohortPreview(
        step,
        tuple(canary),
        tuple(baseline),
        named,
        basis,
        canary_step,
        share_basis,
        validations if counts else (),
    )
