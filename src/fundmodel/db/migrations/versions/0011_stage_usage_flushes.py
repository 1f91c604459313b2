"""Flush markers of the stage-usage ledger (``stage_usage_flushes``): one row per committed flush.

Written in the same transaction as a flush's count upserts, so a worker retrying a flush whose commit did
succeed (the connection was lost while committing) finds its id and does not add the counts twice.

Revision ID: 0011_stage_usage_flushes
Revises: 0010_notifications
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_stage_usage_flushes"
down_revision: str | None = "0010_notifications"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stage_usage_flushes",
        sa.Column("flush_id", sa.String(36), nullable=False),
        sa.Column("flushed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("flush_id", name="pk_stage_usage_flushes"),
    )
    op.create_index("ix_stage_usage_flushes_flushed_at", "stage_usage_flushes", ["flushed_at"])


def downgrade() -> None:
    op.drop_index("ix_stage_usage_flushes_flushed_at", table_name="stage_usage_flushes")
    op.drop_table("stage_usage_flushes")
