"""Per-client exemptions from the client gates: granted, revoked and read, each change audited.

A grant or a revoke is one transaction of the mode store: the ``client_exemptions`` row and a
``stage_validation_audit`` row (source ``rollout``, the mode unchanged, the actor and reason, the
exemption in ``extra``) commit together, exactly as ``extend-warn`` records its decision. An exemption
ends by itself at ``expires_at``; granting again for the same client closes the one in force (the audit
row of the new grant says so), so a client holds at most one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Row, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from fundmodel.db.exemption_tables import client_exemptions as exemptions
from fundmodel.db.mode_request import ModeChangeSource, ModeWriteRequest
from fundmodel.db.mode_store import ModeChange, ModeStore, ModeTransaction
from fundmodel.db.tables import api_keys
from fundmodel.db.values import as_utc
from fundmodel.errors import InvalidInputError, OperationRefusedError, StoreUnavailableError
from fundmodel.rollout.client_gates import ClientExemption
from fundmodel.validation import ValidationMode

GRANT_ACTION = "exempt_client"
"""The ``rollout.action`` of a grant's audit row."""
REVOKE_ACTION = "revoke_exemption"
"""The ``rollout.action`` of a revoke's audit row."""


@dataclass(frozen=True, slots=True)
class ExemptionChange:
    """What a grant or a revoke wrote: its audit row and the exemption it created or closed."""

    change: ModeChange
    exemption: ClientExemption
    superseded: tuple[int, ...] = ()
    """Exemptions of the same client a grant closed."""


def grant_exemption(
    store: ModeStore, *, client: str, until: datetime, actor: str, reason: str
) -> ExemptionChange:
    """Exempt the API key named ``client`` until ``until``; refused for a name that is no active key."""
    # Stored in UTC: SQLite keeps the wall time only, and "in force" compares it with UTC now.
    until = until.astimezone(UTC)

    def work(transaction: ModeTransaction) -> ExemptionChange:
        connection = transaction.connection
        client_id = _active_key_client_id(connection, client)
        stored = transaction.read_locked()
        change = transaction.write(
            _audit_request(
                stored.state.mode,
                stored.state.canary_percent,
                actor=actor,
                reason=reason,
                action=GRANT_ACTION,
                exemption={"client": client, "client_id": client_id, "until": until.isoformat()},
            )
        )
        now = change.changed_at
        superseded = tuple(
            connection.execute(
                update(exemptions)
                .where(*_in_force(now), exemptions.c.client_id == client_id)
                .values(
                    revoked_at=now,
                    revoked_by=actor,
                    revoke_reason="superseded by a new exemption",
                    revoke_audit_id=change.audit_id,
                )
                .returning(exemptions.c.id)
            ).scalars()
        )
        exemption_id = connection.execute(
            insert(exemptions)
            .values(
                client_id=client_id,
                client_name=client,
                granted_at=now,
                expires_at=until,
                granted_by=actor,
                reason=reason,
                grant_audit_id=change.audit_id,
            )
            .returning(exemptions.c.id)
        ).scalar_one()
        exemption = ClientExemption(int(exemption_id), client_id, client, now, until, actor, reason)
        return ExemptionChange(change, exemption, tuple(int(i) for i in superseded))

    return store.transact(work)


def revoke_exemption(store: ModeStore, *, client: str, actor: str, reason: str) -> ExemptionChange:
    """Close the exemption of ``client`` in force now; refused when it holds none."""

    def work(transaction: ModeTransaction) -> ExemptionChange:
        connection = transaction.connection
        now = datetime.now(UTC)
        row = connection.execute(
            select(exemptions)
            .where(*_in_force(now), exemptions.c.client_name == client)
            .order_by(exemptions.c.id.desc())
            .limit(1)
        ).first()
        if row is None:
            raise OperationRefusedError(f"{client!r} holds no exemption in force: nothing to revoke")
        held = _exemption(row)
        stored = transaction.read_locked()
        change = transaction.write(
            _audit_request(
                stored.state.mode,
                stored.state.canary_percent,
                actor=actor,
                reason=reason,
                action=REVOKE_ACTION,
                exemption={"client": client, "client_id": held.client_id, "id": held.exemption_id},
            )
        )
        connection.execute(
            update(exemptions)
            .where(exemptions.c.id == held.exemption_id)
            .values(
                revoked_at=change.changed_at,
                revoked_by=actor,
                revoke_reason=reason,
                revoke_audit_id=change.audit_id,
            )
        )
        return ExemptionChange(change, held)

    return store.transact(work)


def exemptions_in_force(engine: Engine, now: datetime) -> list[ClientExemption]:
    """Every exemption neither revoked nor expired at ``now``, soonest to expire first."""
    query = select(exemptions).where(*_in_force(now)).order_by(exemptions.c.expires_at, exemptions.c.id)
    try:
        with engine.connect() as connection:
            return [_exemption(row) for row in connection.execute(query)]
    except SQLAlchemyError as exc:
        raise StoreUnavailableError(f"client exemptions unreadable: {type(exc).__name__}") from exc


def _in_force(now: datetime) -> tuple[Any, ...]:
    return (exemptions.c.revoked_at.is_(None), exemptions.c.expires_at > now)


def _active_key_client_id(connection: Connection, name: str) -> str:
    key_id = connection.execute(
        select(api_keys.c.id).where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
    ).scalar()
    if key_id is None:
        raise InvalidInputError(
            f"unknown client {name!r}: not the name of an active API key (see `fundmodel keys list`)",
            field="client",
        )
    return f"key-{int(key_id)}"


def _audit_request(
    mode: ValidationMode,
    canary_percent: float,
    *,
    actor: str,
    reason: str,
    action: str,
    exemption: dict[str, Any],
) -> ModeWriteRequest:
    """The unchanged mode, written again so the audit row records who exempted whom, when and why."""
    return ModeWriteRequest.checked(
        mode,
        canary_percent,
        actor=actor,
        reason=reason,
        source=ModeChangeSource.ROLLOUT,
        extra={"rollout": {"action": action}, "exemption": exemption},
    )


def _exemption(row: Row[Any]) -> ClientExemption:
    return ClientExemption(
        int(row.id),
        str(row.client_id),
        str(row.client_name),
        as_utc(row.granted_at),
        as_utc(row.expires_at),
        str(row.granted_by),
        str(row.reason),
    )
