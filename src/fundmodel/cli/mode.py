"""``fundmodel mode get|set``: read or change the stage-validation mode in the shared store."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from sqlalchemy import Engine

from fundmodel.cli.common import one_line_errors
from fundmodel.cli.database import missing_schema_explained, open_existing_database
from fundmodel.db.mode_store import ModeStore
from fundmodel.settings import get_settings
from fundmodel.validation import ModeState, ValidationMode

# Imports here stay light (no engine, no web stack): these are the commands typed during an incident.


def _open_store() -> tuple[Engine, ModeStore]:
    settings = get_settings()
    engine = open_existing_database(settings.database_url)
    return engine, ModeStore(engine, default=ModeState(settings.stage_validation_mode))


def get(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show the mode every worker applies (within the cache TTL)."""
    engine, store = _open_store()
    with missing_schema_explained(engine):
        stored = store.read()
    source = "store" if stored.version else "default (STAGE_VALIDATION_MODE)"
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "mode": stored.state.mode.value,
                    "canaryPercent": stored.state.canary_percent,
                    "canaryClients": stored.state.sorted_clients,
                    "aliasesRejected": stored.state.aliases_rejected,
                    "source": "store" if stored.version else "default",
                    "version": stored.version,
                    "updatedAt": stored.updated_at.isoformat() if stored.updated_at else None,
                    "updatedBy": stored.updated_by,
                }
            )
        )
        return
    line = f"mode: {stored.state.describe()} ({source})"
    if stored.state.canary_clients and stored.state.canary_percent >= 100:
        line += f"; named canary clients kept for later steps: {', '.join(stored.state.sorted_clients)}"
    if stored.updated_at is not None:
        line += f"; set by {stored.updated_by} at {stored.updated_at.isoformat()}"
    typer.echo(line)


def set_mode(
    mode: Annotated[ValidationMode, typer.Argument(help="off, warn or enforce.")],
    actor: Annotated[str, typer.Option(help="Who makes the change (audited).")],
    reason: Annotated[str, typer.Option(help="Why (audited).")],
    canary: Annotated[
        float,
        typer.Option("--canary", min=0.0, max=100.0, help="Percent of clients enforced (enforce only)."),
    ] = 100.0,
    canary_client: Annotated[
        list[str] | None,
        typer.Option(
            "--canary-client",
            metavar="NAME",
            help="API key name always enforced, whatever --canary (repeatable; unknown names are refused).",
        ),
    ] = None,
    reject_aliases: Annotated[
        bool,
        typer.Option(
            "--reject-aliases",
            help="The Sunset step: enforced clients' deprecated aliases are rejected before the Sunset date.",
        ),
    ] = False,
) -> None:
    """Change the mode; every worker picks it up within the cache TTL (default 2 s).

    The whole state is given: named canary clients and --reject-aliases not repeated here are cleared."""
    from fundmodel.observability.logging import configure_logging
    from fundmodel.observability.mode_events import log_mode_change

    configure_logging(get_settings().log_level, stream=sys.stderr)
    engine, store = _open_store()
    with one_line_errors(as_json=False), missing_schema_explained(engine):
        change = store.set(
            mode,
            canary,
            actor=actor,
            reason=reason,
            source="manual",
            canary_clients=canary_client or [],
            aliases_rejected=reject_aliases,
        )
    log_mode_change(change)
    typer.echo(f"mode: {change.old.describe()} -> {change.new.describe()} (audit #{change.audit_id})")


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="The stage-validation mode (off, warn, enforce + canary).")
    group.command("get")(get)
    group.command("set")(set_mode)
    app.add_typer(group, name="mode")
