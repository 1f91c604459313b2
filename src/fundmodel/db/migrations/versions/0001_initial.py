"""Initial schema: funds, companies, deals, strategies, API keys and the stage-validation mode store.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _money(name: str) -> sa.Column[float]:
    return sa.Column(name, sa.Numeric(20, 2, asdecimal=False), nullable=False)


def _timestamp(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    op.create_table(
        "funds",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("vintage_year", sa.Integer, nullable=False),
        _money("committed_capital"),
        sa.Column("management_fee_rate", sa.Float, nullable=False),
        sa.Column("carried_interest_rate", sa.Float, nullable=False),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_funds"),
        sa.UniqueConstraint("name", name="uq_funds_name"),
    )
    op.create_table(
        "portfolio_companies",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("fund_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("stage", sa.Text, nullable=False),
        _money("invested"),
        _money("reserve_allocation"),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_portfolio_companies"),
        sa.ForeignKeyConstraint(
            ["fund_id"],
            ["funds.id"],
            name="fk_portfolio_companies_fund_id_funds",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_portfolio_companies_fund_id_id", "portfolio_companies", ["fund_id", "id"])
    op.create_index(
        "ix_portfolio_companies_fund_id_stage_id", "portfolio_companies", ["fund_id", "stage", "id"]
    )
    op.create_table(
        "deal_opportunities",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("fund_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("stage", sa.Text, nullable=False),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_deal_opportunities"),
        sa.ForeignKeyConstraint(
            ["fund_id"],
            ["funds.id"],
            name="fk_deal_opportunities_fund_id_funds",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_deal_opportunities_fund_id_id", "deal_opportunities", ["fund_id", "id"])
    op.create_table(
        "portfolio_strategies",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("stage_allocation", sa.JSON, nullable=False),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_portfolio_strategies"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("key_prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        _timestamp("created_at"),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("name", name="uq_api_keys_name"),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )
    op.create_table(
        "stage_validation_state",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("canary_percent", sa.Float, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(100), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_stage_validation_state"),
        sa.CheckConstraint("id = 1", name="ck_stage_validation_state_single_row"),
        sa.CheckConstraint("mode IN ('off', 'warn', 'enforce')", name="ck_stage_validation_state_mode"),
        sa.CheckConstraint(
            "canary_percent >= 0 AND canary_percent <= 100",
            name="ck_stage_validation_state_canary_percent",
        ),
    )
    op.create_table(
        "stage_validation_audit",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("old_mode", sa.String(16), nullable=False),
        sa.Column("old_canary_percent", sa.Float, nullable=False),
        sa.Column("new_mode", sa.String(16), nullable=False),
        sa.Column("new_canary_percent", sa.Float, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("extra", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_stage_validation_audit"),
    )
    op.create_index("ix_stage_validation_audit_changed_at", "stage_validation_audit", ["changed_at"])


def downgrade() -> None:
    for table in (
        "stage_validation_audit",
        "stage_validation_state",
        "api_keys",
        "portfolio_strategies",
        "deal_opportunities",
        "portfolio_companies",
        "funds",
    ):
        op.drop_table(table)
