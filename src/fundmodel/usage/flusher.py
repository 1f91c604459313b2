"""Moving the in-memory usage counts to the database: every few seconds, off the request path, and at exit.

The app's lifespan runs :meth:`UsageFlusher.flush_forever` as a background task (each flush in a worker
thread of its own limiter, so a saturated request thread pool cannot delay it) and
:meth:`UsageFlusher.flush_at_exit` once the server stopped taking requests. A worker that dies without its
graceful shutdown (SIGKILL, out of memory) loses at most the counts of one flush interval.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio
import anyio.to_thread
import structlog
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from fundmodel.observability.metrics import ServiceMetrics
from fundmodel.usage.ledger import UsageBatch, UsageLedger
from fundmodel.usage.recorder import FlushAttempt, FlushOutcome, forget_old_flushes, write_batch

_log = structlog.get_logger("fundmodel.usage")
FORGET_FLUSHES_EVERY_SECONDS = 3600.0
"""How often a worker deletes week-old flush ids (any worker's: the delete is idempotent)."""


@dataclass(frozen=True, slots=True)
class FlushReport:
    """What one flush did: batches written (or found written), rows upserted, batches left for later."""

    written: int = 0
    rows: int = 0
    left: int = 0
    reason: str | None = None


@dataclass(slots=True)
class UsageFlusher:
    """Writes one ledger's batches to one database; ``flush`` is never run twice at once."""

    ledger: UsageLedger
    engine: Engine
    metrics: ServiceMetrics
    clock: Callable[[], float] = time.monotonic
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _failing: bool = field(default=False, init=False, repr=False)
    _flush_ids_forgotten_at: float | None = field(default=None, init=False, repr=False)

    def flush(self) -> FlushReport:
        """Write every batch the ledger hands out; stop at the first failure and keep the rest in memory."""
        with self._lock:
            report = self._flush_batches(self.ledger.take())
            self.metrics.set_usage_held_keys(self.ledger.held_keys())
            self._log_transition(report)
            if report.left == 0:
                self._forget_old_flushes()
            return report

    def flush_at_exit(self) -> FlushReport:
        """The last flush of a stopping process: what it cannot write is lost, counted and logged."""
        report = self.flush()
        if report.left:
            lost = self.ledger.take()
            validations = sum(batch.validations for batch in lost)
            self.metrics.count_usage_dropped("shutdown", validations)
            _log.error(
                "stage_usage_lost_at_exit",
                counts=validations,
                keys=sum(len(batch) for batch in lost),
                reason=report.reason,
            )
        return report

    async def flush_forever(self, interval_seconds: float) -> None:
        """Flush every ``interval_seconds`` until cancelled; the lifespan then calls :meth:`flush_at_exit`."""
        limiter = anyio.CapacityLimiter(1)
        while True:
            await anyio.sleep(interval_seconds)
            # Not abandoned on cancellation: a flush in progress finishes before the exit flush starts.
            await anyio.to_thread.run_sync(self.flush, limiter=limiter)

    def _flush_batches(self, batches: list[UsageBatch]) -> FlushReport:
        written = rows = left = 0
        reason: str | None = None
        for batch in batches:
            if reason is not None:
                # The database just failed: the remaining batches wait for the next interval untried.
                self._keep(batch, certainly_unwritten=not batch.uncertain)
                left += 1
                continue
            attempt = write_batch(self.engine, batch)
            self.metrics.count_usage_flush(attempt.outcome.value, attempt.rows)
            if attempt.outcome in (FlushOutcome.WRITTEN, FlushOutcome.ALREADY_WRITTEN):
                self.ledger.flushed(batch)
                written += 1
                rows += attempt.rows
                continue
            self._keep(batch, certainly_unwritten=_certainly_unwritten(batch, attempt))
            left += 1
            reason = attempt.reason or attempt.outcome.value
        return FlushReport(written, rows, left, reason)

    def _keep(self, batch: UsageBatch, *, certainly_unwritten: bool) -> None:
        if certainly_unwritten:
            self.ledger.restore(batch)
        else:
            self.ledger.keep_uncertain(batch)

    def _log_transition(self, report: FlushReport) -> None:
        if report.left and not self._failing:
            _log.warning(
                "stage_usage_flush_failed",
                reason=report.reason,
                held_keys=self.ledger.held_keys(),
                detail="counts kept in memory; retried at the next interval",
            )
        elif not report.left and self._failing:
            _log.info("stage_usage_flush_recovered", rows=report.rows)
        self._failing = bool(report.left)

    def _forget_old_flushes(self) -> None:
        now = self.clock()
        last = self._flush_ids_forgotten_at
        if last is not None and now - last < FORGET_FLUSHES_EVERY_SECONDS:
            return
        self._flush_ids_forgotten_at = now
        try:
            forget_old_flushes(self.engine)
        except SQLAlchemyError as error:
            _log.warning("stage_usage_flush_ids_not_pruned", error=type(error).__name__)


def _certainly_unwritten(batch: UsageBatch, attempt: FlushAttempt) -> bool:
    """Rolled back, and no earlier attempt of it can have committed."""
    return attempt.outcome is FlushOutcome.NOT_WRITTEN and not batch.uncertain
