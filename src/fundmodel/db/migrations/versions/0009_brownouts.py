"""Brownout windows (``stage_brownouts``): scheduled periods of enforce before the Sunset.

See :mod:`fundmodel.db.brownout_tables`. The table starts empty.

Revision ID: 0009_brownouts
Revises: 0008_client_exemptions
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_brownouts"
down_revision: str | None = "0008_client_exemptions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stage_brownouts",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("canary_percent", sa.Float, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.String(100), nullable=True),
        sa.Column("end_reason", sa.Text, nullable=True),
        sa.Column("end_source", sa.String(16), nullable=True),
        sa.CheckConstraint("ends_at > starts_at", name="ck_stage_brownouts_window"),
        sa.CheckConstraint(
            "canary_percent > 0 AND canary_percent <= 100", name="ck_stage_brownouts_canary_percent"
        ),
        sa.CheckConstraint(
            "end_source IS NULL OR end_source IN ('manual', 'alertmanager')",
            name="ck_stage_brownouts_end_source",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_stage_brownouts"),
    )
    op.create_index("ix_stage_brownouts_ends_at", "stage_brownouts", ["ends_at"])


def downgrade() -> None:
    op.drop_index("ix_stage_brownouts_ends_at", table_name="stage_brownouts")
    op.drop_table("stage_brownouts")
