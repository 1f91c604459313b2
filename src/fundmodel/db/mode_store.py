"""The stage-validation mode store: mode + canary percentage in the database, audited, cached per process.

The database row is shared by every worker and replica. Each change is written together with its audit row
in one transaction (compare-and-swap on a version column, so two concurrent writers never lose an audit
entry). Requests read only the in-process cache (:meth:`ModeStore.current`), which a background refresher
keeps fresh; when the store cannot be read, the last known value stays in force. Before any row exists, the
mode is the process default (``STAGE_VALIDATION_MODE``). What a write may contain is checked in
:mod:`fundmodel.db.mode_request`.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar, overload

from sqlalchemy import Connection, Engine, Row, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

# Re-exported: callers name the sources, the limits and the request through the store they write to.
from fundmodel.db.mode_request import MAX_ACTOR_LENGTH as MAX_ACTOR_LENGTH
from fundmodel.db.mode_request import MAX_REASON_LENGTH as MAX_REASON_LENGTH
from fundmodel.db.mode_request import ModeChangeSource as ModeChangeSource
from fundmodel.db.mode_request import ModeWriteRequest as ModeWriteRequest
from fundmodel.db.tables import api_keys, stage_validation_audit, stage_validation_state
from fundmodel.db.values import as_utc
from fundmodel.errors import InvalidInputError, StoreUnavailableError
from fundmodel.notifications.events import mode_change_event
from fundmodel.notifications.outbox import enqueue as enqueue_notification
from fundmodel.validation import ModeState, ValidationMode

STATE_ROW_ID = 1
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
        return _stored(row)

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
        canary_clients: Iterable[str] | None = ...,
        aliases_rejected: bool | None = ...,
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
        canary_clients: Iterable[str] | None = ...,
        aliases_rejected: bool | None = ...,
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
        canary_clients: Iterable[str] | None = None,
        aliases_rejected: bool | None = None,
        only_if: Callable[[ModeState], bool] | None = None,
    ) -> ConditionalWrite:
        """Write a new mode with its audit row, atomically.

        ``canary_clients`` (API key names; a name not among the active keys is refused) and
        ``aliases_rejected`` replace the stored values when given; ``None`` keeps them (so a downgrade
        or a percentage change does not forget who the named canary clients are).

        ``only_if`` is checked against the state inside the write (e.g. "only when enforcing", for the
        auto-downgrade): when it returns False nothing is written and the result is a
        :class:`ModeWriteRefused`. Without ``only_if`` the result is always the :class:`ModeChange`.
        """
        request = ModeWriteRequest.checked(
            mode,
            canary_percent,
            actor=actor,
            reason=reason,
            source=source,
            extra=extra,
            canary_clients=canary_clients,
            aliases_rejected=aliases_rejected,
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

    def initialize(self, *, actor: str, reason: str, extra: Mapping[str, Any]) -> ModeChange | None:
        """Store the first-run state (the process default) with its audit row when nothing is stored yet,
        so the rollout has an audited start; ``None`` when a state is already stored (nothing written)."""
        request = ModeWriteRequest.checked(
            self._default.mode,
            self._default.canary_percent,
            actor=actor,
            reason=reason,
            source=ModeChangeSource.ROLLOUT,
            extra=extra,
        )

        def first_write(transaction: ModeTransaction) -> ModeChange | None:
            if transaction.read_locked().version:
                return None
            return transaction.write(request)

        return self.transact(first_write)

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
                old=audited_state(row, "old"),
                new=audited_state(row, "new"),
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
        return _stored(row)

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
        old = _stored(row).state if row is not None else self._store.default
        new, actor, reason, source, extra = (
            request.applied_to(old),
            request.actor,
            request.reason,
            request.source,
            request.extra,
        )
        if only_if is not None and not only_if(old):
            self.observed = StoredMode(old, int(row.version) if row else 0, None, None)
            return ModeWriteRefused(old)
        self._refuse_unknown_clients(new.canary_clients - old.canary_clients)
        values = {
            "mode": new.mode.value,
            "canary_percent": new.canary_percent,
            "canary_clients": new.sorted_clients,
            "aliases_rejected": new.aliases_rejected,
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
                old_canary_clients=old.sorted_clients,
                new_canary_clients=new.sorted_clients,
                old_aliases_rejected=old.aliases_rejected,
                new_aliases_rejected=new.aliases_rejected,
                actor=actor,
                reason=reason,
                source=source,
                extra=extra,
            )
            .returning(stage_validation_audit.c.id)
        ).scalar_one()
        # In the same transaction: the webhooks are told of this change exactly when it commits.
        enqueue_notification(
            self._connection,
            mode_change_event(
                audit_id=int(audit_id),
                old=old,
                new=new,
                actor=actor,
                reason=reason,
                source=source,
                changed_at=now,
                action=_rollout_action(extra),
            ),
        )
        self.observed = StoredMode(new, version, now, actor)
        return ModeChange(int(audit_id), old, new, actor, reason, source, now, extra)

    def _refuse_unknown_clients(self, added: frozenset[str]) -> None:
        """Newly named canary clients must be active API keys (names already stored are kept as they are,
        so a revoked key never blocks a downgrade)."""
        if not added:
            return
        known = set(
            self._connection.execute(
                select(api_keys.c.name).where(
                    api_keys.c.name.in_(sorted(added)), api_keys.c.revoked_at.is_(None)
                )
            ).scalars()
        )
        unknown = sorted(added - known)
        if unknown:
            raise InvalidInputError(
                f"unknown canary client {', '.join(map(repr, unknown))}: not the name of an active API key "
                "(see `fundmodel keys list`)",
                field="canaryClients",
            )

    def _locked_row(self) -> Row[Any] | None:
        state = stage_validation_state
        return self._connection.execute(
            select(state).where(state.c.id == STATE_ROW_ID).with_for_update()
        ).first()


class _LostRaceError(Exception):
    """Another writer changed the row between our read and our write; retry."""


def audited_state(row: Row[Any], which: str) -> ModeState:
    """The ``old`` or ``new`` state of one ``stage_validation_audit`` row."""
    return ModeState(
        ValidationMode(getattr(row, f"{which}_mode")),
        float(getattr(row, f"{which}_canary_percent")),
        frozenset(getattr(row, f"{which}_canary_clients") or ()),
        bool(getattr(row, f"{which}_aliases_rejected")),
    )


def _stored(row: Row[Any]) -> StoredMode:
    state = ModeState(
        ValidationMode(row.mode),
        float(row.canary_percent),
        frozenset(row.canary_clients or ()),
        bool(row.aliases_rejected),
    )
    return StoredMode(state, int(row.version), as_utc(row.updated_at), str(row.updated_by))


def _rollout_action(extra: Mapping[str, Any]) -> str | None:
    """The rollout action an audit row's ``extra`` names (``advance``, ``rollback``, ...), if any."""
    rollout = extra.get("rollout")
    action = rollout.get("action") if isinstance(rollout, Mapping) else None
    return action if isinstance(action, str) else None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
