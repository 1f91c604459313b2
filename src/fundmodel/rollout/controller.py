"""The rollout controller: where the rollout stands, whether the next step is allowed, and moving it.

Every step is a mode-store change (source ``rollout``) with actor, reason and the gate evidence in the
audit row; so is every client exemption granted or revoked (:mod:`fundmodel.rollout.exemptions`).
Advancing is a compare-and-swap on the state the gates were evaluated against, so an automatic downgrade
that lands in between is never overwritten. Which gates guard a step, and how they
judge the evidence gathered here, is the pure :mod:`fundmodel.rollout.gate_catalogue`; what a status and
a step report is :mod:`fundmodel.rollout.status`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Engine

from fundmodel.db.brownout_store import list_brownouts
from fundmodel.db.mode_store import ModeChange, ModeStore, ModeWriteRefused
from fundmodel.errors import (
    ConflictError,
    InvalidInputError,
    OperationRefusedError,
)
from fundmodel.notifications.verdicts import notify_advance, notify_refused_advance
from fundmodel.rollout.client_gates import (
    ClientGateReport,
)
from fundmodel.rollout.clients import ClientKeys, client_keys
from fundmodel.rollout.cohort_preview import CohortPreview, preview_cohort
from fundmodel.rollout.config import GateConfig, format_duration
from fundmodel.rollout.data_checks import DataFacts
from fundmodel.rollout.exemptions import exemptions_in_force, grant_exemption, revoke_exemption
from fundmodel.rollout.gate_catalogue import (
    CanaryEvidence,
    SunsetEvidence,
    WarnEvidence,
    canary_gates,
    canary_window,
    sunset_gates,
    traffic_gates,
    warn_gates,
)
from fundmodel.rollout.gates import GateResult, as_dry_run
from fundmodel.rollout.history import (
    RESET_OBSERVATION_ACTION,
    ROLLOUT_SOURCE,
    START_ACTION,
    AuditedChange,
    PhaseTimes,
    auto_downgrades_since,
    first_change_at,
    latest_observation_reset,
    latest_warn_extension,
    phase_times,
)
from fundmodel.rollout.ledger_evidence import LedgerWindow, client_gate, read_ledger_window
from fundmodel.rollout.measurements import PrometheusMeasurements
from fundmodel.rollout.phases import Phase, next_phase, phase_label, phase_of
from fundmodel.rollout.status import ObservationReset, RolloutStatus, StepResult, WarnCap, gate_json
from fundmodel.validation import ModeState, ValidationMode


class DataChecks(Protocol):
    def measure(self, now: datetime) -> DataFacts: ...


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
        canary_salt: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._salt = canary_salt
        self._store = store
        self._engine = engine
        self._measurements = measurements
        self._data_checks = data_checks
        self._config = config
        self._clock = clock

    def status(self) -> RolloutStatus:
        """Where the rollout stands and every gate of the next step.

        On a fresh store (nothing stored yet) the first call records the first-run state - the default
        ``STAGE_VALIDATION_MODE``, where the ladder begins - with an audit row (source ``rollout``), so the
        phase has a start and warn's observation and cap count from a recorded time.
        """
        now = self._clock()
        stored = self._store.read()
        if stored.version == 0:
            self._store.initialize(
                actor="fundmodel rollout",
                reason="first-run state recorded: the rollout ladder begins at the default mode",
                extra={"rollout": {"action": START_ACTION}},
            )
            stored = self._store.read()
        state = stored.state
        times = phase_times(self._engine, state)
        since_source = "audit"
        if times.entered_at is None:
            first = first_change_at(self._engine)
            if first is not None:
                times = PhaseTimes(first, times.step_began or first, times.active_since or first)
                since_source = "first_record"
        reset = self._observation_reset(times)
        target = next_phase(state)
        keys = client_keys(self._engine)
        ledger = read_ledger_window(self._engine, self._config.client_usage_window, now)
        clients = self._cohort_previews(state, target, now, keys, ledger)
        canary_active = len(clients[0].canary) if clients and clients[0].active else None
        exemptions = exemptions_in_force(self._engine, now)
        gates = self._gates(target, state, times, now, reset, canary_active) if target is not None else []
        reports: tuple[ClientGateReport, ...] = ()
        if target in (Phase.ENFORCE_100, Phase.SUNSET):
            gate, report = client_gate(self._engine, self._config, target, ledger, keys, exemptions, reset)
            gates.append(gate)
            reports = (report,)
        gates = as_dry_run(gates, self._config.dry_run_gates)
        return RolloutStatus(
            evaluated_at=now,
            stored=stored,
            phase=phase_of(state),
            phase_label=phase_label(state),
            entered_at=times.entered_at,
            next_phase=target,
            gates=tuple(gates),
            warn_cap=self._warn_cap(state, times, now),
            since_source=since_source,
            cohorts=clients,
            observation_reset=reset,
            client_gates=reports,
            exemptions=tuple(exemptions),
            brownouts=tuple(list_brownouts(self._engine, now)),
        )

    def reset_observation(self, *, actor: str, reason: str) -> StepResult:
        """Start the current phase's observation over (audited; the mode is unchanged): the would-reject
        ratios, their worst hour and the canary measurements count only from now, and warn must be
        observed for its whole window again. For after an incident that has been fixed."""
        if not reason.strip():
            raise InvalidInputError("reset-observation needs --reason", field="reason")
        stored = self._store.read()
        state = stored.state
        if state.mode is ValidationMode.OFF or next_phase(state) is None:
            raise OperationRefusedError(
                f"nothing is observed at {phase_label(state)}: reset-observation applies in warn and the "
                "canary steps"
            )
        written = self._store.set(
            state.mode,
            state.canary_percent,
            actor=actor,
            reason=reason,
            source=ROLLOUT_SOURCE,
            extra={"rollout": {"action": RESET_OBSERVATION_ACTION, "phase": phase_label(state)}},
            only_if=lambda current: current == state,
        )
        if isinstance(written, ModeWriteRefused):
            raise ConflictError("the mode changed meanwhile; nothing written")
        return StepResult(
            written,
            f"observation of {phase_label(state)} restarted at {written.changed_at:%Y-%m-%d %H:%M} UTC",
        )

    def advance(
        self,
        *,
        actor: str,
        reason: str | None = None,
        to: Phase | None = None,
        force: bool = False,
        canary_clients: Iterable[str] | None = None,
    ) -> StepResult:
        """One step along the ladder when every gate passes; ``force`` (with a reason) overrides.

        ``canary_clients`` (API key names) replaces the named canary clients of the new step; ``None``
        keeps the stored ones."""
        status = self.status()
        reason = (reason or "").strip() or None
        if force and reason is None:
            raise InvalidInputError(
                "--force needs --reason: say why the gates are overridden", field="reason"
            )
        try:
            target = _advance_target(status, to, force=force)
        except OperationRefusedError:
            notify_refused_advance(self._engine, status, actor=actor, reason=reason)  # webhooks (issue 12)
            raise
        text = reason or f"gates passed for {target.label}"
        state = status.stored.state
        written = self._store.set(
            target.state.mode,
            target.state.canary_percent,
            actor=actor,
            reason=f"FORCED: {text}" if force else text,
            source=ROLLOUT_SOURCE,
            extra={"rollout": _advance_audit(status, target, force=force)},
            canary_clients=None if canary_clients is None else list(canary_clients),
            aliases_rejected=target.state.aliases_rejected,
            only_if=lambda current: current == state,
        )
        if isinstance(written, ModeWriteRefused):
            raise ConflictError(
                f"the mode changed to {phase_label(written.current)} while the gates were evaluated; "
                "nothing written - run `fundmodel rollout status` again"
            )
        notify_advance(  # the gate verdict to the webhooks (issue 12); best effort, never raises
            self._engine,
            status,
            target.label,
            forced=force,
            actor=actor,
            reason=reason,
            audit_id=written.audit_id,
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

    def exempt(self, *, actor: str, reason: str, client: str, until: datetime) -> StepResult:
        """Exempt one client from the client gates until ``until`` (audited; the mode is unchanged).

        Time-limited: ``until`` lies in the future, at most ``max_exemption`` ahead; a new grant for the
        same client replaces the one in force."""
        now = self._clock()
        if not reason.strip():
            raise InvalidInputError("exempt needs --reason", field="reason")
        if until <= now:
            raise InvalidInputError("--until must be in the future", field="until")
        longest = self._config.max_exemption
        if until - now > longest:
            raise InvalidInputError(
                f"--until is more than {format_duration(longest)} ahead (max_exemption): an exemption is "
                "a deadline for the client, renew it if it must last longer",
                field="until",
            )
        granted = grant_exemption(self._store, client=client, until=until, actor=actor, reason=reason)
        replaced = (
            f" (replaces exemption {', '.join(f'#{i}' for i in granted.superseded)})"
            if granted.superseded
            else ""
        )
        return StepResult(
            granted.change,
            f"exemption #{granted.exemption.exemption_id}: {granted.exemption.describe()}{replaced}",
        )

    def revoke_exemption(self, *, actor: str, reason: str, client: str) -> StepResult:
        """End the exemption ``client`` holds now (audited; the mode is unchanged)."""
        if not reason.strip():
            raise InvalidInputError("exempt --revoke needs --reason", field="reason")
        revoked = revoke_exemption(self._store, client=client, actor=actor, reason=reason)
        return StepResult(revoked.change, f"exemption #{revoked.exemption.exemption_id} of {client} revoked")

    def history(self, limit: int = 50) -> list[ModeChange]:
        return self._store.audit_log(limit)

    # --- evidence for the gate catalogue ------------------------------------------------------------

    def _gates(
        self,
        target: Phase,
        state: ModeState,
        times: PhaseTimes,
        now: datetime,
        reset: ObservationReset | None,
        canary_active: int | None,
    ) -> list[GateResult]:
        config = self._config
        if target is Phase.WARN:
            counts = self._measurements.validations_per_endpoint(config.endpoints, config.traffic_window, now)
            return traffic_gates(config, counts)
        if target is Phase.ENFORCE_10:
            return warn_gates(config, self._warn_evidence(times, now, reset))
        if target is Phase.SUNSET:
            window = config.sunset_window
            if reset is not None:  # aliases sent before the reset (clients since fixed) do not count
                window = min(window, max(now - reset.at, timedelta(0)))
            return sunset_gates(
                config,
                SunsetEvidence(
                    window,
                    self._measurements.alias_validations(window, now),
                    self._measurements.all_validations(window, now),
                ),
            )
        evidence = self._canary_evidence(state, times, now, reset, canary_active)
        return canary_gates(config, state.canary_percent, evidence)

    def _warn_evidence(
        self, times: PhaseTimes, now: datetime, reset: ObservationReset | None
    ) -> WarnEvidence:
        window, measure = self._config.warn_window, self._measurements
        observed_since = times.active_since
        if reset is not None and (observed_since is None or reset.at > observed_since):
            observed_since = reset.at
            # Only what was measured since the reset counts: the incident before it is out of the window.
            window = min(window, max(now - reset.at, timedelta(0)))
        facts = self._data_checks.measure(now)
        return WarnEvidence(
            now=now,
            warn_since=times.active_since,
            would_reject_ratio=measure.warn_would_reject_ratio(window, now),
            worst_hour_would_reject_ratio=measure.warn_max_hourly_would_reject_ratio(window, now),
            facts=facts,
            observation_reset=reset.describe() if reset is not None else None,
            observed_since=observed_since,
        )

    def _canary_evidence(
        self,
        state: ModeState,
        times: PhaseTimes,
        now: datetime,
        reset: ObservationReset | None,
        canary_active: int | None,
    ) -> CanaryEvidence:
        measure = self._measurements
        observed_from = times.entered_at
        if reset is not None and (observed_from is None or reset.at > observed_from):
            observed_from = reset.at
        window = canary_window(self._config, state.canary_percent, observed_from, now)
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
            canary_clients_active=canary_active,
        )

    def _observation_reset(self, times: PhaseTimes) -> ObservationReset | None:
        change: AuditedChange | None = latest_observation_reset(self._engine, times.entered_at)
        if change is None:
            return None
        return ObservationReset(change.changed_at, change.actor, change.reason)

    def _cohort_previews(
        self, state: ModeState, target: Phase | None, now: datetime, keys: ClientKeys, ledger: LedgerWindow
    ) -> tuple[CohortPreview, ...]:
        """The canary cohort now and at the next step (named clients carried over), among the active
        clients, with each one's share of the traffic the ledger counted (revoked keys left out)."""
        clients = keys.active
        traffic = {
            client_id: count
            for client_id, count in ledger.traffic.items()
            if client_id not in keys.revoked_client_ids
        }
        steps = [(phase_label(state), state)]
        if target is not None:
            steps.append((target.label, replace(target.state, canary_clients=state.canary_clients)))
        return tuple(
            preview_cohort(
                label,
                step_state,
                clients,
                salt=self._salt,
                now=now,
                recent=self._config.client_usage_window,
                traffic=traffic,
            )
            for label, step_state in steps
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
        blocking = [g for g in status.gates if g.blocks]
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
            {
                "name": g.name,
                "status": g.status.value,
                "measured": g.measured,
                "threshold": g.threshold,
                "dry_run": g.dry_run,
            }
            for g in status.gates
        ],
    }
