"""The demo data set: one fund whose stored stages still carry legacy spellings, as real old rows do.

The fund is a 2024 vintage, about three years in: its companies carry what a forecast needs (entry,
ownership, last round, status), two positions have ended (an exit with its proceeds, write-offs), and the
fund has its terms, actuals and a strategy for the capital not yet invested, so a forecast of it means
something (issue 14).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Engine, insert, select

from fundmodel.db.tables import deal_opportunities, funds, portfolio_companies, portfolio_strategies

DEMO_FUND_NAME = "Demo Ventures Fund I"


@dataclass(frozen=True, slots=True)
class DemoCompany:
    name: str
    stage: str
    """The stored stage as legacy systems wrote it."""
    invested: float
    reserve_allocation: float
    entry_date: date
    ownership: float
    last_round_post_money: float
    last_round_date: date
    status: str = "active"
    realized_proceeds: float | None = None


DEMO_COMPANIES: tuple[DemoCompany, ...] = (
    DemoCompany(
        "Acme Robotics",
        "Series A",
        2_500_000.0,
        3_000_000.0,
        date(2024, 3, 14),
        0.045,
        58_000_000.0,
        date(2024, 3, 14),
    ),
    DemoCompany(
        "Borealis Bio",
        "series-c+",
        6_000_000.0,
        2_000_000.0,
        date(2024, 6, 3),
        0.022,
        310_000_000.0,
        date(2025, 9, 22),
    ),
    DemoCompany(
        "Cobalt Payments",
        " seed ",
        750_000.0,
        1_500_000.0,
        date(2025, 2, 10),
        0.05,
        16_000_000.0,
        date(2025, 2, 10),
    ),
    DemoCompany(
        "Dune Analytics",
        "SEED",
        1_000_000.0,
        1_250_000.0,
        date(2024, 9, 30),
        0.055,
        19_500_000.0,
        date(2024, 9, 30),
    ),
    # Failed before its seed round; a small asset sale returned something.
    DemoCompany(
        "Ember Health",
        "Pre Seed",
        250_000.0,
        0.0,
        date(2024, 4, 8),
        0.025,
        10_000_000.0,
        date(2024, 4, 8),
        "written_off",
        20_000.0,
    ),
    # Shut down; nothing recovered (null proceeds on a write-off).
    DemoCompany(
        "Fjord Logistics",
        "seed",
        900_000.0,
        0.0,
        date(2024, 5, 20),
        0.055,
        17_000_000.0,
        date(2024, 5, 20),
        "written_off",
    ),
    DemoCompany(
        "Gale Energy",
        "series_a",
        3_000_000.0,
        2_500_000.0,
        date(2025, 1, 15),
        0.052,
        57_000_000.0,
        date(2025, 1, 15),
    ),
    DemoCompany(
        "Helix Security",
        "Series B",
        4_500_000.0,
        2_000_000.0,
        date(2024, 11, 4),
        0.033,
        140_000_000.0,
        date(2026, 4, 30),
    ),
    DemoCompany(
        "Ion Materials",
        "seriesA",
        2_000_000.0,
        2_000_000.0,
        date(2025, 7, 1),
        0.035,
        57_000_000.0,
        date(2025, 7, 1),
    ),
    DemoCompany(
        "Juniper AI", "pre-seed", 300_000.0, 600_000.0, date(2026, 2, 2), 0.03, 10_000_000.0, date(2026, 2, 2)
    ),
    DemoCompany(
        "Kestrel Space",
        "Series C+",
        7_500_000.0,
        0.0,
        date(2025, 3, 18),
        0.028,
        265_000_000.0,
        date(2025, 3, 18),
    ),
    DemoCompany(
        "Lumen Retail",
        "growth equity",
        8_000_000.0,
        0.0,
        date(2025, 10, 6),
        0.009,
        900_000_000.0,
        date(2025, 10, 6),
    ),
    # Acquired at 2.8x the fund's cost: the fund's one realization so far.
    DemoCompany(
        "Meridian Foods",
        "Pre-IPO",
        5_000_000.0,
        0.0,
        date(2024, 2, 26),
        0.003,
        1_650_000_000.0,
        date(2024, 2, 26),
        "exited",
        14_000_000.0,
    ),
    DemoCompany(
        "Nimbus Cloud",
        "series_b",
        4_000_000.0,
        1_500_000.0,
        date(2026, 5, 11),
        0.03,
        135_000_000.0,
        date(2026, 5, 11),
    ),
)

DEMO_DEALS: tuple[tuple[str, str], ...] = (
    ("Orbit Labs", "Seed Round"),
    ("Polar Data", "series-a"),
    ("Quartz Networks", "SERIES_B"),
    ("Raven Games", "angel"),
)

DEMO_STRATEGY_NAME = "Demo seed-heavy strategy"
DEMO_STRATEGY = {"pre_seed": 0.1, "seed": 0.4, "series_a": 0.3, "series_b": 0.2}

# The terms a forecast uses, and the actuals about three years in: every check above plus roughly three
# years of fees and expenses called; the exit and the asset sale distributed.
DEMO_FUND_TERMS = {
    "management_fee_step_down_rate": 0.015,
    "fund_expense_ratio": 0.01,
    "preferred_return": 0.08,
    "fund_life_years": 10.0,
    "investment_period_years": 5.0,
    "reserve_ratio": 0.45,
    "recycling_ratio": 0.1,
    "paid_in": 52_600_000.0,
    "distributed": 14_020_000.0,
}


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
        strategy_id = connection.execute(
            insert(portfolio_strategies)
            .values(name=DEMO_STRATEGY_NAME, stage_allocation=DEMO_STRATEGY)
            .returning(portfolio_strategies.c.id)
        ).scalar_one()
        fund_id = connection.execute(
            insert(funds)
            .values(
                name=DEMO_FUND_NAME,
                vintage_year=2024,
                committed_capital=100_000_000.0,
                management_fee_rate=0.02,
                carried_interest_rate=0.20,
                strategy_id=strategy_id,
                **DEMO_FUND_TERMS,
            )
            .returning(funds.c.id)
        ).scalar_one()
        connection.execute(
            insert(portfolio_companies),
            [
                {
                    "fund_id": fund_id,
                    "name": company.name,
                    "stage": company.stage,
                    "invested": company.invested,
                    "reserve_allocation": company.reserve_allocation,
                    "entry_date": company.entry_date,
                    "ownership": company.ownership,
                    "last_round_post_money": company.last_round_post_money,
                    "last_round_date": company.last_round_date,
                    "status": company.status,
                    "realized_proceeds": company.realized_proceeds,
                }
                for company in DEMO_COMPANIES
            ],
        )
        connection.execute(
            insert(deal_opportunities),
            [{"fund_id": fund_id, "name": name, "stage": stage} for name, stage in DEMO_DEALS],
        )
    return SeedResult(int(fund_id), created=True, companies=len(DEMO_COMPANIES))
