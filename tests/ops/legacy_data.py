"""Seeded legacy stage data for the ops tests: a known original value per row."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine, create_engine, insert, select, text

from fundmodel.db.migrate import upgrade_to_head
from fundmodel.db.tables import deal_opportunities, funds, portfolio_companies, portfolio_strategies
from fundmodel.ops.connection import open_engine
from fundmodel.ops.planning import classify_stage_value

PG_SERVER_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"

CANONICAL = ["pre_seed", "seed", "series_a", "series_b", "series_c", "series_d", "growth", "late_stage"]
LEGACY = [
    " Seed ",
    "SEED",
    "Series A",
    "series-a",
    "series-c+",
    "Series C+",
    "Pre Seed",
    "angel",
    "growth stage",
    "late-stage",
    "Pre IPO",
    "Series E",
    "seriesB",
    "seed\u00a0round",
]
UNKNOWN = ["mezzanine", "", "pre", "a"]


def postgres_available() -> bool:
    engine = create_engine(PG_SERVER_URL, connect_args={"connect_timeout": 2})
    try:
        with engine.connect():
            return True
    except Exception:
        return False
    finally:
        engine.dispose()


@contextmanager
def scratch_postgres_url() -> Iterator[str]:
    name = f"fm_ops_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_SERVER_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def migrate(url: str) -> None:
    engine = open_engine(url)
    try:
        upgrade_to_head(engine)
    finally:
        engine.dispose()


@dataclass
class Seeded:
    companies: dict[int, str]
    deals: dict[int, str]

    def original(self, table: str) -> dict[int, str]:
        return self.companies if table == "portfolio_companies" else self.deals

    def expected_changes(self) -> int:
        return sum(
            classify_stage_value(v)[0] == "change"
            for values in (self.companies, self.deals)
            for v in values.values()
        )


def seed_legacy(
    engine: Engine,
    *,
    companies: int = 200,
    deals: int = 100,
    seed: int = 7,
    legacy_share: float = 0.3,
    unknown: int = 0,
) -> Seeded:
    rng = random.Random(seed)

    def value() -> str:
        return rng.choice(LEGACY) if rng.random() < legacy_share else rng.choice(CANONICAL)

    company_values = [value() for _ in range(companies)]
    deal_values = [value() for _ in range(deals)]
    for index in range(unknown):
        company_values[rng.randrange(companies)] = UNKNOWN[index % len(UNKNOWN)]
    with engine.begin() as connection:
        fund_id = connection.execute(
            insert(funds)
            .values(
                name=f"Legacy Fund {seed}",
                vintage_year=2020,
                committed_capital=100_000_000,
                management_fee_rate=0.02,
                carried_interest_rate=0.2,
            )
            .returning(funds.c.id)
        ).scalar_one()
        if company_values:
            connection.execute(
                insert(portfolio_companies),
                [
                    {
                        "fund_id": fund_id,
                        "name": f"Company {i}",
                        "stage": stage,
                        "invested": 1_000_000,
                        "reserve_allocation": 500_000,
                    }
                    for i, stage in enumerate(company_values)
                ],
            )
        if deal_values:
            connection.execute(
                insert(deal_opportunities),
                [
                    {"fund_id": fund_id, "name": f"Deal {i}", "stage": stage}
                    for i, stage in enumerate(deal_values)
                ],
            )
        connection.execute(
            insert(portfolio_strategies).values(
                name=f"Strategy {seed}", stage_allocation={"seed": 0.5, "series_a": 0.5}
            )
        )
        company_rows = dict(
            connection.execute(select(portfolio_companies.c.id, portfolio_companies.c.stage)).all()
        )
        deal_rows = dict(
            connection.execute(select(deal_opportunities.c.id, deal_opportunities.c.stage)).all()
        )
    return Seeded(companies=company_rows, deals=deal_rows)


def current_values(engine: Engine, table: str) -> dict[int, str]:
    source = portfolio_companies if table == "portfolio_companies" else deal_opportunities
    with engine.connect() as connection:
        return dict(connection.execute(select(source.c.id, source.c.stage)).all())


def audit_rows(engine: Engine, run_id: str | None = None) -> list[tuple[str, str, str, str, str]]:
    query = "SELECT run_id, table_name, row_id, before_value, after_value FROM stage_normalization_audit"
    params = {}
    if run_id is not None:
        query += " WHERE run_id = :run_id"
        params["run_id"] = run_id
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(query + " ORDER BY id"), params)]
