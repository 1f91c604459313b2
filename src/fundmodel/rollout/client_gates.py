"""Gates on named clients: the steps that would break a client, judged on the usage ledger, pure.

Before ``enforce 100 %`` every client is enforced, so any client that sent input enforce rejects in the
window would break: kind ``rejected`` (an enforced canary client got a 400), and kinds ``unknown`` /
``sum`` (a client still in warn sent input that warn accepted and enforce will reject once it applies to
everyone). Before ``sunset`` aliases are rejected too, so the clients that sent kind ``alias`` would
break. The gate names those clients, with counts and when each last did it, unless the client holds an
exemption in force (``fundmodel rollout exempt``): an exempt client is listed as such and does not block.

The controller reads the ledger (:func:`fundmodel.usage.service.clients_with_kinds`), the exemptions and
the API keys; this module only judges them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fundmodel.rollout.config import format_duration
from fundmodel.rollout.gates import GateResult, Measurement, evaluate_gate

__all__ = [
    "ALIAS_KINDS",
    "ENFORCE_BREAKING_KINDS",
    "ClientExemption",
    "ClientGateReport",
    "ClientKindUsage",
    "client_gate",
]

ENFORCE_BREAKING_KINDS: tuple[str, ...] = ("rejected", "unknown", "sum")
"""What enforce at 100 % rejects: rejected by enforce already, or accepted by warn and rejected once
enforce applies to everyone."""
ALIAS_KINDS: tuple[str, ...] = ("alias",)
"""What the Sunset step rejects in addition."""
_SHOWN_IN_DETAIL = 5


@dataclass(frozen=True, slots=True)
class ClientKindUsage:
    """One client's counted validations of the gate's kinds in the window (from the usage ledger)."""

    client_id: str
    client_name: str
    count: int
    last_seen_at: datetime
    endpoints: tuple[str, ...] = ()
    spellings: tuple[str, ...] = ()
    kind_counts: tuple[tuple[str, int], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "client": self.client_name,
            "count": self.count,
            "last_seen_at": self.last_seen_at.isoformat(),
            "endpoints": list(self.endpoints),
            "spellings": list(self.spellings),
            "kinds": dict(self.kind_counts),
        }


@dataclass(frozen=True, slots=True)
class ClientExemption:
    """An exemption in force: ``client_name`` may keep sending what the client gates count until
    ``expires_at``."""

    exemption_id: int
    client_id: str
    client_name: str
    granted_at: datetime
    expires_at: datetime
    granted_by: str
    reason: str

    def describe(self) -> str:
        return (
            f"{self.client_name} exempt until {self.expires_at:%Y-%m-%d %H:%M} UTC "
            f"(granted by {self.granted_by}: {self.reason})"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.exemption_id,
            "client_id": self.client_id,
            "client": self.client_name,
            "granted_at": self.granted_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "granted_by": self.granted_by,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class ClientGateReport:
    """Who a client gate counted: the clients blocking it, and the exempt ones it let through."""

    gate: str
    kinds: tuple[str, ...]
    window: timedelta
    blocking: tuple[ClientKindUsage, ...]
    exempt: tuple[tuple[ClientKindUsage, ClientExemption], ...]
    revoked: tuple[ClientKindUsage, ...] = ()
    """Clients whose API key has been revoked since: they cannot send anything any more."""

    def to_json(self) -> dict[str, Any]:
        return {
            "gate": self.gate,
            "kinds": list(self.kinds),
            "window_seconds": self.window.total_seconds(),
            "blocking": [usage.to_json() for usage in self.blocking],
            "exempt": [
                {**usage.to_json(), "exemption": exemption.to_json()} for usage, exemption in self.exempt
            ],
            "revoked_keys": [usage.to_json() for usage in self.revoked],
        }


def client_gate(
    name: str,
    description: str,
    *,
    kinds: Sequence[str],
    window: timedelta,
    cutoff: datetime,
    usage: Iterable[ClientKindUsage],
    ledger_validations: int,
    exemptions: Iterable[ClientExemption],
    revoked_client_ids: frozenset[str] = frozenset(),
) -> tuple[GateResult, ClientGateReport]:
    """``name`` passes when no client outside an exemption in force sent ``kinds`` since ``cutoff``.

    ``usage`` is counted per UTC day, so a client last seen before ``cutoff`` (early on the window's first
    day) is left out. ``ledger_validations`` is every validation the ledger counted in the window: none at
    all is ``no_data`` (the ledger is not recording, or nothing is served), never an empty pass.
    """
    by_client: Mapping[str, ClientExemption] = {e.client_id: e for e in exemptions}
    recent = [u for u in usage if u.last_seen_at >= cutoff]
    revoked = tuple(u for u in recent if u.client_id in revoked_client_ids)
    live = [u for u in recent if u.client_id not in revoked_client_ids]
    exempt = tuple((u, by_client[u.client_id]) for u in live if u.client_id in by_client)
    blocking = tuple(u for u in live if u.client_id not in by_client)
    report = ClientGateReport(name, tuple(kinds), window, blocking, exempt, revoked)
    if ledger_validations <= 0:
        measurement = Measurement.missing(
            f"the usage ledger counted no validation in the last {format_duration(window)}: nothing to "
            "judge the clients on (is the service recording usage?)"
        )
    else:
        measurement = Measurement(float(len(blocking)), _detail(report))
    result = evaluate_gate(name, description, measurement, threshold=0, comparison="<=", unit="count")
    return result, report


def _detail(report: ClientGateReport) -> str:
    parts: list[str] = []
    if report.blocking:
        shown = [_client_line(u) for u in report.blocking[:_SHOWN_IN_DETAIL]]
        more = len(report.blocking) - _SHOWN_IN_DETAIL
        if more > 0:
            shown.append(f"and {more} more")
        parts.append("would break: " + "; ".join(shown))
    else:
        parts.append("no client outside an exemption")
    if report.exempt:
        parts.append(
            "exempt: "
            + ", ".join(f"{u.client_name} until {e.expires_at:%Y-%m-%d %H:%M} UTC" for u, e in report.exempt)
        )
    if report.revoked:
        parts.append("revoked keys ignored: " + ", ".join(u.client_name for u in report.revoked))
    if report.blocking:
        parts.append("chase them (`fundmodel rollout offenders`) or `fundmodel rollout exempt --client NAME`")
    return "; ".join(parts)


def _client_line(usage: ClientKindUsage) -> str:
    kinds = ", ".join(f"{kind} {count:,}" for kind, count in usage.kind_counts)
    counted = f"{usage.count:,} ({kinds})" if kinds else f"{usage.count:,}"
    return f"{usage.client_name} {counted}, last {usage.last_seen_at:%Y-%m-%d %H:%M} UTC"
