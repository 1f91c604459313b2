"""``fundmodel rollout offenders``: every client still relying on deprecated stage handling, from the
usage ledger, ranked by volume (the same report as ``GET /_ops/stage-validation/usage``).

Reads the database directly, so it works with the service down. Exit codes: 0 the report was printed
(whether or not it names a client), 1 the database could not be read, 2 a bad ``--since`` or
``--endpoint`` or a database that is missing or not migrated.
"""

from __future__ import annotations

from datetime import UTC
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fundmodel.cli.common import (
    DatabaseUrlOption,
    JsonOption,
    database_url_or_settings,
    one_line_errors,
    print_json,
)
from fundmodel.cli.database import missing_schema_explained, open_existing_database
from fundmodel.usage.models import OffenderReport

SinceOption = Annotated[
    str | None,
    typer.Option(
        "--since",
        metavar="DAYS",
        help="How many days back, e.g. 7d (default 30d, at most STAGE_USAGE_RETENTION_DAYS).",
    ),
]
EndpointOption = Annotated[
    str | None,
    typer.Option(
        "--endpoint",
        metavar="TEMPLATE",
        help="Count only this endpoint, e.g. /api/funds/{fundId}/companies (as the metrics label it).",
    ),
]
# Spellings listed per client in the table (--json lists every one).
_LISTED_SPELLINGS = 5


def offenders_command(
    since: SinceOption = None,
    endpoint: EndpointOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Every client still relying on deprecated stage handling (usage ledger), ranked by volume."""
    with one_line_errors(as_json):
        report = _read_report(since, endpoint, database_url)
    if as_json:
        print_json({"ok": True, **report.model_dump(mode="json")})
    else:
        _render(report, Console())


def add_offenders_command(rollout_app: typer.Typer) -> None:
    """Register ``offenders`` on the ``rollout`` group (called once, by ``cli/rollout.py``)."""
    rollout_app.command("offenders")(offenders_command)


def _read_report(since: str | None, endpoint: str | None, database_url: str | None) -> OffenderReport:
    from fundmodel.settings import get_settings
    from fundmodel.usage.service import checked_endpoint, offender_report, utc_today, window_start

    # Both checked before the database is opened: a typo is a usage error whatever the database's state.
    first_day = window_start(
        since, retention_days=get_settings().stage_usage_retention_days, today=utc_today()
    )
    chosen_endpoint = checked_endpoint(endpoint)
    engine = open_existing_database(database_url_or_settings(database_url))
    try:
        with missing_schema_explained(engine):
            return offender_report(engine, first_day, endpoint=chosen_endpoint)
    finally:
        engine.dispose()


def _render(report: OffenderReport, console: Console) -> None:
    scope = f" on {report.endpoint}" if report.endpoint else ""
    if not report.clients:
        console.print(
            Text(f"no client relied on deprecated stage handling{scope} since {report.since} (UTC)")
        )
        return
    table = Table(
        title=f"clients relying on deprecated stage handling{scope} since {report.since} (UTC), "
        f"{report.total:,} validations",
        title_justify="left",
    )
    for column in ("key (prefix)", "count", "kinds", "endpoints", "spellings", "last seen"):
        table.add_column(column, overflow="fold", justify="right" if column == "count" else "left")
    for client in report.clients:
        revoked = " revoked" if client.key_revoked else ""
        spellings = list(client.spellings[:_LISTED_SPELLINGS])
        if len(client.spellings) > _LISTED_SPELLINGS:
            spellings.append(f"... {len(client.spellings) - _LISTED_SPELLINGS} more (--json)")
        # Text(), never markup: spellings are what clients sent, and a name must not style the table.
        table.add_row(
            Text(f"{client.key_name}\n({client.key_prefix or 'no key'}{revoked})"),
            f"{client.count:,}",
            Text("\n".join(f"{item.kind} {item.count:,}" for item in client.kinds)),
            Text("\n".join(client.endpoints)),
            Text("\n".join(spellings) or "-"),
            f"{client.last_seen_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC",
        )
    console.print(table)
