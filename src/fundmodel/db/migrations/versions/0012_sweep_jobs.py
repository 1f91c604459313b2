"""Sweep jobs (``sweep_jobs``): sweeps, sensitivity runs and backsolves run by the servers' workers.

Revision ID: 0012_sweep_jobs
Revises: 0011_stage_usage_flushes
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_sweep_jobs"
down_revision: str | None = "0011_stage_usage_flushes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sweep_jobs",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("request", sa.JSON, nullable=False),
        sa.Column("warnings", sa.JSON, nullable=False),
        sa.Column("points_total", sa.Integer, nullable=False),
        sa.Column("points_done", sa.Integer, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", sa.JSON, nullable=True),
        sa.Column("error", sa.JSON, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_sweep_jobs"),
        sa.CheckConstraint("kind IN ('sweep', 'sensitivity', 'backsolve')", name="ck_sweep_jobs_kind"),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')",
            name="ck_sweep_jobs_status",
        ),
    )
    op.create_index("ix_sweep_jobs_client_id_status", "sweep_jobs", ["client_id", "status"])
    op.create_index("ix_sweep_jobs_status_created_at", "sweep_jobs", ["status", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_sweep_jobs_status_created_at", table_name="sweep_jobs")
    op.drop_index("ix_sweep_jobs_client_id_status", table_name="sweep_jobs")
    op.drop_table("sweep_jobs")
