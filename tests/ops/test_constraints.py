from __future__ import annotations

import pytest
from sqlalchemy import Engine, insert, update
from sqlalchemy.exc import DBAPIError

from fundmodel.db.tables import deal_opportunities, portfolio_companies
from fundmodel.errors import OperationRefusedError
from fundmodel.ops.constraints import (
    add_stage_constraints,
    constraints_present,
    drop_stage_constraints,
)
from fundmodel.ops.stage_columns import CANONICAL_VALUES, StageColumn
from tests.ops.legacy_data import seed_legacy
from tests.ops.test_normalize import apply


def test_refuses_with_the_offending_rows_while_legacy_values_remain(
    engine: Engine, columns: list[StageColumn]
) -> None:
    seeded = seed_legacy(engine, companies=20, deals=5)
    with pytest.raises(OperationRefusedError, match="non-canonical stages remain") as refused:
        add_stage_constraints(engine, columns)
    offending = {o["table"]: o for o in refused.value.extra["offending"]}
    legacy_ids = {str(i) for i, v in seeded.companies.items() if v not in CANONICAL_VALUES}
    assert legacy_ids
    assert set(offending["portfolio_companies"]["row_ids"]) == legacy_ids
    assert offending["portfolio_companies"]["rows"] == len(legacy_ids)
    assert not any(constraints_present(engine, columns).values())


def test_after_normalizing_legacy_values_cannot_come_back(engine: Engine, columns: list[StageColumn]) -> None:
    seed_legacy(engine, companies=20, deals=5)
    apply(engine, columns)
    report = add_stage_constraints(engine, columns)
    assert len(report.added) == 2
    assert all(constraints_present(engine, columns).values())
    assert add_stage_constraints(engine, columns).already_present == report.added
    with pytest.raises(DBAPIError), engine.begin() as connection:
        connection.execute(update(portfolio_companies).values(stage="Series A"))
    with pytest.raises(DBAPIError), engine.begin() as connection:
        connection.execute(insert(deal_opportunities).values(fund_id=1, name="new", stage=" seed "))
    with engine.begin() as connection:  # canonical values still go in
        connection.execute(insert(deal_opportunities).values(fund_id=1, name="ok", stage="seed"))
    assert len(drop_stage_constraints(engine, columns).dropped) == 2
    with engine.begin() as connection:
        connection.execute(update(portfolio_companies).values(stage="Series A"))
