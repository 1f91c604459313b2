"""``fundmodel keys create NAME`` (print a new key once) and ``fundmodel keys list`` (who the clients are)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer

from fundmodel.auth.models import ApiKeyInfo
from fundmodel.auth.service import create_key, list_keys
from fundmodel.cli.common import JsonOption, one_line_errors, print_json
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


def list_command(as_json: JsonOption = False) -> None:
    """List API keys: name, client id, prefix, created, last used, revoked (never a key or its hash)."""
    with one_line_errors(as_json):
        engine = open_existing_database(get_settings().database_url)
        try:
            with missing_schema_explained(engine):
                keys = list_keys(engine)
        finally:
            engine.dispose()
    if as_json:
        print_json({"keys": [key_document(key) for key in keys]})
        return
    if not keys:
        typer.echo("no API keys yet; create one with `fundmodel keys create NAME`", err=True)
        return
    rows = [("NAME", "CLIENT", "PREFIX", "CREATED", "LAST USED", "REVOKED")]
    rows += [
        (
            key.name,
            key.client_id,
            key.prefix,
            _when(key.created_at),
            _when(key.last_used_at, never="never"),
            _when(key.revoked_at, never="-"),
        )
        for key in keys
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def key_document(key: ApiKeyInfo) -> dict[str, Any]:
    """One key in ``keys list --json`` (timestamps ISO 8601, UTC; null when not recorded)."""
    return {
        "name": key.name,
        "client_id": key.client_id,
        "prefix": key.prefix,
        "created_at": key.created_at.isoformat(),
        "last_used_at": None if key.last_used_at is None else key.last_used_at.isoformat(),
        "revoked_at": None if key.revoked_at is None else key.revoked_at.isoformat(),
        "revoked": key.revoked_at is not None,
    }


def _when(moment: datetime | None, *, never: str = "") -> str:
    return never if moment is None else moment.strftime("%Y-%m-%d %H:%M:%SZ")


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="API keys of clients.", no_args_is_help=True)
    group.command("create")(create)
    group.command("list")(list_command)
    app.add_typer(group, name="keys")
