"""What the usage ledger says for the rollout: every client's traffic over the client window, and the
client gate of a step (who would break at enforce 100 %, who still sends aliases before the Sunset step).

Reads the ledger through :mod:`fundmodel.usage.service`; the gates themselves are the pure
:mod:`fundmodel.rollout.client_gates` (through the catalogue).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from fundmodel.errors import StoreUnavailableError
from fundmodel.rollout.client_gates import (
    ALIAS_KINDS,
    ENFORCE_BREAKING_KINDS,
    ClientExemption,
    ClientGateReport,
    ClientKindUsage,
)
from fundmodel.rollout.clients import ClientKeys
from fundmodel.rollout.config import GateConfig
from fundmodel.rollout.gate_catalogue import ClientEvidence, alias_clients_gate, breaking_clients_gate
from fundmodel.rollout.gates import GateResult
from fundmodel.rollout.phases import Phase
from fundmodel.rollout.status import ObservationReset
from fundmodel.usage.service import client_traffic, clients_with_kinds


@dataclass(frozen=True, slots=True)
class LedgerWindow:
    """The usage ledger over the client window: from which UTC day, and every client's validations."""

    since: date
    cutoff: datetime
    traffic: Mapping[str, int]
    """client id -> validations of any kind counted since ``since``."""


def read_ledger_window(engine: Engine, window: timedelta, now: datetime) -> LedgerWindow:
    """Every client's validations over ``window``, read once for the cohort preview's shares and the
    client gates (whole UTC days: the ledger counts per day)."""
    cutoff = now - window
    since = cutoff.astimezone(UTC).date()
    try:
        traffic = client_traffic(engine, since)
    except SQLAlchemyError as exc:
        raise StoreUnavailableError(f"usage ledger unreadable: {type(exc).__name__}") from exc
    return LedgerWindow(since, cutoff, traffic)


def client_gate(
    engine: Engine,
    config: GateConfig,
    target: Phase,
    ledger: LedgerWindow,
    keys: ClientKeys,
    exemptions: Sequence[ClientExemption],
    reset: ObservationReset | None,
) -> tuple[GateResult, ClientGateReport]:
    """Who would break at ``target``: before enforce 100 % the clients sending what enforce rejects,
    before the Sunset step the clients sending aliases."""
    kinds = ALIAS_KINDS if target is Phase.SUNSET else ENFORCE_BREAKING_KINDS
    try:
        found = clients_with_kinds(engine, ledger.since, kinds)
    except SQLAlchemyError as exc:
        raise StoreUnavailableError(f"usage ledger unreadable: {type(exc).__name__}") from exc
    # A reset after a fixed incident drops the clients that have not sent it again since.
    cutoff = ledger.cutoff if reset is None else max(ledger.cutoff, reset.at)
    evidence = ClientEvidence(
        window=config.client_usage_window,
        cutoff=cutoff,
        usage=tuple(
            ClientKindUsage(
                u.client_id,
                u.client_name,
                u.count,
                u.last_seen_at,
                u.endpoints,
                u.spellings,
                u.kind_counts,
            )
            for u in found
        ),
        ledger_validations=sum(ledger.traffic.values()),
        exemptions=tuple(exemptions),
        revoked_client_ids=keys.revoked_client_ids,
    )
    if target is Phase.SUNSET:
        return alias_clients_gate(evidence)
    return breaking_clients_gate(evidence)
