"""When each API key was last used, so `fundmodel keys list` can map log and status entries to clients.

Written at most once per key per ``LAST_USED_RESOLUTION`` (see :mod:`fundmodel.auth.service`), never per
request. Existing keys start with no recorded use (NULL): nothing was recorded before.

Revision ID: 0006_api_key_last_used
Revises: 0005_mode_canary_clients
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_api_key_last_used"
down_revision: str | None = "0005_mode_canary_clients"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("last_used_at")
