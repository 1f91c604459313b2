"""Per-client rollout exemptions (``client_exemptions``): see :mod:`fundmodel.db.exemption_tables`.

Exemptions recorded before this revision lived only in ``extend-warn``'s audit extra (a list of names
with no per-client expiry); they are not carried over: none of them exempted a client from a gate.

Revision ID: 0008_client_exemptions
Revises: 0007_stage_usage
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_client_exemptions"
down_revision: str | None = "0007_stage_usage"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "client_exemptions",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("client_id", sa.String(128), nullable=False),
        sa.Column("client_name", sa.String(100), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("granted_by", sa.String(100), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("grant_audit_id", sa.Integer, nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(100), nullable=True),
        sa.Column("revoke_reason", sa.Text, nullable=True),
        sa.Column("revoke_audit_id", sa.Integer, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_client_exemptions"),
        sa.ForeignKeyConstraint(
            ["grant_audit_id"], ["stage_validation_audit.id"], name="fk_client_exemptions_grant_audit"
        ),
        sa.ForeignKeyConstraint(
            ["revoke_audit_id"], ["stage_validation_audit.id"], name="fk_client_exemptions_revoke_audit"
        ),
    )
    op.create_index("ix_client_exemptions_client_id", "client_exemptions", ["client_id"])
    op.create_index("ix_client_exemptions_expires_at", "client_exemptions", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_client_exemptions_expires_at", table_name="client_exemptions")
    op.drop_index("ix_client_exemptions_client_id", table_name="client_exemptions")
    op.drop_table("client_exemptions")
