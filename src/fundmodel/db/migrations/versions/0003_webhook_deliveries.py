"""Alertmanager deliveries already handled, keyed by their idempotency key.

Until now the keys a downgrade acted on lived only in its audit row (``extra.idempotencyKeys``), so a
delivery that changed nothing (the mode was already lenient) was never remembered. The existing keys are
copied over so a repeat of an alert handled before the upgrade stays a duplicate.

Revision ID: 0003_webhook_deliveries
Revises: 0002_stage_normalization
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0003_webhook_deliveries"
down_revision: str | None = "0002_stage_normalization"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the tables as of this revision (migrations never import the live schema).
_audit = sa.table(
    "stage_validation_audit",
    sa.column("id", sa.Integer),
    sa.column("changed_at", sa.DateTime(timezone=True)),
    sa.column("source", sa.String),
    sa.column("extra", sa.JSON),
)


def upgrade() -> None:
    deliveries = op.create_table(
        "stage_webhook_deliveries",
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("result", sa.String(16), nullable=False),
        sa.Column("audit_id", sa.Integer, nullable=True),
        sa.PrimaryKeyConstraint("idempotency_key", name="pk_stage_webhook_deliveries"),
    )
    rows = op.get_bind().execute(
        sa.select(_audit.c.id, _audit.c.changed_at, _audit.c.extra)
        .where(_audit.c.source == "alertmanager")
        .order_by(_audit.c.id)
    )
    copied: dict[str, dict[str, Any]] = {}
    for audit_id, changed_at, extra in rows:
        keys = extra.get("idempotencyKeys") if isinstance(extra, dict) else None
        for key in keys if isinstance(keys, list) else ():
            if isinstance(key, str) and len(key) <= 64:
                copied.setdefault(
                    key,
                    {
                        "idempotency_key": key,
                        "received_at": changed_at,
                        "result": "downgraded",
                        "audit_id": audit_id,
                    },
                )
    if copied:
        op.bulk_insert(deliveries, list(copied.values()))


def downgrade() -> None:
    op.drop_table("stage_webhook_deliveries")
