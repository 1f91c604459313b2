"""``fundmodel db``: ``migrate`` and ``seed-demo`` (the data-ops commands join this same group)."""

from __future__ import annotations

import typer

from fundmodel.cli.database import missing_schema_explained, open_existing_database
from fundmodel.db.engine import create_db_engine
from fundmodel.settings import get_settings


def migrate() -> None:
    """Create or upgrade the schema of DATABASE_URL to this release."""
    from fundmodel.db.migrate import current_revisions, upgrade_to_head  # Alembic: only when migrating

    engine = create_db_engine(get_settings().database_url)
    try:
        upgrade_to_head(engine)
        revisions = ", ".join(sorted(current_revisions(engine)))
    finally:
        engine.dispose()
    typer.echo(f"database at revision {revisions}")


def seed_demo_command() -> None:
    """Insert the demo fund (with legacy stage spellings); does nothing when it exists."""
    from fundmodel.db.seed import seed_demo

    engine = open_existing_database(get_settings().database_url)
    try:
        with missing_schema_explained(engine):
            result = seed_demo(engine)
    finally:
        engine.dispose()
    if result.created:
        typer.echo(f"demo fund {result.fund_id} created with {result.companies} companies")
    else:
        typer.echo(f"demo fund {result.fund_id} already present; nothing changed")


def create_db_group() -> typer.Typer:
    group = typer.Typer(help="Database schema, demo data and data operations.", no_args_is_help=True)
    group.command("migrate")(migrate)
    group.command("seed-demo")(seed_demo_command)
    return group


def register(app: typer.Typer) -> None:
    """``fundmodel db``: the schema commands here plus the data operations of :mod:`fundmodel.cli.db_ops`."""
    from fundmodel.cli.db_ops import register_db_ops
    from fundmodel.cli.usage_ops import register_usage_ops

    group = create_db_group()
    register_db_ops(group)
    register_usage_ops(group)
    app.add_typer(group, name="db")
