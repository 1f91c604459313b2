"""Named canary clients and the Sunset step in the stage-validation mode store and its audit log.

``canary_clients`` holds API key names that ``enforce`` applies to whatever the canary percentage (a
hash percentage alone may hold none of a handful of client applications); ``aliases_rejected`` is the
Sunset step of the rollout ladder (enforced clients' deprecated aliases rejected). The audit log gets the
old and new value of both, so every past state can be read back whole. Existing rows get the defaults
(no named clients, aliases accepted), which is what they meant.

Revision ID: 0005_mode_canary_clients
Revises: 0004_batch_row_effects
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_mode_canary_clients"
down_revision: str | None = "0004_batch_row_effects"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NO_CLIENTS = sa.text("'[]'")


def upgrade() -> None:
    op.add_column(
        "stage_validation_state",
        sa.Column("canary_clients", sa.JSON, nullable=False, server_default=_NO_CLIENTS),
    )
    op.add_column(
        "stage_validation_state",
        sa.Column("aliases_rejected", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    for column in ("old_canary_clients", "new_canary_clients"):
        op.add_column(
            "stage_validation_audit", sa.Column(column, sa.JSON, nullable=False, server_default=_NO_CLIENTS)
        )
    for column in ("old_aliases_rejected", "new_aliases_rejected"):
        op.add_column(
            "stage_validation_audit",
            sa.Column(column, sa.Boolean, nullable=False, server_default=sa.false()),
        )


def downgrade() -> None:
    with op.batch_alter_table("stage_validation_audit") as batch:
        for column in (
            "new_aliases_rejected",
            "old_aliases_rejected",
            "new_canary_clients",
            "old_canary_clients",
        ):
            batch.drop_column(column)
    with op.batch_alter_table("stage_validation_state") as batch:
        batch.drop_column("aliases_rejected")
        batch.drop_column("canary_clients")
