"""``fundmodel keys create NAME``: create an API key and print it once."""

from __future__ import annotations

from typing import Annotated

import typer

from fundmodel.auth.service import create_key
from fundmodel.cli.database import missing_schema_explained, open_existing_database
from fundmodel.settings import get_settings


def create(
    name: Annotated[str, typer.Argument(help="A unique name for the client, e.g. analytics-prod.")],
) -> None:
    """Create an API key; only its hash is stored, so copy it now."""
    engine = open_existing_database(get_settings().database_url)
    try:
        with missing_schema_explained(engine):
            created = create_key(engine, name)
    finally:
        engine.dispose()
    typer.echo(created.secret)
    typer.echo(
        f"created API key {created.name!r} (id {created.key_id}, prefix {created.prefix}); "
        "it is shown only this once",
        err=True,
    )


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="API keys of clients.", no_args_is_help=True)
    group.command("create")(create)
    app.add_typer(group, name="keys")
