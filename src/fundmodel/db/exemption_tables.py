"""Per-client rollout exemptions: a client allowed to keep sending what a gate counts, until a time.

One row is one grant (``fundmodel rollout exempt --client NAME --until … --reason …``): which client
(``client_id`` as the usage ledger and the canary hash know it, ``key-<id>``, and its key name), when it
ends by itself (``expires_at``), who granted it and why, and the ``stage_validation_audit`` row written in
the same transaction. A revoke (``--revoke``) or a later grant for the same client closes it
(``revoked_*``, with its own audit row). A row is in force while ``revoked_at`` is null and
``expires_at`` is in the future: expiry needs no job.

A table rather than audit rows alone: the gate asks "which exemptions are in force now" on every
``rollout status``, one indexed query here, where the audit log would have to be replayed from its start.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, ForeignKey, Index, Integer, String, Table, Text

from fundmodel.db.tables import metadata

client_exemptions = Table(
    "client_exemptions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("client_id", String(128), nullable=False),
    Column("client_name", String(100), nullable=False),
    Column("granted_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("granted_by", String(100), nullable=False),
    Column("reason", Text, nullable=False),
    Column(
        "grant_audit_id",
        Integer,
        ForeignKey("stage_validation_audit.id", name="fk_client_exemptions_grant_audit"),
        nullable=False,
    ),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("revoked_by", String(100), nullable=True),
    Column("revoke_reason", Text, nullable=True),
    Column(
        "revoke_audit_id",
        Integer,
        ForeignKey("stage_validation_audit.id", name="fk_client_exemptions_revoke_audit"),
        nullable=True,
    ),
    # "In force now" and "in force for this client" are the two reads.
    Index("ix_client_exemptions_client_id", "client_id"),
    Index("ix_client_exemptions_expires_at", "expires_at"),
)
