"""``fundmodel rollout brownout``: schedule, list and cancel brownout windows (enforce for a while, before
the Sunset), GitHub-style: a few 12/24/48 h windows warn the clients that would break for good.

Every worker applies a window from its start to its end exactly (requests compare the cached windows with
their own time); a schedule or cancel reaches every worker within the mode cache's TTL. Scheduling and
cancelling are audited on the window's row (who, when, why). Exit codes: 0 done, 1 refused (an overlap,
a window already over) or the database failed, 2 a usage error (a start in the past, a nonsense duration,
a window ending after the Sunset, an unknown window).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
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
    parse_utc_time,
    print_json,
)
from fundmodel.cli.database import missing_schema_explained, open_existing_database
from fundmodel.db.brownout_store import BrownoutStore, StoredBrownout
from fundmodel.errors import InvalidInputError
from fundmodel.rollout.config import format_duration, parse_duration

ActorOption = Annotated[
    str | None, typer.Option("--actor", help="Who makes the change (default: the login name).")
]

brownout_app = typer.Typer(
    name="brownout",
    help="Brownouts: windows of enforce (at a canary percentage) before the Sunset, on every worker.",
    no_args_is_help=True,
)


@contextmanager
def _store(database_url: str | None) -> Iterator[BrownoutStore]:
    from fundmodel.settings import get_settings

    settings = get_settings()
    engine = open_existing_database(database_url_or_settings(database_url))
    try:
        with missing_schema_explained(engine):
            yield BrownoutStore(engine, sunset_at=settings.stage_sunset_date)
    finally:
        engine.dispose()


def _actor(explicit: str | None) -> str:
    from fundmodel.cli.actor import resolve_actor

    return resolve_actor(explicit)


def parse_start(text: str) -> datetime | None:
    """``now`` (``None``: the moment the window is written) or an ISO 8601 time (UTC when no offset)."""
    if text.strip().lower() == "now":
        return None
    expected = "a time: use ISO 8601 (e.g. 2027-01-12T14:00Z) or 'now'"
    return parse_utc_time(text, option="start", expected=expected)


def parse_brownout_duration(text: str) -> timedelta:
    """``12h``, ``30m``, ``90s``, ``2d``: anything else is refused in one line."""
    duration = parse_duration(text)
    if not isinstance(duration, timedelta):
        raise InvalidInputError(
            f"--duration {text!r} is not a duration such as 12h, 30m or 90s", field="duration"
        )
    return duration


def _when(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def _describe(stored: StoredBrownout) -> str:
    window = stored.window
    return (
        f"brownout {stored.window_id}: {_when(window.starts_at)} to {_when(window.ends_at)} "
        f"({format_duration(max(window.duration, timedelta(0)))}), enforce {window.canary_percent:g}%"
    )


def render_brownouts(brownouts: Sequence[StoredBrownout], now: datetime, console: Console) -> None:
    """For ``rollout status``: one line per window in force or to come."""
    for stored in brownouts:
        status = stored.status(now)
        console.print(
            Text(f"{status} {_describe(stored)}: {stored.reason}"),
            style="bold yellow" if status == "active" else "",
        )


@brownout_app.command("schedule")
def schedule_command(
    start: Annotated[
        str, typer.Option("--start", metavar="TIME", help="ISO 8601 start (UTC when no offset), or 'now'.")
    ],
    duration: Annotated[
        str,
        typer.Option("--duration", metavar="DURATION", help="How long: 12h, 24h, 48h, 30m (max 72h)."),
    ],
    reason: Annotated[str, typer.Option("--reason", help="Why (audited; sent with the notifications).")],
    canary: Annotated[
        float,
        typer.Option("--canary", metavar="PERCENT", help="Enforced percentage of clients in the window."),
    ] = 100.0,
    actor: ActorOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Schedule a window of enforce. Refused: in the past, overlapping another, ending after the Sunset."""
    with one_line_errors(as_json):
        starts_at = parse_start(start)
        length = parse_brownout_duration(duration)
        who = _actor(actor)
        with _store(database_url) as store:
            stored = store.schedule(
                starts_at=starts_at, duration=length, canary_percent=canary, actor=who, reason=reason
            )
            now = datetime.now(UTC)
    if as_json:
        print_json({"ok": True, "brownout": stored.to_json(now)})
    else:
        typer.echo(f"scheduled {_describe(stored)}")


@brownout_app.command("list")
def list_command(
    include_past: Annotated[
        bool, typer.Option("--all", help="Also the windows over (finished, cancelled, ended), latest 200.")
    ] = False,
    as_json: JsonOption = False,
    database_url: DatabaseUrlOption = None,
) -> None:
    """The windows in force or to come (with --all: the past ones too), earliest first."""
    with one_line_errors(as_json), _store(database_url) as store:
        windows = store.list(include_past=include_past)
        now = datetime.now(UTC)
    if as_json:
        print_json({"ok": True, "brownouts": [stored.to_json(now) for stored in windows]})
        return
    if not windows:
        Console().print("no brownout scheduled" + ("" if include_past else " (see --all for past ones)"))
        return
    table = Table(title="brownouts", title_justify="left")
    for column in ("id", "status", "start", "end", "canary", "by", "reason"):
        table.add_column(column, overflow="fold")
    for stored in windows:
        ended = f" ({stored.end_source}: {stored.end_reason})" if stored.ended_at is not None else ""
        table.add_row(
            str(stored.window_id),
            stored.status(now),
            _when(stored.window.starts_at),
            _when(stored.window.ends_at),
            f"{stored.window.canary_percent:g}%",
            Text(stored.created_by),
            Text(stored.reason + ended),
        )
    Console().print(table)


@brownout_app.command("cancel")
def cancel_command(
    brownout_id: Annotated[int, typer.Argument(metavar="ID", help="The window (see `brownout list`).")],
    reason: Annotated[str, typer.Option("--reason", help="Why (audited; sent with the notifications).")],
    actor: ActorOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseUrlOption = None,
) -> None:
    """End a window now: one to come never applies, one in force stops on every worker within the TTL."""
    with one_line_errors(as_json):
        who = _actor(actor)
        with _store(database_url) as store:
            stored = store.cancel(brownout_id, actor=who, reason=reason)
            now = datetime.now(UTC)
    if as_json:
        print_json({"ok": True, "brownout": stored.to_json(now)})
    else:
        typer.echo(f"{stored.status(now)} {_describe(stored)}")


def add_brownout_commands(rollout_app: typer.Typer) -> None:
    rollout_app.add_typer(brownout_app, name="brownout")
