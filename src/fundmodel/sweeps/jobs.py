"""The sweep-job store: jobs submitted, read and cancelled per client, claimed and finished by workers.

Every state change is one conditional ``UPDATE`` (or ``INSERT … SELECT``) that is atomic on SQLite (one
writer at a time) and on PostgreSQL (the row lock re-checks the condition), so any number of server
processes share one table:

- **submit**: inserted only while the client has fewer than its bound of queued + running jobs (on
  PostgreSQL under a per-client advisory lock, so two simultaneous submissions cannot both pass the count).
- **claim**: a queued job, or a running one whose lease ran out (its process died), becomes this worker's
  with a lease; ``attempts`` counts claims. A job whose lease ran out ``max_attempts`` times is failed with
  the reason (``JOB_ABANDONED``) instead of being claimed again: never silently lost, never retried for ever.
- **heartbeat / progress**: the lease owner extends the lease and records points done; it learns a
  cancellation from the row. A worker that lost its lease (another claimed the job) is told so and stops.
- **finish**: only the lease owner records the result, error or cancellation.
- **cancel**: a queued job (or one whose worker is gone) is cancelled at once; a running one is asked to
  stop between points (``cancel_requested``); a finished one is deleted.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, func, insert, literal, or_, select, text, update
from sqlalchemy.sql.elements import ColumnElement

from fundmodel.db.sweep_job_tables import ACTIVE_STATUSES, sweep_jobs
from fundmodel.db.values import as_utc

__all__ = [
    "ABANDONED_CODE",
    "CancelOutcome",
    "ClaimedJob",
    "JobRecord",
    "JobStore",
    "new_job_id",
]

ABANDONED_CODE = "JOB_ABANDONED"
"""The error code of a job failed because the processes running it kept stopping (leases ran out)."""


def new_job_id() -> str:
    return secrets.token_hex(16)


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A job as its client sees it."""

    job_id: str
    kind: str
    status: str
    points_total: int
    points_done: int
    attempts: int
    cancel_requested: bool
    warnings: list[dict[str, Any]]
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.status not in ACTIVE_STATUSES


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """A job a worker now holds the lease of."""

    job_id: str
    kind: str
    request: dict[str, Any]
    points_total: int
    attempt: int


@dataclass(frozen=True, slots=True)
class CancelOutcome:
    """What a cancel did: ``cancelled`` (at once), ``requested`` (running: stops between points) or
    ``deleted`` (it had finished); ``record`` is the job after it (``None`` once deleted)."""

    action: str
    record: JobRecord | None


class JobStore:
    """The ``sweep_jobs`` table of one database."""

    def __init__(self, engine: Engine, *, clock: Any = None) -> None:
        self._engine = engine
        self._clock = clock or (lambda: datetime.now(UTC))

    def now(self) -> datetime:
        moment: datetime = self._clock()
        return moment

    # -- clients -----------------------------------------------------------------------------------

    def submit(
        self,
        *,
        client_id: str,
        kind: str,
        request: Mapping[str, Any],
        warnings: list[dict[str, Any]],
        points_total: int,
        max_active: int,
    ) -> JobRecord | None:
        """Queue a job, or ``None`` when the client already has ``max_active`` queued or running."""
        job_id = new_job_id()
        now = self.now()
        values: dict[str, Any] = {
            "id": job_id,
            "client_id": client_id,
            "kind": kind,
            "status": "queued",
            "request": dict(request),
            "warnings": warnings,
            "points_total": points_total,
            "points_done": 0,
            "attempts": 0,
            "cancel_requested": False,
            "created_at": now,
        }
        active = (
            select(func.count())
            .select_from(sweep_jobs)
            .where(sweep_jobs.c.client_id == client_id, sweep_jobs.c.status.in_(ACTIVE_STATUSES))
            .scalar_subquery()
        )
        columns = list(values)
        row = select(*(literal(values[name], type_=sweep_jobs.c[name].type) for name in columns)).where(
            active < max_active
        )
        with self._engine.begin() as connection:
            _lock_client(connection, client_id)
            # RETURNING, not rowcount: psycopg reports no row count for INSERT … SELECT.
            inserted = connection.execute(
                insert(sweep_jobs).from_select(columns, row).returning(sweep_jobs.c.id)
            ).first()
        if inserted is None:
            return None
        return self.get(client_id, job_id)

    def get(self, client_id: str, job_id: str) -> JobRecord | None:
        """The client's job; ``None`` when there is no such job *or it is another client's*."""
        with self._engine.connect() as connection:
            row = connection.execute(
                select(sweep_jobs).where(sweep_jobs.c.id == job_id, sweep_jobs.c.client_id == client_id)
            ).one_or_none()
        return None if row is None else _record(row)

    def active_count(self, client_id: str) -> int:
        with self._engine.connect() as connection:
            return int(
                connection.execute(
                    select(func.count())
                    .select_from(sweep_jobs)
                    .where(sweep_jobs.c.client_id == client_id, sweep_jobs.c.status.in_(ACTIVE_STATUSES))
                ).scalar_one()
            )

    def cancel(self, client_id: str, job_id: str) -> CancelOutcome | None:
        """Cancel the client's job (see the module docstring); ``None`` when it is not the client's."""
        now = self.now()
        own = and_(sweep_jobs.c.id == job_id, sweep_jobs.c.client_id == client_id)
        with self._engine.begin() as connection:
            cancelled = connection.execute(
                update(sweep_jobs)
                .where(own, or_(sweep_jobs.c.status == "queued", _running_without_worker(now)))
                .values(
                    status="cancelled",
                    cancel_requested=True,
                    lease_owner=None,
                    lease_until=None,
                    finished_at=now,
                )
            )
            if cancelled.rowcount == 1:
                action = "cancelled"
            else:
                requested = connection.execute(
                    update(sweep_jobs)
                    .where(own, sweep_jobs.c.status == "running")
                    .values(cancel_requested=True)
                )
                if requested.rowcount == 1:
                    action = "requested"
                else:
                    removed = connection.execute(
                        delete(sweep_jobs).where(own, sweep_jobs.c.status.not_in(ACTIVE_STATUSES))
                    )
                    if removed.rowcount != 1:
                        return None
                    return CancelOutcome("deleted", None)
        return CancelOutcome(action, self.get(client_id, job_id))

    # -- workers -----------------------------------------------------------------------------------

    def fail_abandoned(self, *, max_attempts: int) -> int:
        """Fail every running job whose lease ran out after its last allowed attempt; how many."""
        now = self.now()
        error = {
            "code": ABANDONED_CODE,
            "title": "Job abandoned",
            "detail": (
                f"the server process running this job stopped before finishing it {max_attempts} "
                "time(s) (its lease ran out); submit it again"
            ),
        }
        with self._engine.begin() as connection:
            failed = connection.execute(
                update(sweep_jobs)
                .where(_running_without_worker(now), sweep_jobs.c.attempts >= max_attempts)
                .values(status="failed", error=error, lease_owner=None, lease_until=None, finished_at=now)
            )
        return int(failed.rowcount)

    def claim(self, owner: str, *, lease: timedelta, max_attempts: int) -> ClaimedJob | None:
        """Take the oldest claimable job (queued, or running with its lease run out) for ``owner``."""
        self.fail_abandoned(max_attempts=max_attempts)
        now = self.now()
        claimable = and_(
            or_(sweep_jobs.c.status == "queued", _running_without_worker(now)),
            sweep_jobs.c.attempts < max_attempts,
        )
        with self._engine.begin() as connection:
            candidates = list(
                connection.execute(
                    select(sweep_jobs.c.id)
                    .where(claimable)
                    .order_by(sweep_jobs.c.created_at, sweep_jobs.c.id)
                    .limit(10)
                ).scalars()
            )
            for job_id in candidates:
                won = connection.execute(
                    update(sweep_jobs)
                    .where(sweep_jobs.c.id == job_id, claimable)
                    .values(
                        status="running",
                        lease_owner=owner,
                        lease_until=now + lease,
                        attempts=sweep_jobs.c.attempts + 1,
                        started_at=func.coalesce(sweep_jobs.c.started_at, now),
                    )
                )
                if won.rowcount != 1:
                    continue
                row = connection.execute(select(sweep_jobs).where(sweep_jobs.c.id == job_id)).one()
                return ClaimedJob(
                    job_id=row.id,
                    kind=row.kind,
                    request=dict(row.request),
                    points_total=int(row.points_total),
                    attempt=int(row.attempts),
                )
        return None

    def heartbeat(
        self, job_id: str, owner: str, *, lease: timedelta, points_done: int | None = None
    ) -> bool | None:
        """Extend the lease (and record progress): whether a cancellation was asked, ``None`` when the
        lease is no longer ``owner``'s (the job was re-claimed or finished: stop working on it)."""
        values: dict[str, Any] = {"lease_until": self.now() + lease}
        if points_done is not None:
            values["points_done"] = points_done
        held = _held(job_id, owner)
        with self._engine.begin() as connection:
            extended = connection.execute(update(sweep_jobs).where(held).values(**values))
            if extended.rowcount != 1:
                return None
            requested = connection.execute(
                select(sweep_jobs.c.cancel_requested).where(sweep_jobs.c.id == job_id)
            ).scalar_one()
        return bool(requested)

    def finish(
        self,
        job_id: str,
        owner: str,
        status: str,
        *,
        points_done: int,
        result: Mapping[str, Any] | None = None,
        error: Mapping[str, Any] | None = None,
    ) -> bool:
        """Record the end of a job this worker holds; ``False`` when the lease was lost meanwhile."""
        with self._engine.begin() as connection:
            finished = connection.execute(
                update(sweep_jobs)
                .where(_held(job_id, owner))
                .values(
                    status=status,
                    points_done=points_done,
                    result=None if result is None else dict(result),
                    error=None if error is None else dict(error),
                    lease_owner=None,
                    lease_until=None,
                    finished_at=self.now(),
                )
            )
        return finished.rowcount == 1

    def release(self, job_id: str, owner: str) -> bool:
        """Put a job this worker holds back in the queue (its server is shutting down): not an attempt."""
        with self._engine.begin() as connection:
            released = connection.execute(
                update(sweep_jobs)
                .where(_held(job_id, owner))
                .values(
                    status="queued",
                    points_done=0,
                    attempts=sweep_jobs.c.attempts - 1,
                    lease_owner=None,
                    lease_until=None,
                )
            )
        return released.rowcount == 1


def _held(job_id: str, owner: str) -> ColumnElement[bool]:
    return and_(
        sweep_jobs.c.id == job_id, sweep_jobs.c.status == "running", sweep_jobs.c.lease_owner == owner
    )


def _running_without_worker(now: datetime) -> ColumnElement[bool]:
    return and_(
        sweep_jobs.c.status == "running",
        or_(sweep_jobs.c.lease_until.is_(None), sweep_jobs.c.lease_until <= now),
    )


def _lock_client(connection: Connection, client_id: str) -> None:
    """One client's submissions in turn on PostgreSQL (SQLite runs the statement under its write lock)."""
    if connection.dialect.name == "postgresql":
        connection.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"sweep:{client_id}"}
        )


def _record(row: Any) -> JobRecord:
    return JobRecord(
        job_id=row.id,
        kind=row.kind,
        status=row.status,
        points_total=int(row.points_total),
        points_done=int(row.points_done),
        attempts=int(row.attempts),
        cancel_requested=bool(row.cancel_requested),
        warnings=list(row.warnings or []),
        result=None if row.result is None else dict(row.result),
        error=None if row.error is None else dict(row.error),
        created_at=as_utc(row.created_at),
        started_at=None if row.started_at is None else as_utc(row.started_at),
        finished_at=None if row.finished_at is None else as_utc(row.finished_at),
    )
