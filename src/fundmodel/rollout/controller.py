"""The rollout controller: where the rollout stands, whether the next step is allowed, and moving it.

Every step is a mode-store change (source ``rollout``) with actor, reason and the gate evidence in the
audit row. Advancing is a compare-and-swap on the state the gates were evaluated against, so an
automatic downgrade that lands in between is never overwritten. Which gates guard a step, and how they
judge the evidence gathered here, is the pure :mod:`fundmodel.rollout.gate_catalogue`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import Engine

from fundmodel.db.mode_store import ModeChange, ModeStore, ModeWriteRefused, StoredMode
from fundmodel.errors import ConflictError, InvalidInputError, OperationRefusedError
from fundmodel.rollout.config import GateConfig
from fundmodel.rollout.data_checks import DataFacts
from fundmodel.rollout.gate_catalogue import (
    CanaryEvidence,
    WarnEvidence,
    canary_gates,
    canary_window,
    traffic_gates,
    warn_gates,
)
from fundmodel.rollout.gates import GateResult, GateStatus, overall
from fundmodel.rollout.history import (
    ROLLOUT_SOURCE,
    PhaseTimes,
    auto_downgrades_since,
    latest_warn_extension,
    phase_times,
)
from fundmodel.rollout.measurements import PrometheusMeasurements
from fundmodel.rollout.phases import Phase, next_phase, phase_label, phase_of
from fundmodel.validation import ModeState, ValidationMode

WARN_CAP_CHOICES: tuple[str, ...] = (
    "extend aliases: add the spellings still sent (see the stage_validation_offender log events) to "
    "src/fundmodel/stages/aliases.toml, release, and advance once the would-reject gates pass",
    "keep warn for named clients: record who, until when and why with `fundmodel rollout extend-warn "
    "--until DATE --client NAME --reason TEXT` (audited; moves this deadline), and chase those clients",
)


class DataChecks(Protocol):
    def measure(self, now: datetime) -> DataFacts: ...


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
class RolloutStatus:
    evaluated_at: datetime
    stored: StoredMode
    phase: Phase | None
    phase_label: str
    entered_at: datetime | None
    next_phase: Phase | None
    gates: tuple[GateResult, ...]
    warn_cap: WarnCap | None = None

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
            "entered_at": self.entered_at.isoformat() if self.entered_at else None,
            "time_in_phase_seconds": time_in_phase.total_seconds() if time_in_phase else None,
            "next_phase": self.next_phase.value if self.next_phase else None,
            "allowed": self.allowed,
            "verdict": self.verdict.value,
            "gates": [gate_json(gate) for gate in self.gates],
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
    document = asdict(gate)
    document["status"] = gate.status.value
    return document


@dataclass(frozen=True, slots=True)
class StepResult:
    change: ModeChange | None
    message: str
    gates: tuple[GateResult, ...] = field(default_factory=tuple)


class RolloutController:
    """Status, advance, rollback and history over the mode store."""

    def __init__(
        self,
        store: ModeStore,
        engine: Engine,
        *,
        measurements: PrometheusMeasurements,
        data_checks: DataChecks,
        config: GateConfig,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._engine = engine
        self._measurements = measurements
        self._data_checks = data_checks
        self._config = config
        self._clock = clock

    def status(self) -> RolloutStatus:
        now = self._clock()
        stored = self._store.read()
        state = stored.state
        times = phase_times(self._engine, state)
        target = next_phase(state)
        gates = self._gates(target, state, times, now) if target is not None else ()
        return RolloutStatus(
            evaluated_at=now,
            stored=stored,
            phase=phase_of(state),
            phase_label=phase_label(state),
            entered_at=times.entered_at,
            next_phase=target,
            gates=tuple(gates),
            warn_cap=self._warn_cap(state, times, now),
        )

    def advance(
        self, *, actor: str, reason: str | None = None, to: Phase | None = None, force: bool = False
    ) -> StepResult:
        """One step along the ladder when every gate passes; ``force`` (with a reason) overrides."""
        status = self.status()
        reason = (reason or "").strip() or None
        if force and reason is None:
            raise InvalidInputError(
                "--force needs --reason: say why the gates are overridden", field="reason"
            )
        target = _advance_target(status, to, force=force)
        text = reason or f"gates passed for {target.label}"
        state = status.stored.state
        written = self._store.set(
            target.state.mode,
            target.state.canary_percent,
            actor=actor,
            reason=f"FORCED: {text}" if force else text,
            source=ROLLOUT_SOURCE,
            extra={"rollout": _advance_audit(status, target, force=force)},
            only_if=lambda current: current == state,
        )
        if isinstance(written, ModeWriteRefused):
            raise ConflictError(
                f"the mode changed to {phase_label(written.current)} while the gates were evaluated; "
                "nothing written - run `fundmodel rollout status` again"
            )
        verb = "forced" if force else "advanced"
        return StepResult(written, f"{verb}: {status.phase_label} -> {target.label}", status.gates)

    def rollback(self, *, actor: str, reason: str) -> StepResult:
        """Back to warn at once from any enforce percentage; never raises strictness."""
        if not reason.strip():
            raise InvalidInputError("rollback needs --reason", field="reason")
        stored = self._store.read()
        if stored.state.mode is not ValidationMode.ENFORCE:
            return StepResult(None, f"nothing to roll back: the mode is {phase_label(stored.state)}")
        target = ModeState(ValidationMode.WARN, stored.state.canary_percent)
        written = self._store.set(
            target.mode,
            target.canary_percent,
            actor=actor,
            reason=reason,
            source=ROLLOUT_SOURCE,
            extra={"rollout": {"action": "rollback", "from": phase_label(stored.state), "to": "warn"}},
            only_if=lambda current: current.mode is ValidationMode.ENFORCE,
        )
        if isinstance(written, ModeWriteRefused):
            return StepResult(
                None, f"nothing to roll back: the mode is already {phase_label(written.current)}"
            )
        return StepResult(written, f"rolled back: {phase_label(written.old)} -> warn")

    def extend_warn(self, *, actor: str, reason: str, until: datetime, clients: Sequence[str]) -> StepResult:
        """Record a decision to keep warn past ``MAX_WARN_DURATION`` (audited; the mode is unchanged)."""
        now = self._clock()
        if not reason.strip():
            raise InvalidInputError("extend-warn needs --reason", field="reason")
        if until <= now:
            raise InvalidInputError("--until must be in the future", field="until")
        stored = self._store.read()
        if stored.state.mode is not ValidationMode.WARN:
            raise OperationRefusedError(
                f"extend-warn applies in warn; the mode is {phase_label(stored.state)}"
            )
        state = stored.state
        written = self._store.set(
            state.mode,
            state.canary_percent,
            actor=actor,
            reason=reason,
            source=ROLLOUT_SOURCE,
            extra={
                "rollout": {"action": "extend_warn"},
                "warn_extension": {"until": until.astimezone(UTC).isoformat(), "clients": list(clients)},
            },
            only_if=lambda current: current == state,
        )
        if isinstance(written, ModeWriteRefused):
            raise ConflictError("the mode changed meanwhile; nothing written")
        who = f" for {', '.join(clients)}" if clients else ""
        return StepResult(written, f"warn kept until {until.astimezone(UTC):%Y-%m-%d %H:%M} UTC{who}")

    def history(self, limit: int = 50) -> list[ModeChange]:
        return self._store.audit_log(limit)

    # --- evidence for the gate catalogue ------------------------------------------------------------

    def _gates(self, target: Phase, state: ModeState, times: PhaseTimes, now: datetime) -> list[GateResult]:
        config = self._config
        if target is Phase.WARN:
            counts = self._measurements.validations_per_endpoint(config.endpoints, config.traffic_window, now)
            return traffic_gates(config, counts)
        if target is Phase.ENFORCE_10:
            return warn_gates(config, self._warn_evidence(times, now))
        return canary_gates(config, state.canary_percent, self._canary_evidence(state, times, now))

    def _warn_evidence(self, times: PhaseTimes, now: datetime) -> WarnEvidence:
        window, measure = self._config.warn_window, self._measurements
        facts = self._data_checks.measure(now)
        return WarnEvidence(
            now=now,
            warn_since=times.active_since,
            would_reject_ratio=measure.warn_would_reject_ratio(window, now),
            worst_hour_would_reject_ratio=measure.warn_max_hourly_would_reject_ratio(window, now),
            facts=facts,
        )

    def _canary_evidence(self, state: ModeState, times: PhaseTimes, now: datetime) -> CanaryEvidence:
        measure = self._measurements
        window = canary_window(self._config, state.canary_percent, times.entered_at, now)
        step = times.step_began
        return CanaryEvidence(
            now=now,
            step_label=phase_label(state),
            entered_at=times.entered_at,
            window=window,
            canary_reject_ratio=measure.canary_reject_ratio(window, now),
            canary_validations=measure.canary_validations(window, now),
            baseline_validations=measure.baseline_validations(window, now),
            auto_downgrades=auto_downgrades_since(self._engine, step) if step is not None else None,
            step_began=step,
            baseline_would_reject_ratio=measure.baseline_would_reject_ratio(window, now),
            validation_p99_seconds=measure.validation_p99_seconds(window, now),
        )

    def _warn_cap(self, state: ModeState, times: PhaseTimes, now: datetime) -> WarnCap | None:
        if state.mode is not ValidationMode.WARN:
            return None
        limit = self._config.max_warn_duration
        since = times.active_since
        extension = latest_warn_extension(self._engine, since) if since is not None else None
        deadline = None if since is None else since + limit
        if deadline is not None and extension is not None:
            deadline = max(deadline, extension)
        exceeded = deadline is not None and now > deadline
        return WarnCap(limit, since, deadline, extension, exceeded)


def _advance_target(status: RolloutStatus, to: Phase | None, *, force: bool) -> Phase:
    """The phase ``advance`` may write, or why not: complete, not ahead, skipping a step, gates failing."""
    if status.next_phase is None:
        raise OperationRefusedError(f"the rollout is complete: already at {status.phase_label}")
    target = to or status.next_phase
    if not target.state.is_stricter_than(status.stored.state):
        raise InvalidInputError(
            f"{target.label} is not ahead of the current {status.phase_label}; "
            "use `fundmodel rollout rollback` to go back to warn",
            field="to",
        )
    if force:
        return target
    if target is not status.next_phase:
        raise OperationRefusedError(
            f"one step at a time: the next step from {status.phase_label} is "
            f"{status.next_phase.label}, not {target.label} (or --force --reason)"
        )
    if not status.allowed:
        blocking = [g for g in status.gates if g.status is not GateStatus.PASS]
        listing = "; ".join(f"{g.name} {g.status.value}" for g in blocking)
        raise OperationRefusedError(
            f"gates for {target.label} do not pass: {listing}",
            extra={"gates": [gate_json(g) for g in status.gates]},
        )
    return target


def _advance_audit(status: RolloutStatus, target: Phase, *, force: bool) -> dict[str, Any]:
    """The ``rollout`` entry of an advance's audit row: the step and the gate evidence it rested on."""
    return {
        "action": "advance",
        "from": status.phase_label,
        "to": target.value,
        "forced": force,
        "gates": [
            {"name": g.name, "status": g.status.value, "measured": g.measured, "threshold": g.threshold}
            for g in status.gates
        ],
    }
