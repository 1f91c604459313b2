"""The rollout controller: where the rollout stands, whether the next step is allowed, and moving it.

Every step is a mode-store change (source ``rollout``) with actor, reason and the gate evidence in the
audit row. Advancing is a compare-and-swap on the state the gates were evaluated against, so an
automatic downgrade that lands in between is never overwritten.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import Engine

from fundmodel.db.mode_store import ModeChange, ModeStore, StoredMode
from fundmodel.errors import ConflictError, InvalidInputError, OperationRefusedError
from fundmodel.rollout.config import GateConfig, format_duration
from fundmodel.rollout.data_checks import DataFacts
from fundmodel.rollout.gates import (
    GateResult,
    GateStatus,
    Measurement,
    evaluate_gate,
    judged_on,
    overall,
    relative_gate,
    sample_gate,
)
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
        state = status.stored.state
        reason = (reason or "").strip() or None
        if force and reason is None:
            raise InvalidInputError(
                "--force needs --reason: say why the gates are overridden", field="reason"
            )
        if status.next_phase is None:
            raise OperationRefusedError(f"the rollout is complete: already at {status.phase_label}")
        target = to or status.next_phase
        if not target.state.is_stricter_than(state):
            raise InvalidInputError(
                f"{target.label} is not ahead of the current {status.phase_label}; "
                "use `fundmodel rollout rollback` to go back to warn",
                field="to",
            )
        if not force:
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
        text = reason or f"gates passed for {target.label}"
        if force:
            text = f"FORCED: {text}"
        change = self._store.set(
            target.state.mode,
            target.state.canary_percent,
            actor=actor,
            reason=text,
            source=ROLLOUT_SOURCE,
            extra={
                "rollout": {
                    "action": "advance",
                    "from": status.phase_label,
                    "to": target.value,
                    "forced": force,
                    "gates": [
                        {
                            "name": g.name,
                            "status": g.status.value,
                            "measured": g.measured,
                            "threshold": g.threshold,
                        }
                        for g in status.gates
                    ],
                }
            },
            only_if=lambda current: current == state,
        )
        if change.audit_id == 0:
            raise ConflictError(
                f"the mode changed to {phase_label(change.old)} while the gates were evaluated; "
                "nothing written - run `fundmodel rollout status` again"
            )
        verb = "forced" if force else "advanced"
        return StepResult(change, f"{verb}: {status.phase_label} -> {target.label}", status.gates)

    def rollback(self, *, actor: str, reason: str) -> StepResult:
        """Back to warn at once from any enforce percentage; never raises strictness."""
        if not reason.strip():
            raise InvalidInputError("rollback needs --reason", field="reason")
        stored = self._store.read()
        if stored.state.mode is not ValidationMode.ENFORCE:
            return StepResult(None, f"nothing to roll back: the mode is {phase_label(stored.state)}")
        target = ModeState(ValidationMode.WARN, stored.state.canary_percent)
        change = self._store.set(
            target.mode,
            target.canary_percent,
            actor=actor,
            reason=reason,
            source=ROLLOUT_SOURCE,
            extra={"rollout": {"action": "rollback", "from": phase_label(stored.state), "to": "warn"}},
            only_if=lambda current: current.mode is ValidationMode.ENFORCE,
        )
        if change.audit_id == 0:
            return StepResult(None, f"nothing to roll back: the mode is already {phase_label(change.old)}")
        return StepResult(change, f"rolled back: {phase_label(change.old)} -> warn")

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
        change = self._store.set(
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
        if change.audit_id == 0:
            raise ConflictError("the mode changed meanwhile; nothing written")
        who = f" for {', '.join(clients)}" if clients else ""
        return StepResult(change, f"warn kept until {until.astimezone(UTC):%Y-%m-%d %H:%M} UTC{who}")

    def history(self, limit: int = 50) -> list[ModeChange]:
        return self._store.audit_log(limit)

    # --- gates ---------------------------------------------------------------------------------------

    def _gates(self, target: Phase, state: ModeState, times: PhaseTimes, now: datetime) -> list[GateResult]:
        if target is Phase.WARN:
            return self._traffic_gates(now)
        if target is Phase.ENFORCE_10:
            return self._warn_gates(times, now)
        return self._canary_gates(state, times, now)

    def _traffic_gates(self, now: datetime) -> list[GateResult]:
        config = self._config
        counts = self._measurements.validations_per_endpoint(config.endpoints, config.traffic_window, now)
        window = format_duration(config.traffic_window)
        return [
            evaluate_gate(
                f"validations {endpoint}",
                f"validated requests on {endpoint} in the last {window}",
                counts[endpoint],
                threshold=config.min_validations_per_endpoint,
                comparison=">=",
                unit="count",
            )
            for endpoint in config.endpoints
        ]

    def _warn_gates(self, times: PhaseTimes, now: datetime) -> list[GateResult]:
        config, measure = self._config, self._measurements
        window = format_duration(config.warn_window)
        facts = self._data_checks.measure(now)
        since = times.active_since
        observed = (
            Measurement((now - since).total_seconds(), f"warn since {since:%Y-%m-%d %H:%M} UTC")
            if since is not None
            else Measurement.missing("the audit log does not say when warn began (mode never set)")
        )
        return [
            evaluate_gate(
                "warn_observed",
                f"warn has lasted the whole {window} window the ratios cover",
                observed,
                threshold=config.warn_window.total_seconds(),
                comparison=">=",
                unit="duration",
            ),
            evaluate_gate(
                "would_reject_ratio",
                f"share of warn-mode validations enforce would reject, last {window}",
                measure.warn_would_reject_ratio(config.warn_window, now),
                threshold=config.max_would_reject_ratio,
                comparison="<",
                unit="ratio",
            ),
            evaluate_gate(
                "would_reject_worst_hour",
                f"worst hour of that share in the last {window}",
                measure.warn_max_hourly_would_reject_ratio(config.warn_window, now),
                threshold=config.max_hourly_would_reject_ratio,
                comparison="<=",
                unit="ratio",
            ),
            evaluate_gate(
                "stored_stages_canonical",
                "stored stages and allocations are canonical (db verify's canonical checks failing)",
                facts.non_canonical_checks,
                threshold=0,
                comparison="<=",
                unit="count",
            ),
            evaluate_gate(
                "db_verify",
                "`fundmodel db verify` checks failing",
                facts.failed_verify_checks,
                threshold=0,
                comparison="<=",
                unit="count",
            ),
            evaluate_gate(
                "backup_fresh",
                "age of the newest verified backup of the stage tables",
                facts.backup_age_seconds,
                threshold=config.max_backup_age.total_seconds(),
                comparison="<=",
                unit="duration",
            ),
        ]

    def _canary_gates(self, state: ModeState, times: PhaseTimes, now: datetime) -> list[GateResult]:
        config, measure = self._config, self._measurements
        soak = config.soak_for(state.canary_percent)
        began = times.entered_at
        unknown_start = Measurement.missing("the audit log does not say when this step began")
        window = (now - began) if began is not None else soak
        in_step = f"since the step began ({format_duration(window)})"
        canary = measure.canary_reject_ratio(window, now)
        minimum = config.min_canary_validations
        # The ratios count only over enough validations of each cohort compared (no_data until then).
        canary_sample = sample_gate(
            "canary_sample",
            f"enforced canary validations {in_step}",
            measure.canary_validations(window, now),
            minimum=minimum,
        )
        baseline_sample = sample_gate(
            "baseline_sample",
            f"baseline-cohort validations {in_step}",
            measure.baseline_validations(window, now),
            minimum=minimum,
        )
        step = times.step_began
        downgrades = (
            Measurement(float(auto_downgrades_since(self._engine, step)), f"since {step:%Y-%m-%d %H:%M} UTC")
            if step is not None
            else unknown_start
        )
        return [
            evaluate_gate(
                "soak_time",
                f"time at {phase_label(state)} (minimum soak)",
                Measurement((now - began).total_seconds()) if began is not None else unknown_start,
                threshold=soak.total_seconds(),
                comparison=">=",
                unit="duration",
            ),
            canary_sample,
            judged_on(
                evaluate_gate(
                    "canary_reject_ratio",
                    f"share of enforced canary validations rejected {in_step}",
                    canary,
                    threshold=config.max_canary_reject_ratio,
                    comparison="<",
                    unit="ratio",
                ),
                canary_sample,
                "canary",
            ),
            judged_on(
                judged_on(
                    relative_gate(
                        "canary_vs_baseline",
                        f"canary reject ratio vs max({config.max_canary_vs_baseline:g} x baseline "
                        f"would-reject ratio, {config.canary_vs_baseline_floor:.2%})",
                        canary,
                        measure.baseline_would_reject_ratio(window, now),
                        max_factor=config.max_canary_vs_baseline,
                        floor=config.canary_vs_baseline_floor,
                    ),
                    baseline_sample,
                    "baseline",
                ),
                canary_sample,
                "canary",
            ),
            evaluate_gate(
                "validation_p99",
                f"validator p99 {in_step}",
                measure.validation_p99_seconds(window, now),
                threshold=config.max_validation_p99_seconds,
                comparison="<",
                unit="seconds",
            ),
            evaluate_gate(
                "no_auto_downgrade",
                "automatic downgrades (Alertmanager webhook) since the step began",
                downgrades,
                threshold=0,
                comparison="<=",
                unit="count",
            ),
        ]

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
