"""``fundmodel db prune-usage``: delete stage-usage ledger rows past retention (STAGE_USAGE_RETENTION_DAYS).

Exit codes as every command (``cli/common.exit_code_for``): 0 done, 1 the database failed, 2 usage or
configuration error. ``--json`` prints one JSON document on stdout.
"""

from __future__ import annotations

from typing import Annotated

import typer

from fundmodel.cli.common import (
    DatabaseUrlOption,
    JsonOption,
    database_url_or_settings,
    one_line_errors,
    print_json,
)
from fundmodel.cli.database import missing_schema_explained, open_existing_database
from fundmodel.settings import get_settings
from fundmodel.usage.recorder import prune_usage

OlderThanOption = Annotated[
    int | None,
    typer.Option(
        "--older-than",
        min=1,
        max=3650,
        metavar="DAYS",
        help="Delete the days before the last DAYS (default: STAGE_USAGE_RETENTION_DAYS, 90).",
    ),
]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Only count the rows that would be deleted.")]


def prune_usage_command(
    older_than: OlderThanOption = None,
    dry_run: DryRunOption = False,
    database_url: DatabaseUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete stage-usage rows older than the retention (today and the last DAYS days are kept)."""
    days = older_than if older_than is not None else get_settings().stage_usage_retention_days
    with one_line_errors(as_json):
        engine = open_existing_database(database_url_or_settings(database_url))
        try:
            with missing_schema_explained(engine):
                result = prune_usage(engine, older_than_days=days, dry_run=dry_run)
        finally:
            engine.dispose()
    if as_json:
        print_json(
            {
                "ok": True,
                "dryRun": result.dry_run,
                "olderThanDays": days,
                "before": result.before.isoformat(),
                "rows": result.rows,
            }
        )
        return
    verb = "would delete" if dry_run else "deleted"
    typer.echo(f"{verb} {result.rows} stage-usage rows of days before {result.before.isoformat()} (UTC)")


def register_usage_ops(db_group: typer.Typer) -> None:
    """Add ``prune-usage`` to the ``db`` command group."""
    db_group.command("prune-usage")(prune_usage_command)
