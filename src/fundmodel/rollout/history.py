"""Read-only queries on the mode audit log (``stage_validation_audit``) that the rollout needs."""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from fundmodel.db.mode_store import audited_state
from fundmodel.db.tables import stage_validation_audit as audit
from fundmodel.db.values import as_utc
from fundmodel.errors import StoreUnavailableError
from fundmodel.rollout.phases import same_phase
from fundmodel.validation import ModeState, ValidationMode

AUTO_DOWNGRADE_SOURCE = "alertmanager"
ROLLOUT_SOURCE = "rollout"
START_ACTION = "start"
"""The ``rollout.action`` of the audit row that stores the first-run state: where the ladder begins."""
RESET_OBSERVATION_ACTION = "reset_observation"
_PAGE = 200


@dataclass(frozen=True, slots=True)
class PhaseTimes:
    """From the audit log: when the current phase and its rollout step began, and when warn began."""

    entered_at: datetime | None
    """The change that moved the store into the current phase, by any source."""
    step_began: datetime | None
    """The rollout's own step into the current phase (``entered_at`` when there is none)."""
    active_since: datetime | None
    """The change that last left ``off``: the start of the period ``MAX_WARN_DURATION`` caps."""


@dataclass(frozen=True, slots=True)
class AuditedChange:
    changed_at: datetime
    old: ModeState
    new: ModeState
    source: str = "manual"
    extra: Mapping[str, Any] = field(default_factory=dict)
    actor: str = ""
    reason: str = ""

    @property
    def action(self) -> str | None:
        rollout = self.extra.get("rollout")
        action = rollout.get("action") if isinstance(rollout, Mapping) else None
        return action if isinstance(action, str) else None

    @property
    def starts_store(self) -> bool:
        """The audited first-run state: the store's start counts as entering that phase."""
        return self.action == START_ACTION


def find_phase_times(changes_newest_first: Iterable[AuditedChange], current: ModeState) -> PhaseTimes:
    """Same-phase changes (``warn 10 % -> warn 100 %``) start nothing; a downgrade from ``enforce`` back
    to ``warn`` does not restart the warn period. ``None`` where the log does not say (never set).

    ``step_began`` differs from ``entered_at`` when the phase was re-entered by hand (``fundmodel mode set``)
    after an automatic downgrade: the rollout step still counts from the rollout's own advance, so the
    downgrade in between stays visible to the "no auto-downgrade since the step began" gate.
    """
    entered: datetime | None = None
    step: datetime | None = None
    active: datetime | None = None
    off = ValidationMode.OFF
    for change in changes_newest_first:
        entering = same_phase(change.new, current) and (
            change.starts_store or not same_phase(change.old, current)
        )
        if entering and entered is None:
            entered = change.changed_at
        if entering and step is None and change.source == ROLLOUT_SOURCE:
            step = change.changed_at
        if (
            active is None
            and current.mode is not off
            and (change.old.mode is off or change.starts_store)
            and change.new.mode is not off
        ):
            active = change.changed_at
    return PhaseTimes(entered, step or entered, active)


def audited_changes(engine: Engine) -> Generator[AuditedChange, None, None]:
    """Every audited mode change, newest first, read page by page."""
    before_id: int | None = None
    try:
        with engine.connect() as connection:
            while True:
                query = select(audit).order_by(audit.c.id.desc()).limit(_PAGE)
                if before_id is not None:
                    query = query.where(audit.c.id < before_id)
                rows = connection.execute(query).all()
                for row in rows:
                    yield AuditedChange(
                        as_utc(row.changed_at),
                        audited_state(row, "old"),
                        audited_state(row, "new"),
                        str(row.source),
                        dict(row.extra or {}),
                        str(row.actor),
                        str(row.reason),
                    )
                if len(rows) < _PAGE:
                    return
                before_id = int(rows[-1].id)
    except SQLAlchemyError as exc:
        raise StoreUnavailableError(f"mode audit unreadable: {_first_line(exc)}") from exc


def phase_times(engine: Engine, current: ModeState) -> PhaseTimes:
    changes = audited_changes(engine)
    try:
        return find_phase_times(changes, current)
    finally:
        changes.close()


def auto_downgrades_since(engine: Engine, since: datetime) -> int:
    """Changes written by the Alertmanager webhook at or after ``since``."""
    count = 0
    changes = audited_changes(engine)
    try:
        for change in changes:
            if change.changed_at < since:
                break
            count += change.source == AUTO_DOWNGRADE_SOURCE
    finally:
        changes.close()
    return count


def latest_observation_reset(engine: Engine, since: datetime | None) -> AuditedChange | None:
    """The newest ``rollout reset-observation`` recorded at or after ``since`` (the current phase's start)."""
    changes = audited_changes(engine)
    try:
        for change in changes:
            if since is not None and change.changed_at < since:
                return None
            if change.action == RESET_OBSERVATION_ACTION:
                return change
    finally:
        changes.close()
    return None


def first_change_at(engine: Engine) -> datetime | None:
    """When the oldest audited change was written (the store's first record), ``None`` without any."""
    try:
        with engine.connect() as connection:
            first = connection.execute(select(audit.c.changed_at).order_by(audit.c.id).limit(1)).scalar()
    except SQLAlchemyError as exc:
        raise StoreUnavailableError(f"mode audit unreadable: {_first_line(exc)}") from exc
    return None if first is None else as_utc(first)


def latest_warn_extension(engine: Engine, since: datetime) -> datetime | None:
    """The ``until`` of the newest ``extend-warn`` decision recorded at or after ``since``."""
    changes = audited_changes(engine)
    try:
        for change in changes:
            if change.changed_at < since:
                return None
            extension = change.extra.get("warn_extension")
            if isinstance(extension, dict) and isinstance(extension.get("until"), str):
                try:
                    return as_utc(datetime.fromisoformat(extension["until"]))
                except ValueError:
                    continue
    finally:
        changes.close()
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
