"""The stage-validation mode store: mode + canary percentage in the database, audited, cached per process.

The database row is shared by every worker and replica. Each change is written together with its audit row
in one transaction (compare-and-swap on a version column, so two concurrent writers never lose an audit
entry). Requests read only the in-process cache (:meth:`ModeStore.current`), which a background refresher
keeps fresh; when the store cannot be read, the last known value stays in force. Before any row exists, the
mode is the process default (``STAGE_VALIDATION_MODE``).
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar, overload

from sqlalchemy import Connection, Engine, Row, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from fundmodel.db.tables import stage_validation_audit, stage_validation_state
from fundmodel.db.values import as_utc
from fundmodel.errors import InvalidInputError, StoreUnavailableError
from fundmodel.validation import ModeState, ValidationMode

STATE_ROW_ID = 1
MAX_ACTOR_LENGTH = 100
MAX_REASON_LENGTH = 1000


class ModeChangeSource(StrEnum):
    """Which path changed the mode: the audit row's ``source`` and the mode-change metric's label."""

    MANUAL = "manual"
    ALERTMANAGER = "alertmanager"
    ROLLOUT = "rollout"

    __hash__ = str.__hash__


MODE_CHANGE_SOURCES = frozenset(ModeChangeSource)
_WRITE_ATTEMPTS = 20
_RETRY_BACKOFF_SECONDS = 0.005
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class StoredMode:
    """The mode as read from the store, with who set it and when (``None`` fields: never set)."""

    state: ModeState
    version: int
    updated_at: datetime | None
    updated_by: str | None


@dataclass(frozen=True, slots=True)
class ModeChange:
    """One audited change."""

    audit_id: int
    old: ModeState
    new: ModeState
    actor: str
    reason: str
    source: str
    changed_at: datetime
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return self.old != self.new


@dataclass(frozen=True, slots=True)
class ModeWriteRefused:
    """A conditional write whose ``only_if`` refused the stored state: nothing was written."""

    current: ModeState
    """The state the condition was checked against (what the store holds)."""


ConditionalWrite = ModeChange | ModeWriteRefused
"""What a write with ``only_if`` gives back: the audited change, or why nothing was written."""


@dataclass(frozen=True, slots=True)
class _Cached:
    stored: StoredMode
    read_at: float


class ModeStore:
    """Reads and writes the mode; :meth:`current` never touches the database."""

    def __init__(
        self,
        engine: Engine,
        *,
        default: ModeState,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._default = default
        self._clock = clock
        self._lock = threading.Lock()
        self._cached = _Cached(StoredMode(default, 0, None, None), read_at=-math.inf)
        # Bumped by every write through this store, so a refresh whose read raced a write cannot
        # put the older value back into the cache.
        self._writes = 0

    @property
    def default(self) -> ModeState:
        return self._default

    def current(self) -> ModeState:
        """The cached state: what requests use. Never blocks on I/O."""
        return self._cached.stored.state

    def current_stored(self) -> StoredMode:
        return self._cached.stored

    def cache_age(self) -> float:
        """Seconds since the last successful read (infinite before the first one)."""
        return self._clock() - self._cached.read_at

    def read(self) -> StoredMode:
        """Read the store now. Raises :class:`StoreUnavailableError` when it cannot be read."""
        try:
            with self._engine.connect() as connection:
                row = connection.execute(
                    select(stage_validation_state).where(stage_validation_state.c.id == STATE_ROW_ID)
                ).first()
        except SQLAlchemyError as exc:
            raise StoreUnavailableError(f"mode store unreadable: {_first_line(exc)}") from exc
        if row is None:
            return StoredMode(self._default, 0, None, None)
        return StoredMode(
            ModeState(ValidationMode(row.mode), float(row.canary_percent)),
            int(row.version),
            as_utc(row.updated_at),
            str(row.updated_by),
        )

    def refresh(self) -> bool:
        """Re-read into the cache; on failure keep the last known value and return False."""
        writes_before = self._writes
        try:
            stored = self.read()
        except StoreUnavailableError:
            return False
        with self._lock:
            if self._writes == writes_before:
                self._cached = _Cached(stored, self._clock())
        return True

    @overload
    def set(
        self,
        mode: ValidationMode,
        canary_percent: float = ...,
        *,
        actor: str,
        reason: str,
        source: str = ...,
        extra: Mapping[str, Any] | None = ...,
        only_if: None = ...,
    ) -> ModeChange: ...

    @overload
    def set(
        self,
        mode: ValidationMode,
        canary_percent: float = ...,
        *,
        actor: str,
        reason: str,
        source: str = ...,
        extra: Mapping[str, Any] | None = ...,
        only_if: Callable[[ModeState], bool],
    ) -> ConditionalWrite: ...

    def set(
        self,
        mode: ValidationMode,
        canary_percent: float = 100.0,
        *,
        actor: str,
        reason: str,
        source: str = ModeChangeSource.MANUAL,
        extra: Mapping[str, Any] | None = None,
        only_if: Callable[[ModeState], bool] | None = None,
    ) -> ConditionalWrite:
        """Write a new mode with its audit row, atomically.

        ``only_if`` is checked against the state inside the write (e.g. "only when enforcing", for the
        auto-downgrade): when it returns False nothing is written and the result is a
        :class:`ModeWriteRefused`. Without ``only_if`` the result is always the :class:`ModeChange`.
        """
        request = ModeWriteRequest.checked(
            mode, canary_percent, actor=actor, reason=reason, source=source, extra=extra
        )
        return self.transact(lambda transaction: transaction.write(request, only_if))

    def transact(self, work: Callable[[ModeTransaction], _T]) -> _T:
        """Run ``work`` in one database transaction that may change the mode; its result when committed.

        Other writes of the same transaction (e.g. the webhook's delivery keys) commit or roll back
        together with the mode change. ``work`` may run more than once: a lost compare-and-swap is
        retried from the start. The cache learns the written state only after the commit. Raises
        :class:`StoreUnavailableError` when the database fails.
        """
        for attempt in range(_WRITE_ATTEMPTS):
            transaction: ModeTransaction | None = None
            try:
                with self._engine.begin() as connection:
                    transaction = ModeTransaction(self, connection)
                    result = work(transaction)
            except _LostRaceError:
                # SQLite ignores FOR UPDATE, so racing writers retry the compare-and-swap; a jittered,
                # growing pause keeps them from colliding again in lockstep. Mode changes are rare.
                time.sleep(_RETRY_BACKOFF_SECONDS * (attempt + 1) * random.random())  # noqa: S311 (jitter)
                continue
            except SQLAlchemyError as exc:
                raise StoreUnavailableError(f"mode store not written: {_first_line(exc)}") from exc
            if transaction.observed is not None:
                self._remember(transaction.observed)
            return result
        raise StoreUnavailableError("mode store not written: too many concurrent writers")

    def audit_log(self, limit: int = 50) -> list[ModeChange]:
        """The most recent changes, newest first."""
        audit = stage_validation_audit
        try:
            with self._engine.connect() as connection:
                rows = connection.execute(select(audit).order_by(audit.c.id.desc()).limit(limit)).all()
        except SQLAlchemyError as exc:
            raise StoreUnavailableError(f"mode audit unreadable: {_first_line(exc)}") from exc
        return [
            ModeChange(
                audit_id=int(row.id),
                old=ModeState(ValidationMode(row.old_mode), float(row.old_canary_percent)),
                new=ModeState(ValidationMode(row.new_mode), float(row.new_canary_percent)),
                actor=row.actor,
                reason=row.reason,
                source=row.source,
                changed_at=as_utc(row.changed_at),
                extra=dict(row.extra or {}),
            )
            for row in rows
        ]

    def _remember(self, stored: StoredMode) -> None:
        with self._lock:
            self._writes += 1
            self._cached = _Cached(stored, self._clock())


@dataclass(frozen=True, slots=True)
class ModeWriteRequest:
    """A validated mode change, ready to be written."""

    new: ModeState
    actor: str
    reason: str
    source: str
    extra: dict[str, Any]

    @classmethod
    def checked(
        cls,
        mode: ValidationMode,
        canary_percent: float,
        *,
        actor: str,
        reason: str,
        source: str,
        extra: Mapping[str, Any] | None = None,
    ) -> ModeWriteRequest:
        if source not in MODE_CHANGE_SOURCES:
            raise InvalidInputError(
                f"source must be one of {', '.join(sorted(MODE_CHANGE_SOURCES))}", field="source"
            )
        return cls(
            new=ModeState(ValidationMode(mode), _check_canary(canary_percent)),
            actor=_check_text("actor", actor, MAX_ACTOR_LENGTH),
            reason=_check_text("reason", reason, MAX_REASON_LENGTH),
            source=source,
            extra=dict(extra or {}),
        )


class ModeTransaction:
    """The mode row inside one transaction of :meth:`ModeStore.transact`: read it locked, change it."""

    def __init__(self, store: ModeStore, connection: Connection) -> None:
        self._store = store
        self._connection = connection
        # What this transaction read or wrote: the cache takes it once the transaction commits.
        self.observed: StoredMode | None = None

    @property
    def connection(self) -> Connection:
        """For writes that must commit or roll back together with the mode change."""
        return self._connection

    def read_locked(self) -> StoredMode:
        """The stored mode, its row locked until the transaction ends (PostgreSQL; SQLite writers are
        serialized by the database lock once the transaction has written anything)."""
        row = self._locked_row()
        if row is None:
            return StoredMode(self._store.default, 0, None, None)
        return StoredMode(
            ModeState(ValidationMode(row.mode), float(row.canary_percent)),
            int(row.version),
            as_utc(row.updated_at),
            str(row.updated_by),
        )

    @overload
    def write(self, request: ModeWriteRequest, only_if: None = ...) -> ModeChange: ...

    @overload
    def write(self, request: ModeWriteRequest, only_if: Callable[[ModeState], bool]) -> ConditionalWrite: ...

    def write(
        self, request: ModeWriteRequest, only_if: Callable[[ModeState], bool] | None = None
    ) -> ConditionalWrite:
        """Write the change with its audit row (:class:`ModeWriteRefused` when ``only_if`` refuses)."""
        state = stage_validation_state
        now = datetime.now(UTC)
        row = self._locked_row()
        old = (
            ModeState(ValidationMode(row.mode), float(row.canary_percent))
            if row is not None
            else self._store.default
        )
        new, actor, reason, source, extra = (
            request.new,
            request.actor,
            request.reason,
            request.source,
            request.extra,
        )
        if only_if is not None and not only_if(old):
            self.observed = StoredMode(old, int(row.version) if row else 0, None, None)
            return ModeWriteRefused(old)
        values = {
            "mode": new.mode.value,
            "canary_percent": new.canary_percent,
            "updated_at": now,
            "updated_by": actor,
        }
        if row is None:
            version = 1
            try:
                self._connection.execute(insert(state).values(id=STATE_ROW_ID, version=version, **values))
            except IntegrityError as exc:
                raise _LostRaceError from exc
        else:
            version = int(row.version) + 1
            result = self._connection.execute(
                update(state)
                .where(state.c.id == STATE_ROW_ID, state.c.version == row.version)
                .values(version=version, **values)
            )
            if result.rowcount != 1:
                raise _LostRaceError
        audit_id = self._connection.execute(
            insert(stage_validation_audit)
            .values(
                changed_at=now,
                old_mode=old.mode.value,
                old_canary_percent=old.canary_percent,
                new_mode=new.mode.value,
                new_canary_percent=new.canary_percent,
                actor=actor,
                reason=reason,
                source=source,
                extra=extra,
            )
            .returning(stage_validation_audit.c.id)
        ).scalar_one()
        self.observed = StoredMode(new, version, now, actor)
        return ModeChange(int(audit_id), old, new, actor, reason, source, now, extra)

    def _locked_row(self) -> Row[Any] | None:
        state = stage_validation_state
        return self._connection.execute(
            select(state).where(state.c.id == STATE_ROW_ID).with_for_update()
        ).first()


class _LostRaceError(Exception):
    """Another writer changed the row between our read and our write; retry."""


def _check_canary(value: float) -> float:
    number = float(value)
    if not math.isfinite(number) or not 0.0 <= number <= 100.0:
        raise InvalidInputError(
            f"canary percentage must be between 0 and 100, got {value!r}", field="canaryPercent"
        )
    return number


def _check_text(name: str, value: str, limit: int) -> str:
    text = value.strip()
    if not text:
        raise InvalidInputError(f"{name} is required", field=name)
    if len(text) > limit or any(ord(ch) < 32 and ch not in "\t" for ch in text):
        raise InvalidInputError(
            f"{name} must be at most {limit} characters without control characters", field=name
        )
    return text


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
