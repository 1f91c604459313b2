"""The demo data set: one fund whose stored stages still carry legacy spellings, as real old rows do."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, insert, select

from fundmodel.db.tables import deal_opportunities, funds, portfolio_companies, portfolio_strategies

DEMO_FUND_NAME = "Demo Ventures Fund I"

# (name, stored stage as legacy systems wrote it, invested, reserve allocation)
DEMO_COMPANIES: tuple[tuple[str, str, float, float], ...] = (
    ("Acme Robotics", "Series A", 2_500_000.0, 3_000_000.0),
    ("Borealis Bio", "series-c+", 6_000_000.0, 2_000_000.0),
    ("Cobalt Payments", " seed ", 750_000.0, 1_500_000.0),
    ("Dune Analytics", "SEED", 1_000_000.0, 1_250_000.0),
    ("Ember Health", "Pre Seed", 250_000.0, 750_000.0),
    ("Fjord Logistics", "seed", 900_000.0, 1_000_000.0),
    ("Gale Energy", "series_a", 3_000_000.0, 2_500_000.0),
    ("Helix Security", "Series B", 4_500_000.0, 2_000_000.0),
    ("Ion Materials", "seriesA", 2_000_000.0, 2_000_000.0),
    ("Juniper AI", "pre-seed", 300_000.0, 600_000.0),
    ("Kestrel Space", "Series C+", 7_500_000.0, 0.0),
    ("Lumen Retail", "growth equity", 8_000_000.0, 0.0),
    ("Meridian Foods", "Pre-IPO", 5_000_000.0, 0.0),
    ("Nimbus Cloud", "series_b", 4_000_000.0, 1_500_000.0),
)

DEMO_DEALS: tuple[tuple[str, str], ...] = (
    ("Orbit Labs", "Seed Round"),
    ("Polar Data", "series-a"),
    ("Quartz Networks", "SERIES_B"),
    ("Raven Games", "angel"),
)

DEMO_STRATEGY_NAME = "Demo seed-heavy strategy"
DEMO_STRATEGY = {"pre_seed": 0.1, "seed": 0.4, "series_a": 0.3, "series_b": 0.2}


@dataclass(frozen=True, slots=True)
class SeedResult:
    fund_id: int
    created: bool
    companies: int


def seed_demo(engine: Engine) -> SeedResult:
    """Insert the demo fund, its companies, deals and a strategy; does nothing if the fund exists."""
    with engine.begin() as connection:
        existing = connection.execute(
            select(funds.c.id).where(funds.c.name == DEMO_FUND_NAME)
        ).scalar_one_or_none()
        if existing is not None:
            return SeedResult(int(existing), created=False, companies=0)
        fund_id = connection.execute(
            insert(funds)
            .values(
                name=DEMO_FUND_NAME,
                vintage_year=2024,
                committed_capital=100_000_000.0,
                management_fee_rate=0.02,
                carried_interest_rate=0.20,
            )
            .returning(funds.c.id)
        ).scalar_one()
        connection.execute(
            insert(portfolio_companies),
            [
                {
                    "fund_id": fund_id,
                    "name": name,
                    "stage": stage,
                    "invested": invested,
                    "reserve_allocation": reserve,
                }
                for name, stage, invested, reserve in DEMO_COMPANIES
            ],
        )
        connection.execute(
            insert(deal_opportunities),
            [{"fund_id": fund_id, "name": name, "stage": stage} for name, stage in DEMO_DEALS],
        )
        connection.execute(
            insert(portfolio_strategies).values(name=DEMO_STRATEGY_NAME, stage_allocation=DEMO_STRATEGY)
        )
    return SeedResult(int(fund_id), created=True, companies=len(DEMO_COMPANIES))
