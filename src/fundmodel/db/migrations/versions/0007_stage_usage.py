"""The stage-usage ledger (``stage_usage``): exact per-client daily counts of stage validations.

See :mod:`fundmodel.db.usage_tables` for what a row counts. The table starts empty: nothing was counted
per client before this revision (the sampled offender log is not a count).

Revision ID: 0007_stage_usage
Revises: 0006_api_key_last_used
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_stage_usage"
down_revision: str | None = "0006_api_key_last_used"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stage_usage",
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("client_id", sa.String(128), nullable=False),
        sa.Column("endpoint", sa.String(128), nullable=False),
        sa.Column("field", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("spelling", sa.String(64), nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client_name", sa.String(100), nullable=False),
        sa.CheckConstraint(
            "kind IN ('valid', 'alias', 'unknown', 'sum', 'rejected')", name="ck_stage_usage_kind"
        ),
        sa.CheckConstraint("count > 0", name="ck_stage_usage_count"),
        sa.PrimaryKeyConstraint(
            "day", "client_id", "endpoint", "field", "kind", "spelling", name="pk_stage_usage"
        ),
    )
    op.create_index("ix_stage_usage_day_client_id", "stage_usage", ["day", "client_id"])
    op.create_index("ix_stage_usage_client_id_day", "stage_usage", ["client_id", "day"])


def downgrade() -> None:
    op.drop_index("ix_stage_usage_client_id_day", table_name="stage_usage")
    op.drop_index("ix_stage_usage_day_client_id", table_name="stage_usage")
    op.drop_table("stage_usage")
