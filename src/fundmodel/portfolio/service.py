"""Strategy queries and rules: allocations arrive already validated and canonical."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update

from fundmodel.db.tables import portfolio_strategies
from fundmodel.db.values import as_utc
from fundmodel.errors import ConflictError, NotFoundError
from fundmodel.pagination import fetch_page
from fundmodel.portfolio.models import Strategy, StrategyPage
from fundmodel.stages import STAGE_ORDER, Stage


def canonical_allocation(weights: Mapping[Stage, float]) -> dict[str, float]:
    """The stored form: canonical names in canonical order."""
    return {stage.value: float(weights[stage]) for stage in STAGE_ORDER if stage in weights}


def create_strategy(engine: Engine, name: str, weights: Mapping[Stage, float]) -> Strategy:
    now = datetime.now(UTC)
    with engine.begin() as connection:
        row = connection.execute(
            insert(portfolio_strategies)
            .values(
                name=name,
                stage_allocation=canonical_allocation(weights),
                version=1,
                created_at=now,
                updated_at=now,
            )
            .returning(*portfolio_strategies.c)
        ).one()
    return _to_strategy(row._mapping)


def list_strategies(engine: Engine, *, limit: int, after_id: int | None) -> StrategyPage:
    table = portfolio_strategies
    with engine.connect() as connection:
        page = fetch_page(
            connection, select(table), table.c.id, limit=limit, after_id=after_id, to_item=_to_strategy
        )
    return StrategyPage(items=page.items, next_cursor=page.next_cursor)


def get_strategy(engine: Engine, strategy_id: int) -> Strategy:
    table = portfolio_strategies
    with engine.connect() as connection:
        row = connection.execute(select(table).where(table.c.id == strategy_id)).first()
    if row is None:
        raise NotFoundError(f"strategy {strategy_id} does not exist")
    return _to_strategy(row._mapping)


def replace_strategy(
    engine: Engine,
    strategy_id: int,
    name: str,
    weights: Mapping[Stage, float],
    *,
    expected_version: int | None,
) -> Strategy:
    table = portfolio_strategies
    with engine.begin() as connection:
        current = connection.execute(
            select(table.c.version).where(table.c.id == strategy_id).with_for_update()
        ).scalar_one_or_none()
        if current is None:
            raise NotFoundError(f"strategy {strategy_id} does not exist")
        if expected_version is not None and expected_version != current:
            raise ConflictError(
                f"strategy {strategy_id} is at version {current}, not {expected_version}; re-read and retry",
                code="VERSION_CONFLICT",
            )
        row = connection.execute(
            update(table)
            .where(table.c.id == strategy_id, table.c.version == current)
            .values(
                name=name,
                stage_allocation=canonical_allocation(weights),
                version=current + 1,
                updated_at=datetime.now(UTC),
            )
            .returning(*table.c)
        ).first()
        if row is None:
            raise ConflictError(
                f"strategy {strategy_id} changed during the update; re-read and retry",
                code="VERSION_CONFLICT",
            )
    return _to_strategy(row._mapping)


def _to_strategy(row: Any) -> Strategy:
    return Strategy(
        id=row["id"],
        name=row["name"],
        stage_allocation=dict(row["stage_allocation"]),
        version=row["version"],
        created_at=as_utc(row["created_at"]),
        updated_at=as_utc(row["updated_at"]),
    )
