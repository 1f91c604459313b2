"""The sweep-job worker every server process runs in its background (started by the app's lifespan).

Each of ``SWEEP_WORKERS`` loops claims a queued job (or one whose process died: its lease ran out), runs it
in a worker thread (the Numba kernels release the GIL, so the event loop keeps serving) and renews the
lease from the event loop while the thread works, recording progress and learning a cancellation. The run
stops between points when the job is cancelled, when the lease was lost to another worker, or when the
server shuts down; on shutdown the job goes back to the queue for another process (not counted as an
attempt). A process killed outright leaves its lease to run out, and the job is claimed again by any
server, up to ``SWEEP_MAX_ATTEMPTS`` starts, then failed with ``JOB_ABANDONED``.

With ``DASK_SCHEDULER_ADDRESS`` set, a job's points run on that Dask cluster (``fundmodel.scaleout``), with
the same results; a scheduler that cannot be reached fails the job with that reason.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

import anyio
import anyio.to_thread
import structlog
from sqlalchemy.exc import SQLAlchemyError

from fundmodel.errors import FundmodelError
from fundmodel.scaleout import point_runner
from fundmodel.settings import Settings
from fundmodel.sweeps.jobs import ClaimedJob, JobStore
from fundmodel.sweeps.service import result_cancelled, run_job

__all__ = ["SweepWorker"]

_log = structlog.get_logger("fundmodel.sweeps")
_MAX_HEARTBEAT_SECONDS = 1.0


@dataclass(slots=True)
class _Run:
    """What the event loop and the job's thread share while one job runs."""

    stop: threading.Event = field(default_factory=threading.Event)
    points_done: int = 0
    lease_lost: bool = False

    def progress(self, done: int, _total: int) -> None:
        self.points_done = done  # one int written by the job thread, read by the heartbeat: no lock needed


@dataclass(frozen=True, slots=True)
class _Outcome:
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class SweepWorker:
    """Claims and runs sweep jobs of one database; :meth:`stop` before cancelling its task."""

    def __init__(self, store: JobStore, settings: Settings) -> None:
        self._store = store
        self._lease = timedelta(seconds=settings.sweep_lease_seconds)
        self._max_attempts = settings.sweep_max_attempts
        self._poll_seconds = settings.sweep_poll_interval_seconds
        self._loops = settings.sweep_workers
        self._dask_address = settings.dask_scheduler_address
        self._heartbeat_seconds = min(settings.sweep_lease_seconds / 3, _MAX_HEARTBEAT_SECONDS)
        self._shutting_down = threading.Event()

    def stop(self) -> None:
        """The server is shutting down: running jobs stop after their current point and are re-queued."""
        self._shutting_down.set()

    async def work_forever(self) -> None:
        async with anyio.create_task_group() as loops:
            for _ in range(self._loops):
                loops.start_soon(self._loop)

    async def _loop(self) -> None:
        owner = uuid.uuid4().hex
        limiter = anyio.CapacityLimiter(1)
        while not self._shutting_down.is_set():
            try:
                claimed = await anyio.to_thread.run_sync(
                    partial(self._store.claim, owner, lease=self._lease, max_attempts=self._max_attempts),
                    limiter=limiter,
                )
            except SQLAlchemyError as error:
                _log.warning("sweep_claim_failed", error=type(error).__name__)
                claimed = None
            if claimed is None:
                await anyio.sleep(self._poll_seconds)
                continue
            try:
                await self._run(claimed, owner, limiter)
            except Exception:
                # A bug here must not take the server's other background tasks down with it (they share
                # the lifespan's task group); the job's lease runs out and it is retried or abandoned.
                _log.exception("sweep_worker_failed", job_id=claimed.job_id)
                await anyio.sleep(self._poll_seconds)

    async def _run(self, claimed: ClaimedJob, owner: str, limiter: anyio.CapacityLimiter) -> None:
        run = _Run()
        started = time.perf_counter()
        _log.info("sweep_job_started", job_id=claimed.job_id, kind=claimed.kind, attempt=claimed.attempt)
        # Shielded: a shutdown first calls stop(), so the thread returns after its current point and the
        # job is recorded (re-queued) instead of being left to its lease.
        with anyio.CancelScope(shield=True):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self._heartbeat, claimed.job_id, owner, run)
                outcome = await anyio.to_thread.run_sync(partial(self._execute, claimed, run))
                tasks.cancel_scope.cancel()
            await anyio.to_thread.run_sync(
                partial(self._record, claimed, owner, run, outcome, time.perf_counter() - started),
                limiter=limiter,
            )

    async def _heartbeat(self, job_id: str, owner: str, run: _Run) -> None:
        while True:
            await anyio.sleep(self._heartbeat_seconds)
            try:
                asked = await anyio.to_thread.run_sync(
                    partial(
                        self._store.heartbeat, job_id, owner, lease=self._lease, points_done=run.points_done
                    )
                )
            except SQLAlchemyError as error:
                # The lease may run out meanwhile; then another worker takes the job and ours is not recorded.
                _log.warning("sweep_heartbeat_failed", job_id=job_id, error=type(error).__name__)
                continue
            if asked is None:
                run.lease_lost = True
            if asked is None or asked:
                run.stop.set()
                return

    def _execute(self, claimed: ClaimedJob, run: _Run) -> _Outcome:
        def should_stop() -> bool:
            if self._shutting_down.is_set():
                run.stop.set()
            return run.stop.is_set()

        try:
            with point_runner(self._dask_address) as runner:
                result = run_job(
                    claimed.kind,
                    claimed.request,
                    progress=run.progress,
                    should_stop=should_stop,
                    runner=runner,
                )
        except FundmodelError as error:
            return _Outcome(error={"code": error.code, "title": error.title, "detail": error.detail})
        except Exception:
            _log.exception("sweep_job_crashed", job_id=claimed.job_id, kind=claimed.kind)
            return _Outcome(
                error={
                    "code": "INTERNAL_ERROR",
                    "title": "Internal Server Error",
                    "detail": f"the job failed unexpectedly; it was logged under job id {claimed.job_id}",
                }
            )
        return _Outcome(result=result)

    def _record(self, claimed: ClaimedJob, owner: str, run: _Run, outcome: _Outcome, seconds: float) -> None:
        status = "failed"
        if outcome.result is not None:
            status = "cancelled" if result_cancelled(outcome.result) else "succeeded"
        try:
            if run.lease_lost:
                recorded = False
            elif status == "cancelled" and self._shutting_down.is_set():
                status = "requeued"
                recorded = self._store.release(claimed.job_id, owner)
            else:
                done = claimed.points_total if status == "succeeded" else run.points_done
                recorded = self._store.finish(
                    claimed.job_id,
                    owner,
                    status,
                    points_done=done,
                    result=outcome.result,
                    error=outcome.error,
                )
        except SQLAlchemyError as error:
            # Not recorded: the lease runs out and the job is run again (up to the attempts bound).
            _log.warning("sweep_record_failed", job_id=claimed.job_id, error=type(error).__name__)
            return
        _log.info(
            "sweep_job_finished",
            job_id=claimed.job_id,
            kind=claimed.kind,
            status=status if recorded else "lease_lost",
            seconds=round(seconds, 3),
            error_code=None if outcome.error is None else outcome.error["code"],
        )
