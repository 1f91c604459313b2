"""What a forecast of a stored fund needs: company entry, ownership, last round and status; fund terms.

Every new column is nullable (or has a server default), so existing rows stay valid: a null means "use
the documented default" (docs/api.md, "Forecast inputs"). Constraints are column-level so that SQLite can
add them with ``ALTER TABLE ADD COLUMN`` instead of rebuilding ``portfolio_companies``, which would drop
the canonical-stage guard's triggers (``fundmodel db constrain-stages``). The one cross-column rule
(realized proceeds only on an exited or written-off company) is the service's, checked on every write.

Revision ID: 0013_forecast_inputs
Revises: 0012_sweep_jobs
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0013_forecast_inputs"
down_revision: str | None = "0012_sweep_jobs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MONEY = sa.Numeric(20, 2, asdecimal=False)

_COMPANY_COLUMNS = (
    "entry_date",
    "ownership",
    "last_round_post_money",
    "last_round_date",
    "status",
    "realized_proceeds",
)
_UNCHECKED_COMPANY_COLUMNS = ("entry_date", "last_round_date")
_FUND_COLUMNS = (
    "management_fee_step_down_rate",
    "fund_expense_ratio",
    "preferred_return",
    "fund_life_years",
    "investment_period_years",
    "reserve_ratio",
    "recycling_ratio",
    "strategy_id",
    "paid_in",
    "distributed",
)


def _check(table: str, name: str, condition: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(condition, name=op.f(f"ck_{table}_{name}"))


def _company(
    name: str,
    kind: sa.types.TypeEngine[Any],
    condition: str | None,
    *,
    nullable: bool = True,
    server_default: str | None = None,
) -> None:
    constraints = [] if condition is None else [_check("portfolio_companies", name, condition)]
    column = sa.Column(name, kind, *constraints, nullable=nullable, server_default=server_default)
    op.add_column("portfolio_companies", column)


def _fund(name: str, kind: sa.types.TypeEngine[Any], condition: str) -> None:
    op.add_column("funds", sa.Column(name, kind, _check("funds", name, condition), nullable=True))


def upgrade() -> None:
    _company("entry_date", sa.Date(), None)
    _company("ownership", sa.Float(), "ownership > 0 AND ownership <= 1")
    _company("last_round_post_money", _MONEY, "last_round_post_money > 0")
    _company("last_round_date", sa.Date(), None)
    _company(
        "status",
        sa.String(16),
        "status IN ('active', 'exited', 'written_off')",
        nullable=False,
        server_default="active",
    )
    _company("realized_proceeds", _MONEY, "realized_proceeds >= 0")

    _fund("management_fee_step_down_rate", sa.Float(), "management_fee_step_down_rate BETWEEN 0 AND 0.1")
    _fund("fund_expense_ratio", sa.Float(), "fund_expense_ratio BETWEEN 0 AND 0.2")
    _fund("preferred_return", sa.Float(), "preferred_return BETWEEN 0 AND 0.5")
    _fund("fund_life_years", sa.Float(), "fund_life_years BETWEEN 1 AND 25")
    _fund("investment_period_years", sa.Float(), "investment_period_years BETWEEN 0.25 AND 25")
    _fund("reserve_ratio", sa.Float(), "reserve_ratio BETWEEN 0 AND 0.95")
    _fund("recycling_ratio", sa.Float(), "recycling_ratio BETWEEN 0 AND 0.5")
    op.add_column(
        "funds",
        sa.Column(
            "strategy_id",
            sa.Integer(),
            sa.ForeignKey(
                "portfolio_strategies.id",
                name=op.f("fk_funds_strategy_id_portfolio_strategies"),
                ondelete="SET NULL",
            ),
            nullable=True,
        ),
        inline_references=True,
    )
    _fund("paid_in", _MONEY, "paid_in >= 0")
    _fund("distributed", _MONEY, "distributed >= 0")


def downgrade() -> None:
    # SQLite rebuilds each table here and would copy a column's CHECK after the column is gone: drop
    # the checks first (PostgreSQL drops them with the column anyway).
    with op.batch_alter_table("funds") as batch:
        for name in reversed(_FUND_COLUMNS):
            if name != "strategy_id":
                batch.drop_constraint(op.f(f"ck_funds_{name}"), type_="check")
            batch.drop_column(name)
    with op.batch_alter_table("portfolio_companies") as batch:
        for name in reversed(_COMPANY_COLUMNS):
            if name not in _UNCHECKED_COMPANY_COLUMNS:
                batch.drop_constraint(op.f(f"ck_portfolio_companies_{name}"), type_="check")
            batch.drop_column(name)
