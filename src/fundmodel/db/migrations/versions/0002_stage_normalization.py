"""Stage normalization bookkeeping: runs, batch progress and the per-row audit log.

The CHECK constraint that keeps stages canonical is not a revision: it may only be added once no
legacy value remains, so ``fundmodel db constrain-stages`` adds it after a clean normalization run.

Revision ID: 0002_stage_normalization
Revises: 0001_initial
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_stage_normalization"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stage_normalization_runs",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("target_run_id", sa.String(32), nullable=True),
        sa.Column("force_unknown", sa.Boolean, nullable=False),
        sa.Column("batch_size", sa.Integer, nullable=False),
        sa.Column("plan", sa.JSON, nullable=False),
        sa.Column("backup_file", sa.Text, nullable=True),
        sa.Column("backup_sha256", sa.String(64), nullable=True),
        sa.Column("row_counts_start", sa.JSON, nullable=True),
        sa.Column("row_counts_end", sa.JSON, nullable=True),
        sa.Column("rows_changed", sa.BigInteger, nullable=False),
        sa.Column("owner", sa.String(255), nullable=True),
        sa.Column("actor", sa.String(255), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_stage_normalization_runs"),
        sa.ForeignKeyConstraint(
            ["target_run_id"],
            ["stage_normalization_runs.id"],
            name="fk_stage_norm_runs_target_run_id",
        ),
    )
    op.create_table(
        "stage_normalization_batches",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("table_name", sa.String(64), nullable=False),
        sa.Column("batch_no", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("after_key", sa.Text, nullable=True),
        sa.Column("last_key", sa.Text, nullable=True),
        sa.Column("rows_scanned", sa.Integer, nullable=False),
        sa.Column("rows_changed", sa.Integer, nullable=False),
        sa.Column("rows_replanned", sa.Integer, nullable=False),
        sa.Column("rows_unknown", sa.Integer, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("committed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("run_id", "table_name", "batch_no", name="pk_stage_normalization_batches"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["stage_normalization_runs.id"], name="fk_stage_norm_batches_run_id"
        ),
    )
    op.create_table(
        "stage_normalization_audit",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("batch_no", sa.Integer, nullable=False),
        sa.Column("table_name", sa.String(64), nullable=False),
        sa.Column("row_id", sa.String(64), nullable=False),
        sa.Column("before_value", sa.Text, nullable=True),
        sa.Column("after_value", sa.Text, nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_stage_normalization_audit"),
    )
    op.create_index(
        "uq_stage_normalization_audit_row",
        "stage_normalization_audit",
        ["run_id", "table_name", "row_id"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("uq_stage_normalization_audit_row", "stage_normalization_audit")
    op.drop_table("stage_normalization_audit")
    op.drop_table("stage_normalization_batches")
    op.drop_table("stage_normalization_runs")
