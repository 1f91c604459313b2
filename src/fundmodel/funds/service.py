"""Fund queries and rules."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select
from sqlalchemy.exc import IntegrityError

from fundmodel.db.tables import funds, portfolio_strategies
from fundmodel.db.values import as_utc
from fundmodel.engines.montecarlo.config import MIN_FUND_SIZE, load_config
from fundmodel.errors import ConflictError, InvalidInputError, NotFoundError, SimulationConfigError
from fundmodel.funds.models import Fund, FundCreate, FundPage, FundTerms
from fundmodel.pagination import fetch_page

INVALID_FUND_TERMS = "INVALID_FUND_TERMS"
_TERMS = tuple(FundTerms.model_fields)
# Terms the engine's configuration takes under the same name (the rest are actuals and references).
_ENGINE_TERMS = (
    "management_fee_step_down_rate",
    "fund_expense_ratio",
    "preferred_return",
    "fund_life_years",
    "investment_period_years",
    "reserve_ratio",
    "recycling_ratio",
)
# Any valid stage mix: the terms' own rules (periods, fees against commitments) do not depend on it.
_ANY_STAGE_MIX = {"seed": 1.0}


def list_funds(engine: Engine, *, limit: int, after_id: int | None) -> FundPage:
    with engine.connect() as connection:
        page = fetch_page(
            connection, select(funds), funds.c.id, limit=limit, after_id=after_id, to_item=_to_fund
        )
    return FundPage(items=page.items, next_cursor=page.next_cursor)


def create_fund(engine: Engine, body: FundCreate) -> Fund:
    check_terms(body)
    try:
        with engine.begin() as connection:
            if body.strategy_id is not None:
                _require_strategy(connection, body.strategy_id)
            row = connection.execute(
                insert(funds)
                .values(**body.model_dump(by_alias=False), created_at=datetime.now(UTC))
                .returning(*funds.c)
            ).one()
    except IntegrityError:
        raise ConflictError(f"a fund named {body.name!r} already exists") from None
    return _to_fund(row._mapping)


def check_terms(body: FundCreate) -> None:
    """The cross-field rules of the terms, exactly as the engine applies them (422 naming the field).

    The terms are run through the engine's own configuration, so a fund stored here is one the engine
    accepts: an investment period longer than the fund life, or fees and expenses that leave nothing to
    invest, are refused now rather than when the fund is first forecast.
    """
    if body.paid_in is not None and body.paid_in > body.committed_capital:
        raise InvalidInputError(
            f"paidIn {body.paid_in:.2f} exceeds committedCapital {body.committed_capital:.2f}: "
            "LPs cannot have paid in more than they committed",
            code=INVALID_FUND_TERMS,
            field="paidIn",
        )
    terms: dict[str, object] = {
        name: value for name in _ENGINE_TERMS if (value := getattr(body, name)) is not None
    }
    try:
        load_config(
            {
                # The fee rules are ratios of commitments; the engine's minimum size keeps a tiny fund valid.
                "fund_size": max(body.committed_capital, MIN_FUND_SIZE),
                "stage_distribution": _ANY_STAGE_MIX,
                "management_fee_rate": body.management_fee_rate,
                "carry_rate": body.carried_interest_rate,
                # The engine's catch-up must exceed the carry; the fund does not store one.
                "catch_up": 1.0,
                **terms,
            }
        )
    except SimulationConfigError as error:
        raise InvalidInputError(
            f"the fund terms are not consistent: {error.detail.removeprefix('invalid simulation config: ')}",
            code=INVALID_FUND_TERMS,
            field=error.field,
            errors=error.errors,
        ) from None


def get_fund(engine: Engine, fund_id: int) -> Fund:
    with engine.connect() as connection:
        row = connection.execute(select(funds).where(funds.c.id == fund_id)).first()
    if row is None:
        raise NotFoundError(f"fund {fund_id} does not exist")
    return _to_fund(row._mapping)


def require_fund(connection: Connection, fund_id: int) -> None:
    """Raise NotFoundError unless the fund exists (inside the caller's transaction)."""
    if connection.execute(select(funds.c.id).where(funds.c.id == fund_id)).first() is None:
        raise NotFoundError(f"fund {fund_id} does not exist")


def _require_strategy(connection: Connection, strategy_id: int) -> None:
    table = portfolio_strategies
    if connection.execute(select(table.c.id).where(table.c.id == strategy_id)).first() is None:
        raise InvalidInputError(
            f"strategy {strategy_id} does not exist (see GET /api/portfolio/strategies)",
            code="UNKNOWN_STRATEGY",
            field="strategyId",
        )


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _to_fund(row: Any) -> Fund:
    terms = {name: row[name] for name in _TERMS}
    return Fund(
        id=row["id"],
        name=row["name"],
        vintage_year=row["vintage_year"],
        committed_capital=float(row["committed_capital"]),
        management_fee_rate=row["management_fee_rate"],
        carried_interest_rate=row["carried_interest_rate"],
        **{name: value if name == "strategy_id" else _optional_float(value) for name, value in terms.items()},
        created_at=as_utc(row["created_at"]),
    )
