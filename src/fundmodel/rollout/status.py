"""What the rollout controller reports: where the rollout stands (with its JSON), and what a step did.

Plain values, no I/O: :class:`RolloutStatus` is assembled by :mod:`fundmodel.rollout.controller` and
rendered by the ``fundmodel rollout`` commands (text or ``--json``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from fundmodel.db.brownout_store import StoredBrownout
from fundmodel.db.mode_store import ModeChange, StoredMode
from fundmodel.rollout.client_gates import ClientExemption, ClientGateReport
from fundmodel.rollout.cohort_preview import CohortPreview
from fundmodel.rollout.gates import GateResult, GateStatus, overall
from fundmodel.rollout.phases import Phase

WARN_CAP_CHOICES: tuple[str, ...] = (
    "extend aliases: add the spellings still sent (see the stage_validation_offender log events) to "
    "src/fundmodel/stages/aliases.toml, release, and advance once the would-reject gates pass",
    "keep warn for named clients: record who, until when and why with `fundmodel rollout extend-warn "
    "--until DATE --client NAME --reason TEXT` (audited; moves this deadline), and chase those clients",
)


class Verdict(StrEnum):
    ALLOWED = "allowed"
    BLOCKED = "blocked"
    WARN_OVERDUE = "warn_overdue"
    COMPLETE = "complete"

    __hash__ = str.__hash__


@dataclass(frozen=True, slots=True)
class WarnCap:
    """``MAX_WARN_DURATION``: how long warn has lasted against its deadline."""

    limit: timedelta
    active_since: datetime | None
    deadline: datetime | None
    extended_until: datetime | None
    exceeded: bool
    choices: tuple[str, ...] = WARN_CAP_CHOICES


@dataclass(frozen=True, slots=True)
class ObservationReset:
    """The latest ``rollout reset-observation`` of the current phase."""

    at: datetime
    actor: str
    reason: str

    def describe(self) -> str:
        return f"observation restarted {self.at:%Y-%m-%d %H:%M} UTC by {self.actor}: {self.reason}"


@dataclass(frozen=True, slots=True)
class RolloutStatus:
    evaluated_at: datetime
    stored: StoredMode
    phase: Phase | None
    phase_label: str
    entered_at: datetime | None
    next_phase: Phase | None
    gates: tuple[GateResult, ...]
    warn_cap: WarnCap | None = None
    since_source: str = "audit"
    """Where ``entered_at`` comes from: ``audit`` (the change into this phase) or ``first_record`` (the
    store's oldest audited change, when no change into this phase is recorded)."""
    cohorts: tuple[CohortPreview, ...] = ()
    """The canary cohort of the current and the next step among the active clients."""
    observation_reset: ObservationReset | None = None
    client_gates: tuple[ClientGateReport, ...] = ()
    """The clients the next step's client gate counted (enforce 100 %, sunset): blocking and exempt."""
    exemptions: tuple[ClientExemption, ...] = ()
    """Every client exemption in force."""
    brownouts: tuple[StoredBrownout, ...] = ()
    """Brownout windows in force or to come (enforce for a while, whatever the phase), earliest first."""

    @property
    def blocking_gates(self) -> tuple[GateResult, ...]:
        """The gates holding the next step back (dry-run gates never do)."""
        return tuple(gate for gate in self.gates if gate.blocks)

    @property
    def time_in_phase(self) -> timedelta | None:
        return None if self.entered_at is None else self.evaluated_at - self.entered_at

    @property
    def gates_status(self) -> GateStatus:
        return overall(self.gates)

    @property
    def allowed(self) -> bool:
        return self.next_phase is not None and self.gates_status is GateStatus.PASS

    @property
    def verdict(self) -> Verdict:
        if self.warn_cap is not None and self.warn_cap.exceeded:
            return Verdict.WARN_OVERDUE
        if self.next_phase is None:
            return Verdict.COMPLETE
        return Verdict.ALLOWED if self.allowed else Verdict.BLOCKED

    def to_json(self) -> dict[str, Any]:
        time_in_phase = self.time_in_phase
        cap = self.warn_cap
        return {
            "evaluated_at": self.evaluated_at.isoformat(),
            "mode": self.stored.state.mode.value,
            "canary_percent": self.stored.state.canary_percent,
            "phase": self.phase.value if self.phase else None,
            "phase_label": self.phase_label,
            "mode_set": self.stored.version > 0,
            "canary_clients": self.stored.state.sorted_clients,
            "aliases_rejected": self.stored.state.aliases_rejected,
            "entered_at": self.entered_at.isoformat() if self.entered_at else None,
            "since_source": self.since_source,
            "time_in_phase_seconds": time_in_phase.total_seconds() if time_in_phase else None,
            "next_phase": self.next_phase.value if self.next_phase else None,
            "allowed": self.allowed,
            "verdict": self.verdict.value,
            "gates": [gate_json(gate) for gate in self.gates],
            "client_gates": [report.to_json() for report in self.client_gates],
            "exemptions": [exemption.to_json() for exemption in self.exemptions],
            "brownouts": [brownout.to_json(self.evaluated_at) for brownout in self.brownouts],
            "cohorts": [preview.to_json() for preview in self.cohorts],
            "observation_reset": None
            if self.observation_reset is None
            else {
                "at": self.observation_reset.at.isoformat(),
                "actor": self.observation_reset.actor,
                "reason": self.observation_reset.reason,
            },
            "warn_cap": None
            if cap is None
            else {
                "limit_seconds": cap.limit.total_seconds(),
                "active_since": cap.active_since.isoformat() if cap.active_since else None,
                "deadline": cap.deadline.isoformat() if cap.deadline else None,
                "extended_until": cap.extended_until.isoformat() if cap.extended_until else None,
                "exceeded": cap.exceeded,
                "choices": list(cap.choices) if cap.exceeded else [],
            },
        }


def gate_json(gate: GateResult) -> dict[str, Any]:
    """A gate as JSON: its fields, and ``blocks`` (whether it holds the step back; never for a dry run)."""
    document = asdict(gate)
    document["status"] = gate.status.value
    document["blocks"] = gate.blocks
    return document


@dataclass(frozen=True, slots=True)
class StepResult:
    change: ModeChange | None
    message: str
    gates: tuple[GateResult, ...] = field(default_factory=tuple)
