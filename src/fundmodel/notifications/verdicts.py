"""A ``rollout advance``'s gate verdict, posted to the webhooks (allowed, refused, or forced).

Called by the rollout controller after it decided: best effort in a transaction of its own (a failure to
enqueue is logged and never changes what ``advance`` does or answers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Engine

from fundmodel.notifications.events import GateLine, Verdict, gate_verdict_event
from fundmodel.notifications.outbox import publish

if TYPE_CHECKING:
    # Types only: fundmodel.rollout imports its controller, which imports this module.
    from fundmodel.rollout.status import RolloutStatus

__all__ = ["notify_advance", "notify_refused_advance"]


def notify_advance(
    engine: Engine,
    status: RolloutStatus,
    target_label: str,
    *,
    forced: bool,
    actor: str,
    reason: str | None,
    audit_id: int,
) -> None:
    """The step to ``target_label`` was written: its gates passed, or were overridden (``forced``)."""
    verdict = Verdict.FORCED if forced and not status.allowed else Verdict.ALLOWED
    _publish(engine, status, target_label, verdict, actor=actor, reason=reason, audit_id=audit_id)


def notify_refused_advance(engine: Engine, status: RolloutStatus, *, actor: str, reason: str | None) -> None:
    """``advance`` was refused; posted when the refusal is the gates' (not "already complete")."""
    if status.next_phase is None or status.allowed:
        return
    _publish(
        engine, status, status.next_phase.label, Verdict.REFUSED, actor=actor, reason=reason, audit_id=None
    )


def _publish(
    engine: Engine,
    status: RolloutStatus,
    target_label: str,
    verdict: Verdict,
    *,
    actor: str,
    reason: str | None,
    audit_id: int | None,
) -> None:
    gates = [
        GateLine(
            name=gate.name + (" (dry run)" if gate.dry_run else ""),
            status=gate.status.value,
            measured=gate.measured,
            threshold=gate.threshold,
        )
        for gate in status.gates
    ]
    publish(
        engine,
        gate_verdict_event(
            verdict=verdict,
            current=status.phase_label,
            target=target_label,
            gates=gates,
            actor=actor,
            reason=reason,
            evaluated_at=status.evaluated_at,
            audit_id=audit_id,
        ),
    )
