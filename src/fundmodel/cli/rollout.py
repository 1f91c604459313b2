"""``fundmodel rollout``: status, advance, rollback, extend-warn, exempt, reset-observation and history of
the stage-validation rollout.

Exit codes of ``status``: 0 the next step is allowed, 1 it is blocked (a gate fails or has no data),
3 warn has lasted longer than ``MAX_WARN_DURATION``, 4 the rollout is complete (nothing to advance);
2 is a usage or configuration error for every command. ``advance`` exits 1 when refused.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from sqlalchemy import Engine

from fundmodel.cli.common import (
    DEFAULT_BACKUP_DIR,
    EXIT_FAILURE,
    BackupDirOption,
    DatabaseUrlOption,
    JsonOption,
    database_url_or_settings,
    one_line_errors,
    parse_utc_time,
    print_json,
)
from fundmodel.cli.common import (
    EXIT_USAGE as EXIT_USAGE,  # re-exported: the exit codes of every rollout command, in one place
)
from fundmodel.cli.database import missing_schema_explained, open_existing_database
from fundmodel.cli.rollout_brownout import add_brownout_commands
from fundmodel.cli.rollout_offenders import add_offenders_command
from fundmodel.cli.rollout_view import change_json, gate_from_json, gates_table, render_history, render_status
from fundmodel.db.mode_store import ModeChange, ModeStore
from fundmodel.errors import FundmodelError, InvalidInputError
from fundmodel.observability.logging import configure_logging
from fundmodel.observability.mode_events import log_mode_change
from fundmodel.rollout.config import environment_defaults, load_gate_config
from fundmodel.rollout.controller import RolloutController
from fundmodel.rollout.data_checks import StoredDataChecks
from fundmodel.rollout.measurements import PrometheusMeasurements
from fundmodel.rollout.phases import Phase, parse_phase
from fundmodel.rollout.prometheus import PrometheusClient
from fundmodel.rollout.status import StepResult, Verdict, gate_json
from fundmodel.validation import ModeState

EXIT_ALLOWED = 0
EXIT_BLOCKED = EXIT_FAILURE
EXIT_WARN_OVERDUE = 3
EXIT_COMPLETE = 4
STATUS_EXIT_CODES = {
    Verdict.ALLOWED: EXIT_ALLOWED,
    Verdict.BLOCKED: EXIT_BLOCKED,
    Verdict.WARN_OVERDUE: EXIT_WARN_OVERDUE,
    Verdict.COMPLETE: EXIT_COMPLETE,
}
BACKUP_MAX_AGE_VARIABLE = "FUNDMODEL_BACKUP_MAX_AGE_HOURS"
"""Shared with ``normalize-stages --apply``'s backup gate (its ``--max-backup-age-hours`` envvar)."""

PrometheusUrlOption = Annotated[
    str | None,
    typer.Option("--prometheus-url", help="Prometheus base URL (default: PROMETHEUS_URL)."),
]
GatesFileOption = Annotated[
    Path | None,
    typer.Option("--gates-file", help="TOML file overriding gate thresholds (default: ROLLOUT_GATES_FILE)."),
]
ActorOption = Annotated[
    str | None, typer.Option("--actor", help="Who makes the change (default: the login name).")
]


@dataclass(frozen=True)
class _Sources:
    database_url: str | None
    prometheus_url: str | None
    gates_file: Path | None
    backup_dir: Path

    @classmethod
    def store_only(cls, database_url: str | None) -> _Sources:
        """For commands that only read and write the mode store: no Prometheus, no gates file."""
        return cls(database_url, None, None, DEFAULT_BACKUP_DIR)


@contextmanager
def _controller(sources: _Sources) -> Iterator[RolloutController]:
    from fundmodel.settings import get_settings

    settings = get_settings()
    overrides: dict[str, Any] = {}
    if "max_warn_duration" in settings.model_fields_set:
        overrides["max_warn_duration"] = settings.max_warn_duration
    defaults = environment_defaults(
        production=settings.app_env == "production",
        backup_max_age_hours=os.environ.get(BACKUP_MAX_AGE_VARIABLE),
    )
    config = load_gate_config(
        sources.gates_file or settings.rollout_gates_file, defaults=defaults, **overrides
    )
    engine: Engine = open_existing_database(database_url_or_settings(sources.database_url))
    url = sources.prometheus_url or settings.prometheus_url
    client = PrometheusClient(url, timeout=settings.prometheus_timeout_seconds) if url else None
    try:
        with missing_schema_explained(engine):
            yield RolloutController(
                ModeStore(engine, default=ModeState(settings.stage_validation_mode)),
                engine,
                measurements=PrometheusMeasurements(client, label_filter=config.label_filter),
                data_checks=StoredDataChecks(engine, backup_dir=sources.backup_dir),
                config=config,
                canary_salt=settings.stage_canary_salt,
            )
    finally:
        if client is not None:
            client.close()
        engine.dispose()


def _log_change(change: ModeChange | None) -> None:
    """The same ``stage_validation_mode_changed`` event as every other mode change, on stderr."""
    if change is None or not change.changed:
        return
    from fundmodel.settings import get_settings

    configure_logging(get_settings().log_level, stream=sys.stderr)
    log_mode_change(change)


def _actor(explicit: str | None) -> str:
    from fundmodel.cli.actor import resolve_actor

    return resolve_actor(explicit)


# --- rendering -----------------------------------------------------------------------------------


def _print_step(result: StepResult, *, as_json: bool, with_gates: bool = False) -> None:
    """What a step did: its message, or the JSON document with the change (and the gates it passed)."""
    if not as_json:
        Console().print(result.message)
        return
    document: dict[str, Any] = {"ok": True, "message": result.message}
    if with_gates:
        document["gates"] = [gate_json(gate) for gate in result.gates]
    if result.change is not None:
        document["change"] = change_json(result.change)
    print_json(document)


# --- commands ------------------------------------------------------------------------------------

rollout_app = typer.Typer(
    name="rollout",
    help="Move stage validation along warn -> enforce 10% -> 50% -> 100% -> sunset, gated by measurements.",
    no_args_is_help=True,
)


@rollout_app.command("status")
def status_command(
    as_json: JsonOption = False,
    database_url: DatabaseUrlOption = None,
    prometheus_url: PrometheusUrlOption = None,
    gates_file: GatesFileOption = None,
    backup_dir: BackupDirOption = DEFAULT_BACKUP_DIR,
) -> None:
    """Current phase, time in it, and every gate of the next step. Exit 0 only when the step is allowed."""
    sources = _Sources(database_url, prometheus_url, gates_file, backup_dir)
    with one_line_errors(as_json), _controller(sources) as controller:
        status = controller.status()
    if as_json:
        print_json({"ok": True, **status.to_json()})
    else:
        render_status(status, Console())
    raise typer.Exit(STATUS_EXIT_CODES[status.verdict])


@rollout_app.command("advance")
def advance_command(
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            metavar="PHASE",
            help="Target phase: warn, enforce-10, enforce-50, enforce-100, sunset.",
        ),
    ] = None,
    canary_client: Annotated[
        list[str] | None,
        typer.Option(
            "--canary-client",
            metavar="NAME",
            help="API key name enforced first whatever the percentage (repeatable; replaces the named "
            "clients; default: keep them).",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Override failing gates (needs --reason; audited).")
    ] = False,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (required with --force).")] = None,
    actor: ActorOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseUrlOption = None,
    prometheus_url: PrometheusUrlOption = None,
    gates_file: GatesFileOption = None,
    backup_dir: BackupDirOption = DEFAULT_BACKUP_DIR,
) -> None:
    """Move one step along the ladder when every gate passes."""
    with one_line_errors(as_json):
        target: Phase | None = parse_phase(to) if to is not None else None
        who = _actor(actor)
        with _controller(_Sources(database_url, prometheus_url, gates_file, backup_dir)) as controller:
            try:
                result = controller.advance(
                    actor=who, reason=reason, to=target, force=force, canary_clients=canary_client
                )
            except FundmodelError as exc:
                gates = exc.extra.get("gates")
                if gates and not as_json:
                    shown = [gate_from_json(g) for g in gates]
                    Console(stderr=True).print(gates_table(shown, "gates"))
                raise
    _log_change(result.change)
    _print_step(result, as_json=as_json, with_gates=True)


@rollout_app.command("rollback")
def rollback_command(
    reason: Annotated[str, typer.Option("--reason", help="Why (audited).")],
    actor: ActorOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Go back to warn at once from any enforce percentage."""
    with one_line_errors(as_json):
        who = _actor(actor)
        sources = _Sources.store_only(database_url)
        with _controller(sources) as controller:
            result = controller.rollback(actor=who, reason=reason)
    _log_change(result.change)
    _print_step(result, as_json=as_json)


@rollout_app.command("extend-warn")
def extend_warn_command(
    until: Annotated[str, typer.Option("--until", help="New warn deadline (YYYY-MM-DD or ISO 8601, UTC).")],
    reason: Annotated[str, typer.Option("--reason", help="Why warn is kept longer (audited).")],
    client: Annotated[
        list[str] | None, typer.Option("--client", help="A client that needs it (repeatable).")
    ] = None,
    actor: ActorOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Record a decision to keep warn past MAX_WARN_DURATION, for named clients, until a date."""
    with one_line_errors(as_json):
        deadline = _parse_until(until)
        who = _actor(actor)
        with _controller(_Sources.store_only(database_url)) as controller:
            result = controller.extend_warn(actor=who, reason=reason, until=deadline, clients=client or [])
    _print_step(result, as_json=as_json)


@rollout_app.command("exempt")
def exempt_command(
    client: Annotated[str, typer.Option("--client", metavar="NAME", help="The client's API key name.")],
    reason: Annotated[str, typer.Option("--reason", help="Why the client may wait (audited).")],
    until: Annotated[
        str | None,
        typer.Option("--until", help="When the exemption ends by itself (YYYY-MM-DD or ISO 8601, UTC)."),
    ] = None,
    revoke: Annotated[
        bool, typer.Option("--revoke", help="End the client's exemption now instead of granting one.")
    ] = False,
    actor: ActorOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseUrlOption = None,
    gates_file: GatesFileOption = None,
) -> None:
    """Exempt one client from the client gates (enforce 100 %, sunset) until a date, or --revoke it."""
    with one_line_errors(as_json):
        if revoke == (until is not None):
            raise InvalidInputError(
                "give --until to grant an exemption, or --revoke to end one", field="until"
            )
        who = _actor(actor)
        sources = _Sources(database_url, None, gates_file, DEFAULT_BACKUP_DIR)
        with _controller(sources) as controller:
            if until is None:
                result = controller.revoke_exemption(actor=who, reason=reason, client=client)
            else:
                deadline = _parse_until(until)
                result = controller.exempt(actor=who, reason=reason, client=client, until=deadline)
    _print_step(result, as_json=as_json)


@rollout_app.command("reset-observation")
def reset_observation_command(
    reason: Annotated[str, typer.Option("--reason", help="Why the observation starts over (audited).")],
    actor: ActorOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Start the current phase's observation over after a fixed incident (audited; the mode is unchanged)."""
    with one_line_errors(as_json):
        who = _actor(actor)
        with _controller(_Sources.store_only(database_url)) as controller:
            result = controller.reset_observation(actor=who, reason=reason)
    _print_step(result, as_json=as_json)


@rollout_app.command("history")
def history_command(
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000, help="How many changes.")] = 50,
    as_json: JsonOption = False,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Audited mode changes (rollout steps, manual changes, automatic downgrades), newest first."""
    sources = _Sources.store_only(database_url)
    with one_line_errors(as_json), _controller(sources) as controller:
        changes = controller.history(limit)
    if as_json:
        print_json({"ok": True, "changes": [change_json(c) for c in changes]})
    else:
        render_history(changes, Console())


def _parse_until(text: str) -> datetime:
    return parse_utc_time(text, option="until", expected="a date (YYYY-MM-DD or ISO 8601)")


# Defined in its own module (it reads the usage ledger, not the rollout controller).
add_offenders_command(rollout_app)
add_brownout_commands(rollout_app)


def register(app: typer.Typer) -> None:
    app.add_typer(rollout_app, name="rollout")
