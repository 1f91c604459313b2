"""Per-batch row effects of the stage-normalization job: rows its own transaction inserted and deleted.

``fundmodel db verify`` used to compare each run's table row counts at start and end, so any ordinary
insert or delete by the application during (or after) a run failed the check for good. Each batch now
records what its own transaction did to the row count of the table it works on (both must be 0: the job
only ever updates), and the check reads those. NULL means the batch predates this revision (not measured).

Revision ID: 0004_batch_row_effects
Revises: 0003_webhook_deliveries
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_batch_row_effects"
down_revision: str | None = "0003_webhook_deliveries"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no default: adding them is a catalog-only change on both backends (no table rewrite).
    op.add_column("stage_normalization_batches", sa.Column("rows_inserted", sa.Integer, nullable=True))
    op.add_column("stage_normalization_batches", sa.Column("rows_deleted", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("stage_normalization_batches") as batch:
        batch.drop_column("rows_deleted")
        batch.drop_column("rows_inserted")
