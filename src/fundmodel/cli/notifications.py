"""``fundmodel notifications deliver|list``: post the notification outbox now; see recent deliveries.

The server delivers in the background on its own; ``deliver`` is for when no server runs (or to retry at
once after fixing a receiver), ``list`` shows what each target received. Targets are shown by name only:
their URLs are secrets.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from fundmodel.cli.common import one_line_errors, print_json
from fundmodel.cli.database import missing_schema_explained, open_existing_database
from fundmodel.db.notification_tables import DELIVERY_STATUSES
from fundmodel.errors import InvalidInputError, NotConfiguredError
from fundmodel.settings import get_settings

_LIST_LIMIT_MAX = 1000


def deliver(
    due_only: Annotated[
        bool,
        typer.Option(
            "--due-only",
            help="Only deliveries whose retry is due (default: also retry the pending ones at once).",
        ),
    ] = False,
    limit: Annotated[
        int, typer.Option(min=1, max=10_000, help="At most this many deliveries in this run.")
    ] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Post due notifications to NOTIFY_WEBHOOKS now (one attempt each), and report what happened."""
    from fundmodel.notifications.dispatcher import make_due_now
    from fundmodel.notifications.worker import dispatcher_for
    from fundmodel.observability.logging import configure_logging

    settings = get_settings()
    # Each attempt's log event goes to stderr: stdout holds the result (one JSON document with --json).
    configure_logging(settings.log_level, stream=sys.stderr)
    with one_line_errors(as_json=as_json):
        if not settings.notify_targets:
            raise NotConfiguredError("no webhook is configured: set NOTIFY_WEBHOOKS")
        engine = open_existing_database(settings.database_url)
        with missing_schema_explained(engine), dispatcher_for(settings, engine) as dispatcher:
            if not due_only:
                make_due_now(engine)
            report = dispatcher.run_once(max_deliveries=limit)
    document = {
        "fannedOut": report.fanned_out,
        "delivered": report.delivered,
        "retry": report.retried,
        "failed": report.failed,
        "expired": report.expired,
    }
    if as_json:
        print_json(document)
        return
    typer.echo(
        f"notifications: {report.delivered} delivered, {report.retried} to retry, {report.failed} failed, "
        f"{report.expired} expired ({report.fanned_out} new events)"
    )


def list_deliveries(
    status: Annotated[
        str | None,
        typer.Option(help=f"Only deliveries in this status ({', '.join(DELIVERY_STATUSES)})."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=_LIST_LIMIT_MAX, help="Most recent N deliveries.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Recent deliveries, newest event first: target name, status, attempts, last HTTP status or error."""
    from fundmodel.notifications.outbox import recent_deliveries

    with one_line_errors(as_json=as_json):
        if status is not None and status not in DELIVERY_STATUSES:
            raise InvalidInputError(f"--status must be one of {', '.join(DELIVERY_STATUSES)}", field="status")
        engine = open_existing_database(get_settings().database_url)
        with missing_schema_explained(engine):
            rows = recent_deliveries(engine, limit=limit, status=status)
    if as_json:
        print_json(
            {
                "deliveries": [
                    {
                        "deliveryId": row.delivery_id,
                        "eventId": row.event_id,
                        "kind": row.kind,
                        "summary": row.summary,
                        "target": row.target,
                        "status": row.status,
                        "attempts": row.attempts,
                        "lastStatusCode": row.last_status_code,
                        "lastError": row.last_error,
                        "nextAttemptAt": row.next_attempt_at,
                        "occurredAt": row.occurred_at,
                        "finishedAt": row.finished_at,
                    }
                    for row in rows
                ]
            }
        )
        return
    if not rows:
        typer.echo("no notification deliveries")
        return
    for row in rows:
        outcome = (
            f"HTTP {row.last_status_code}"
            if row.last_status_code is not None
            else (row.last_error or "not attempted")
        )
        when = (
            f", next attempt {row.next_attempt_at:%Y-%m-%d %H:%M:%S} UTC"
            if row.next_attempt_at is not None
            else ""
        )
        typer.echo(
            f"#{row.event_id} {row.occurred_at:%Y-%m-%d %H:%M:%S} {row.kind} -> {row.target}: {row.status} "
            f"after {row.attempts} attempt(s), last {outcome}{when}"
        )
        typer.echo(f"    {row.summary}")


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Outgoing webhook notifications (mode changes, gate verdicts, brownouts).")
    group.command("deliver")(deliver)
    group.command("list")(list_deliveries)
    app.add_typer(group, name="notifications")
