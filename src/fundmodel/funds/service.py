"""Fund queries and rules."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select
from sqlalchemy.exc import IntegrityError

from fundmodel.db.tables import funds
from fundmodel.db.values import as_utc
from fundmodel.errors import ConflictError, NotFoundError
from fundmodel.funds.models import Fund, FundCreate, FundPage
from fundmodel.pagination import fetch_page


def list_funds(engine: Engine, *, limit: int, after_id: int | None) -> FundPage:
    with engine.connect() as connection:
        page = fetch_page(
            connection, select(funds), funds.c.id, limit=limit, after_id=after_id, to_item=_to_fund
        )
    return FundPage(items=page.items, next_cursor=page.next_cursor)


def create_fund(engine: Engine, body: FundCreate) -> Fund:
    try:
        with engine.begin() as connection:
            row = connection.execute(
                insert(funds)
                .values(**body.model_dump(by_alias=False), created_at=datetime.now(UTC))
                .returning(*funds.c)
            ).one()
    except IntegrityError:
        raise ConflictError(f"a fund named {body.name!r} already exists") from None
    return _to_fund(row._mapping)


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


def _to_fund(row: Any) -> Fund:
    return Fund(
        id=row["id"],
        name=row["name"],
        vintage_year=row["vintage_year"],
        committed_capital=float(row["committed_capital"]),
        management_fee_rate=row["management_fee_rate"],
        carried_interest_rate=row["carried_interest_rate"],
        created_at=as_utc(row["created_at"]),
    )
