"""The schema as SQLAlchemy Core tables, on one shared ``metadata``.

Stage columns are free text on purpose: legacy rows (``"Series A"``, ``"series-c+"``, ``" seed "``) must be
representable until the normalization job (issue 6) rewrites them and adds constraints. Other modules that
add tables import :data:`metadata` from here and list themselves in :mod:`fundmodel.db.schema`.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    false,
    func,
    text,
)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _money(name: str) -> Column[float]:
    # Amounts in the fund's currency; floats at the edges (JSON numbers), exact in storage.
    return Column(name, Numeric(20, 2, asdecimal=False), nullable=False)


def _optional_money(name: str, condition: str = ">= 0") -> Column[float]:
    # Column-level CHECKs: SQLite can add them with ALTER TABLE ADD COLUMN (no table rebuild, which
    # would drop the canonical-stage guard's triggers).
    check = CheckConstraint(f"{name} {condition}", name=name)
    return Column(name, Numeric(20, 2, asdecimal=False), check, nullable=True)


def _checked_rate(name: str, bounds: str) -> Column[float]:
    return Column(name, Float, CheckConstraint(f"{name} {bounds}", name=name), nullable=True)


def _created_at() -> Column[object]:
    return Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now())


funds = Table(
    "funds",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("vintage_year", Integer, nullable=False),
    _money("committed_capital"),
    Column("management_fee_rate", Float, nullable=False),
    Column("carried_interest_rate", Float, nullable=False),
    _created_at(),
    # The terms a forecast needs (revision 0013); null: the engine's documented default (docs/api.md).
    _checked_rate("management_fee_step_down_rate", "BETWEEN 0 AND 0.1"),
    _checked_rate("fund_expense_ratio", "BETWEEN 0 AND 0.2"),
    _checked_rate("preferred_return", "BETWEEN 0 AND 0.5"),
    _checked_rate("fund_life_years", "BETWEEN 1 AND 25"),
    _checked_rate("investment_period_years", "BETWEEN 0.25 AND 25"),
    _checked_rate("reserve_ratio", "BETWEEN 0 AND 0.95"),
    _checked_rate("recycling_ratio", "BETWEEN 0 AND 0.5"),
    Column(
        "strategy_id",
        Integer,
        ForeignKey("portfolio_strategies.id", ondelete="SET NULL"),
        nullable=True,
    ),
    _optional_money("paid_in"),
    _optional_money("distributed"),
)

portfolio_companies = Table(
    "portfolio_companies",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("fund_id", Integer, ForeignKey("funds.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("stage", Text, nullable=False),
    _money("invested"),
    _money("reserve_allocation"),
    Column("version", Integer, nullable=False, server_default="1"),
    _created_at(),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # What a forecast needs (revision 0013); null: the documented default derived from the stage profile.
    Column("entry_date", Date, nullable=True),
    Column("ownership", Float, CheckConstraint("ownership > 0 AND ownership <= 1", name="ownership")),
    _optional_money("last_round_post_money", "> 0"),
    Column("last_round_date", Date, nullable=True),
    Column(
        "status",
        String(16),
        CheckConstraint("status IN ('active', 'exited', 'written_off')", name="status"),
        nullable=False,
        server_default="active",
    ),
    _optional_money("realized_proceeds"),
    Index("ix_portfolio_companies_fund_id_id", "fund_id", "id"),
    Index("ix_portfolio_companies_fund_id_stage_id", "fund_id", "stage", "id"),
)

deal_opportunities = Table(
    "deal_opportunities",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("fund_id", Integer, ForeignKey("funds.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("stage", Text, nullable=False),
    _created_at(),
    Index("ix_deal_opportunities_fund_id_id", "fund_id", "id"),
)

portfolio_strategies = Table(
    "portfolio_strategies",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("stage_allocation", JSON, nullable=False),
    Column("version", Integer, nullable=False, server_default="1"),
    _created_at(),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("key_prefix", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    _created_at(),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    # Recorded at most once a minute per key, on a cache-miss lookup (revision 0006).
    Column("last_used_at", DateTime(timezone=True), nullable=True),
)

stage_validation_state = Table(
    "stage_validation_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("mode", String(16), nullable=False),
    Column("canary_percent", Float, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(100), nullable=False),
    # Named canary clients (API key names, a JSON list) and the Sunset step's flag (revision 0005).
    Column("canary_clients", JSON, nullable=False, server_default=text("'[]'")),
    Column("aliases_rejected", Boolean, nullable=False, server_default=false()),
    CheckConstraint("id = 1", name="single_row"),
    CheckConstraint("mode IN ('off', 'warn', 'enforce')", name="mode"),
    CheckConstraint("canary_percent >= 0 AND canary_percent <= 100", name="canary_percent"),
)

stage_validation_audit = Table(
    "stage_validation_audit",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("changed_at", DateTime(timezone=True), nullable=False),
    Column("old_mode", String(16), nullable=False),
    Column("old_canary_percent", Float, nullable=False),
    Column("new_mode", String(16), nullable=False),
    Column("new_canary_percent", Float, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("reason", Text, nullable=False),
    Column("source", String(32), nullable=False),
    Column("extra", JSON, nullable=False),
    Column("old_canary_clients", JSON, nullable=False, server_default=text("'[]'")),
    Column("new_canary_clients", JSON, nullable=False, server_default=text("'[]'")),
    Column("old_aliases_rejected", Boolean, nullable=False, server_default=false()),
    Column("new_aliases_rejected", Boolean, nullable=False, server_default=false()),
    Index("ix_stage_validation_audit_changed_at", "changed_at"),
)

stage_webhook_deliveries = Table(
    "stage_webhook_deliveries",
    metadata,
    # sha256 hex of (groupKey, fingerprint, startsAt): the primary key makes "seen before" one indexed
    # lookup and lets concurrent workers insert-or-ignore the same delivery without a race.
    Column("idempotency_key", String(64), primary_key=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("result", String(16), nullable=False),  # downgraded | unchanged
    Column("audit_id", Integer, nullable=True),  # the stage_validation_audit row of a downgrade
)
