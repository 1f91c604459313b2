"""Migrations run programmatically on both backends, are idempotent, and the demo seed is too."""

from __future__ import annotations

from sqlalchemy import Engine, inspect, select

from fundmodel.db.migrate import current_revisions, head_revisions, upgrade_to_head
from fundmodel.db.schema import load_metadata
from fundmodel.db.seed import DEMO_COMPANIES, seed_demo
from fundmodel.db.tables import portfolio_companies


def test_migrated_database_has_every_table_of_the_metadata(engine: Engine) -> None:
    assert current_revisions(engine) == head_revisions()
    assert "0001_initial" in _history()
    tables = set(inspect(engine).get_table_names())
    assert set(load_metadata().tables) <= tables


def test_upgrade_again_changes_nothing(engine: Engine) -> None:
    upgrade_to_head(engine)
    assert current_revisions(engine) == head_revisions()


def test_demo_seed_is_idempotent_and_keeps_legacy_spellings(engine: Engine) -> None:
    first = seed_demo(engine)
    second = seed_demo(engine)
    assert first.created
    assert not second.created
    assert second.fund_id == first.fund_id
    with engine.connect() as connection:
        stages = connection.execute(select(portfolio_companies.c.stage)).scalars().all()
    assert len(stages) == len(DEMO_COMPANIES)
    assert {"Series A", "series-c+", " seed ", "SEED", "Pre Seed"} <= set(stages)


def _history() -> set[str]:
    from alembic.script import ScriptDirectory

    from fundmodel.db.migrate import alembic_config

    return {rev.revision for rev in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
