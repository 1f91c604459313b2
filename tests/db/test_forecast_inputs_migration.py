"""Revision 0013 adds the forecast inputs: existing rows stay valid, the schema matches the metadata."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from fundmodel.db.engine import create_db_engine
from fundmodel.db.migrate import alembic_config, upgrade_to_head
from fundmodel.db.tables import funds, metadata, portfolio_companies
from tests.conftest import BACKENDS, _fresh_postgres_url

BEFORE = "0012_sweep_jobs"
NEW_COMPANY_COLUMNS = {
    "entry_date",
    "ownership",
    "last_round_post_money",
    "last_round_date",
    "status",
    "realized_proceeds",
}


@pytest.fixture(params=BACKENDS)
def unmigrated_url(request: pytest.FixtureRequest, tmp_path: Path, postgres_database: str | None) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'before-0013.sqlite3'}"
    if postgres_database is None:
        pytest.skip("PostgreSQL not reachable")
    return _fresh_postgres_url(postgres_database)


def _upgrade(engine: Engine, revision: str) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def test_upgrade_keeps_existing_rows_valid_and_matches_the_metadata(unmigrated_url: str) -> None:
    engine = create_db_engine(unmigrated_url)
    try:
        _upgrade(engine, BEFORE)
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO funds (name, vintage_year, committed_capital, management_fee_rate, "
                    "carried_interest_rate) VALUES ('Old Fund', 2020, 1000000, 0.02, 0.2)"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO portfolio_companies (fund_id, name, stage, invested, reserve_allocation) "
                    "SELECT id, 'Old Co', 'Series A', 500000, 0 FROM funds"
                )
            )
        upgrade_to_head(engine)
        with engine.connect() as connection:
            company = connection.execute(portfolio_companies.select()).mappings().one()
            fund = connection.execute(funds.select()).mappings().one()
            differences = compare_metadata(MigrationContext.configure(connection), metadata)
        assert company["status"] == "active"
        assert all(company[name] is None for name in NEW_COMPANY_COLUMNS - {"status"})
        assert fund["strategy_id"] is None
        assert fund["paid_in"] is None
        # SQLite adds the foreign key inline, without a constraint name; its meaning is checked below.
        mine = [
            diff
            for diff in differences
            if _about(diff, {"funds", "portfolio_companies"})
            and not (isinstance(diff, tuple) and diff[0] in {"add_fk", "remove_fk"})
        ]
        assert mine == []
        (strategy_key,) = [
            key
            for key in inspect(engine).get_foreign_keys("funds")
            if key["constrained_columns"] == ["strategy_id"]
        ]
        assert strategy_key["referred_table"] == "portfolio_strategies"
        if engine.dialect.name == "postgresql":
            assert strategy_key["options"].get("ondelete") == "SET NULL"
        else:  # SQLite's reflection does not parse an inline REFERENCES clause's actions
            with engine.connect() as connection:
                ddl = connection.execute(text("SELECT sql FROM sqlite_master WHERE name = 'funds'")).scalar()
            assert "REFERENCES portfolio_strategies (id) ON DELETE SET NULL" in str(ddl)
        columns = {column["name"] for column in inspect(engine).get_columns("portfolio_companies")}
        assert columns >= NEW_COMPANY_COLUMNS
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("statement", "constraint"),
    [
        ("UPDATE portfolio_companies SET ownership = 1.5", "ownership"),
        ("UPDATE portfolio_companies SET ownership = 0", "ownership"),
        ("UPDATE portfolio_companies SET status = 'sold'", "status"),
        ("UPDATE portfolio_companies SET realized_proceeds = -1", "realized_proceeds"),
        ("UPDATE portfolio_companies SET last_round_post_money = 0", "last_round_post_money"),
        ("UPDATE funds SET reserve_ratio = 0.99", "reserve_ratio"),
        ("UPDATE funds SET fund_life_years = 0.5", "fund_life_years"),
        ("UPDATE funds SET paid_in = -5", "paid_in"),
    ],
)
def test_the_database_refuses_out_of_range_values(engine: Engine, statement: str, constraint: str) -> None:
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO funds (name, vintage_year, committed_capital, management_fee_rate, "
                "carried_interest_rate) VALUES ('Checked Fund', 2020, 1000000, 0.02, 0.2)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO portfolio_companies (fund_id, name, stage, invested, reserve_allocation) "
                "SELECT id, 'Checked Co', 'seed', 1, 0 FROM funds"
            )
        )
    with pytest.raises(IntegrityError, match=constraint), engine.begin() as connection:
        connection.execute(text(statement))


def _about(difference: object, tables: set[str]) -> bool:
    # compare_metadata yields tuples (or lists of tuples for column modifications) naming the table.
    items = difference if isinstance(difference, list) else [difference]
    for item in items:
        for part in item:
            name = getattr(part, "name", None) if not isinstance(part, str) else part
            table = getattr(part, "table", None)
            if name in tables or getattr(table, "name", None) in tables:
                return True
    return False


def test_downgrade_removes_the_columns_and_upgrade_restores_them(unmigrated_url: str) -> None:
    engine = create_db_engine(unmigrated_url)
    try:
        upgrade_to_head(engine)
        _downgrade(engine, BEFORE)
        columns = {column["name"] for column in inspect(engine).get_columns("portfolio_companies")}
        fund_columns = {column["name"] for column in inspect(engine).get_columns("funds")}
        assert not columns & NEW_COMPANY_COLUMNS
        assert "strategy_id" not in fund_columns
        upgrade_to_head(engine)
        columns = {column["name"] for column in inspect(engine).get_columns("portfolio_companies")}
        assert columns >= NEW_COMPANY_COLUMNS
    finally:
        engine.dispose()


def _downgrade(engine: Engine, revision: str) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
