"""What is notified (mode changes, gate verdicts, brownout edges) and the two bodies a webhook receives.

Pure: an event is built from plain values and rendered without I/O. The generic JSON body carries the event
whole (``kind``, ``summary``, ``data``); the Slack body is ``{"text": ..., "blocks": [...]}`` for incoming
webhooks, the summary escaped as Slack's mrkdwn requires.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from fundmodel.notifications.targets import BodyFormat
from fundmodel.validation import ModeState

BODY_SCHEMA = "fundmodel.notification/1"
MAX_SUMMARY_CHARS = 600
MAX_REASON_CHARS = 300
# Slack refuses a section text over 3000 characters.
_SLACK_SECTION_CHARS = 2900


class EventKind(StrEnum):
    MODE_CHANGE = "mode_change"
    GATE_VERDICT = "gate_verdict"
    BROWNOUT = "brownout"

    __hash__ = str.__hash__


class Verdict(StrEnum):
    """A ``rollout advance``'s gate verdict: the gates passed, failed, or failed and were overridden."""

    ALLOWED = "allowed"
    REFUSED = "refused"
    FORCED = "forced"

    __hash__ = str.__hash__


class BrownoutEdge(StrEnum):
    SCHEDULED = "scheduled"
    STARTED = "started"
    ENDED = "ended"
    CANCELLED = "cancelled"

    __hash__ = str.__hash__


@dataclass(frozen=True, slots=True)
class NotificationEvent:
    """One event to post. ``dedupe_key``: events with the same key are enqueued once (``None``: always)."""

    kind: EventKind
    summary: str
    data: Mapping[str, Any]
    occurred_at: datetime
    dedupe_key: str | None = None


@dataclass(frozen=True, slots=True)
class GateLine:
    """One gate of a verdict, as the notification shows it."""

    name: str
    status: str
    measured: Any = None
    threshold: Any = None


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as read back from the outbox, with its id (what receivers may deduplicate on)."""

    event_id: int
    kind: str
    summary: str
    data: Mapping[str, Any]
    occurred_at: datetime


def mode_change_event(
    *,
    audit_id: int,
    old: ModeState,
    new: ModeState,
    actor: str,
    reason: str,
    source: str,
    changed_at: datetime,
    action: str | None = None,
) -> NotificationEvent:
    """A written mode change (its audit row); ``action``: the rollout action when the rollout wrote it."""
    what = f"mode unchanged ({new.describe()})" if old == new else f"{old.describe()} → {new.describe()}"
    via = f"{source} {action}" if action else source
    summary = f"Stage validation: {what} ({via}, by {actor}): {_bounded(reason, MAX_REASON_CHARS)}"
    data = {
        "auditId": audit_id,
        "old": _state_json(old),
        "new": _state_json(new),
        "changed": old != new,
        "actor": actor,
        "reason": reason,
        "source": source,
        "action": action,
        "changedAt": changed_at.isoformat(),
    }
    return NotificationEvent(
        EventKind.MODE_CHANGE, _bounded(summary, MAX_SUMMARY_CHARS), data, changed_at, f"mode:{audit_id}"
    )


def gate_verdict_event(
    *,
    verdict: Verdict,
    current: str,
    target: str,
    gates: Sequence[GateLine],
    actor: str,
    reason: str | None,
    evaluated_at: datetime,
    audit_id: int | None,
) -> NotificationEvent:
    """The gates of one ``rollout advance`` from ``current`` to ``target`` (phase labels)."""
    failing = [gate for gate in gates if gate.status != "pass"]
    if verdict is Verdict.ALLOWED:
        what = f"gates passed, advanced {current} → {target}"
    elif verdict is Verdict.FORCED:
        what = f"gates overridden (--force), advanced {current} → {target}"
    else:
        what = f"refused {current} → {target}"
    if failing:
        what += "; not passing: " + ", ".join(f"{gate.name} {gate.status}" for gate in failing)
    summary = f"Rollout advance {verdict.value}: {what} (by {actor})"
    if reason:
        summary += f": {_bounded(reason, MAX_REASON_CHARS)}"
    data = {
        "verdict": verdict.value,
        "from": current,
        "to": target,
        "gates": [
            {"name": g.name, "status": g.status, "measured": g.measured, "threshold": g.threshold}
            for g in gates
        ],
        "actor": actor,
        "reason": reason,
        "auditId": audit_id,
        "evaluatedAt": evaluated_at.isoformat(),
    }
    return NotificationEvent(EventKind.GATE_VERDICT, _bounded(summary, MAX_SUMMARY_CHARS), data, evaluated_at)


def brownout_event(
    edge: BrownoutEdge,
    *,
    brownout_id: int,
    starts_at: datetime,
    ends_at: datetime,
    canary_percent: float,
    actor: str,
    reason: str,
    ended_by: str | None = None,
    occurred_at: datetime | None = None,
) -> NotificationEvent:
    """A brownout window scheduled, started, ended (``ended_by``: elapsed, cancelled, auto_downgrade) or
    cancelled. Deduplicated per window and edge: every worker noticing the edge may enqueue it."""
    window = f"{_utc(starts_at)} - {_utc(ends_at)}, enforce {canary_percent:g}%"
    what = f"ended ({ended_by})" if edge is BrownoutEdge.ENDED and ended_by else edge.value
    summary = f"Brownout #{brownout_id} {what}: {window} (by {actor}): {_bounded(reason, MAX_REASON_CHARS)}"
    data = {
        "edge": edge.value,
        "brownoutId": brownout_id,
        "startsAt": starts_at.isoformat(),
        "endsAt": ends_at.isoformat(),
        "canaryPercent": canary_percent,
        "actor": actor,
        "reason": reason,
        "endedBy": ended_by,
    }
    when = occurred_at or datetime.now(UTC)
    return NotificationEvent(
        EventKind.BROWNOUT,
        _bounded(summary, MAX_SUMMARY_CHARS),
        data,
        when,
        f"brownout:{brownout_id}:{edge.value}",
    )


def render_body(event: StoredEvent, body_format: BodyFormat) -> dict[str, Any]:
    """The body a target of ``body_format`` receives for ``event``."""
    if body_format is BodyFormat.SLACK:
        return slack_body(event)
    return json_body(event)


def json_body(event: StoredEvent) -> dict[str, Any]:
    """The generic body: the whole event, ``id`` stable across retries (receivers deduplicate on it)."""
    return {
        "schema": BODY_SCHEMA,
        "id": event.event_id,
        "kind": event.kind,
        "occurredAt": event.occurred_at.isoformat(),
        "summary": event.summary,
        "data": dict(event.data),
    }


def slack_body(event: StoredEvent) -> dict[str, Any]:
    """A Slack incoming-webhook message: ``text`` (the notification fallback) and ``blocks``."""
    text = slack_escape(event.summary)
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": text[:_SLACK_SECTION_CHARS]}},
    ]
    gates = event.data.get("gates") if event.kind == EventKind.GATE_VERDICT else None
    if isinstance(gates, list) and gates:
        lines = [_slack_gate_line(gate) for gate in gates if isinstance(gate, dict)]
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:_SLACK_SECTION_CHARS]}}
        )
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"fundmodel · {event.kind} · event {event.event_id} · {_utc(event.occurred_at)}",
                }
            ],
        }
    )
    return {"text": text, "blocks": blocks}


def _slack_gate_line(gate: Mapping[str, Any]) -> str:
    name, status = slack_escape(str(gate.get("name"))), slack_escape(str(gate.get("status")))
    measured, threshold = slack_escape(str(gate.get("measured"))), slack_escape(str(gate.get("threshold")))
    return f"• {name}: *{status}* (measured {measured}, threshold {threshold})"


def slack_escape(text: str) -> str:
    """Slack mrkdwn's three control characters (so ``<url|label>`` or ``<!channel>`` cannot be injected)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _state_json(state: ModeState) -> dict[str, Any]:
    return {
        "mode": state.mode.value,
        "canaryPercent": state.canary_percent,
        "canaryClients": state.sorted_clients,
        "aliasesRejected": state.aliases_rejected,
        "label": state.describe(),
    }


def _utc(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _bounded(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
