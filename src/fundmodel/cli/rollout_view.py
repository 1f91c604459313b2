"""How ``fundmodel rollout`` shows a status, its gates and the audit history (Rich text; JSON is the
status's own ``to_json``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from fundmodel.cli.rollout_brownout import render_brownouts
from fundmodel.db.mode_store import ModeChange
from fundmodel.rollout.cohort_preview import CohortPreview
from fundmodel.rollout.config import format_duration
from fundmodel.rollout.exemptions import GRANT_ACTION, REVOKE_ACTION
from fundmodel.rollout.gates import GateResult, GateStatus
from fundmodel.rollout.history import RESET_OBSERVATION_ACTION, START_ACTION
from fundmodel.rollout.phases import CANARY_PHASES, phase_label, phase_of
from fundmodel.rollout.status import RolloutStatus, Verdict, WarnCap

_COLOURS = {GateStatus.PASS: "green", GateStatus.FAIL: "red", GateStatus.NO_DATA: "yellow"}


def _value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "ratio":
        return f"{value:.3%}"
    if unit == "seconds":
        return f"{value * 1e6:.0f} µs" if value < 0.001 else f"{value * 1e3:.3f} ms"
    if unit == "duration":
        return format_duration(timedelta(seconds=value))
    if unit == "count":
        return f"{value:,.0f}"
    return f"{value:g}"


def gates_table(gates: tuple[GateResult, ...] | list[GateResult], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("gate", "measured", "threshold", "status", "detail"):
        table.add_column(column, overflow="fold", no_wrap=column != "detail")
    for gate in gates:
        colour = "dim" if gate.dry_run else _COLOURS[gate.status]
        table.add_row(
            gate.name,
            _value(gate.measured, gate.unit),
            f"{gate.comparison} {_value(gate.threshold, gate.unit)}",
            f"[{colour}]{gate.verdict_label}[/]",
            Text(gate.detail or gate.description),
        )
    return table


def _when(moment: datetime | None) -> str:
    return "unknown" if moment is None else f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _render_cohorts(status: RolloutStatus, console: Console) -> None:
    for preview in status.cohorts:
        if not preview.canary_step and not preview.canary:
            continue  # warn or off: nobody is enforced, nothing to preview
        if preview.share is None:
            share = "-"
        elif preview.share_basis == "traffic":
            share = f"{preview.share:.0%} of the {preview.total_validations:,} validations counted"
        else:
            share = f"{preview.share:.0%} of {preview.active} active clients"
        canary = ", ".join(_with_share(preview, name) for name in preview.canary) or "none"
        console.print(Text(f"canary at {preview.step}: {canary} ({share})"))
        suggestion = preview.suggestion()
        if suggestion is not None:
            console.print(Text(f"  {suggestion}"), style="yellow")
    if status.cohorts:
        console.print(Text(f"  (clients: {status.cohorts[0].basis})"), style="dim")


def _with_share(preview: CohortPreview, name: str) -> str:
    share = preview.client_share(name)
    return name if share is None else f"{name} {share:.0%}"


def _render_client_gates(status: RolloutStatus, console: Console) -> None:
    """The clients the next step would break (named, with counts and last seen), and who is exempt."""
    for report in status.client_gates:
        for usage in report.blocking:
            console.print(
                Text(
                    f"{report.gate}: {usage.client_name} sent {usage.count:,} "
                    f"({', '.join(f'{kind} {count:,}' for kind, count in usage.kind_counts) or 'counted'}), "
                    f"last {_when(usage.last_seen_at)}"
                ),
                style="red",
            )
        for usage, exemption in report.exempt:
            console.print(
                Text(
                    f"{report.gate}: {usage.client_name} sent {usage.count:,}, exempt until "
                    f"{_when(exemption.expires_at)} (granted by {exemption.granted_by}: {exemption.reason})"
                )
            )
    exempt_now = {e.client_name for report in status.client_gates for _, e in report.exempt}
    for exemption in status.exemptions:
        if exemption.client_name not in exempt_now:
            console.print(Text(f"exemption in force: {exemption.describe()}"), style="dim")


def render_status(status: RolloutStatus, console: Console) -> None:
    since = status.time_in_phase
    origin = " (the store's first record)" if status.since_source == "first_record" else ""
    held = (
        f"since {_when(status.entered_at)}{origin} ({format_duration(since)})"
        if since is not None
        else "since: not recorded (no audited change)"
    )
    console.print(f"[bold]phase[/]: {status.phase_label}  {held}")
    state = status.stored.state
    if state.canary_clients:
        effect = (
            "" if status.phase in CANARY_PHASES or phase_of(state) is None else " (no effect in this phase)"
        )
        console.print(Text(f"named canary clients: {', '.join(state.sorted_clients)}{effect}"))
    reset = status.observation_reset
    if reset is not None:
        console.print(Text(reset.describe()))
    _render_cohorts(status, console)
    render_brownouts(status.brownouts, status.evaluated_at, console)
    if status.next_phase is None:
        console.print(
            "[green]rollout complete[/]: enforce applies to every client and deprecated aliases are rejected"
        )
    else:
        console.print(gates_table(status.gates, f"gates for the next step: {status.next_phase.label}"))
    _render_client_gates(status, console)
    if status.warn_cap is not None:
        _render_warn_cap(status.warn_cap, console)
    _render_verdict(status, console)


def _render_warn_cap(cap: WarnCap, console: Console) -> None:
    """The ``MAX_WARN_DURATION`` deadline, or - once it has passed - the choices left."""
    if cap.exceeded:
        console.print(
            f"[bold red]warn has lasted longer than MAX_WARN_DURATION ({format_duration(cap.limit)})[/]"
            f": warn since {_when(cap.active_since)}, deadline {_when(cap.deadline)}. Choose:"
        )
        for number, choice in enumerate(cap.choices, start=1):
            console.print(f"  {number}.", Text(choice))
    elif cap.deadline is not None:
        console.print(f"warn deadline (MAX_WARN_DURATION): {_when(cap.deadline)}")


def _render_verdict(status: RolloutStatus, console: Console) -> None:
    """The closing line: ALLOWED with the command that advances, or BLOCKED with the failing gates."""
    if status.allowed and status.next_phase is not None:
        console.print(
            f"[bold green]ALLOWED[/]: `fundmodel rollout advance` moves to {status.next_phase.label}"
        )
    elif status.verdict is not Verdict.COMPLETE:
        blocking = [g.name for g in status.blocking_gates]
        console.print(f"[bold red]BLOCKED[/] by {', '.join(blocking)}")


def gate_from_json(document: dict[str, Any]) -> GateResult:
    """A gate back from :func:`gate_json` (``blocks`` is derived, not a field)."""
    fields = {key: value for key, value in document.items() if key != "blocks"}
    return GateResult(**{**fields, "status": GateStatus(document["status"])})


def render_history(changes: list[ModeChange], console: Console) -> None:
    table = Table(title="stage-validation mode changes, newest first", title_justify="left")
    for column in ("id", "time", "change", "source", "actor", "reason"):
        table.add_column(column, overflow="fold")
    for change in changes:
        table.add_row(
            str(change.audit_id),
            _when(change.changed_at),
            _change_label(change),
            change.source,
            Text(change.actor),
            Text(change.reason),
        )
    console.print(table)


def _change_label(change: ModeChange) -> str:
    action = (
        change.extra.get("rollout", {}).get("action")
        if isinstance(change.extra.get("rollout"), dict)
        else None
    )
    if action == START_ACTION:
        return f"first-run state: {phase_label(change.new)}"
    if action == RESET_OBSERVATION_ACTION:
        return f"observation restarted at {phase_label(change.new)}"
    if action in (GRANT_ACTION, REVOKE_ACTION):
        exemption = change.extra.get("exemption")
        client = exemption.get("client") if isinstance(exemption, dict) else None
        verb = "granted" if action == GRANT_ACTION else "revoked"
        return f"exemption {verb}: {client}"
    return f"{phase_label(change.old)} -> {phase_label(change.new)}"


def change_json(change: ModeChange) -> dict[str, Any]:
    return {
        "id": change.audit_id,
        "changed_at": change.changed_at.isoformat(),
        "old": {"mode": change.old.mode.value, "canary_percent": change.old.canary_percent},
        "new": {"mode": change.new.mode.value, "canary_percent": change.new.canary_percent},
        "old_label": phase_label(change.old),
        "new_label": phase_label(change.new),
        "source": change.source,
        "actor": change.actor,
        "reason": change.reason,
        "extra": change.extra,
    }
