"""The dispatcher as every server process runs it: polling the outbox in the background.

Each process (every gunicorn worker, every replica) polls; the claims make sure one of them sends each
delivery. Sending runs in a thread of its own (a hung receiver holds that thread for at most the timeout,
never a request or the event loop), a bounded batch per poll so shutdown is never held up for long.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
import anyio.to_thread
from sqlalchemy import Engine

from fundmodel.notifications.dispatcher import Dispatcher, RetryPolicy, safe_run_once
from fundmodel.settings import Settings

__all__ = ["BATCH_PER_POLL", "dispatch_forever", "dispatcher_for", "retry_policy"]

BATCH_PER_POLL = 10


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        timeout_seconds=settings.notify_timeout_seconds,
        max_attempts=settings.notify_max_attempts,
        max_age=settings.notify_max_age,
        base_seconds=settings.notify_retry_base_seconds,
        max_seconds=settings.notify_retry_max_seconds,
    )


def dispatcher_for(
    settings: Settings, engine: Engine, *, on_attempt: Callable[[str, str], None] | None = None
) -> Dispatcher:
    """A dispatcher for the targets and retry policy of ``settings``."""
    return Dispatcher(engine, settings.notify_targets, retry_policy(settings), on_attempt=on_attempt)


async def dispatch_forever(dispatcher: Dispatcher, interval_seconds: float) -> None:
    """Deliver what is due every ``interval_seconds`` (at once again while a batch was full)."""
    limiter = anyio.CapacityLimiter(1)
    try:
        while True:
            report = await anyio.to_thread.run_sync(
                lambda: safe_run_once(dispatcher, max_deliveries=BATCH_PER_POLL),
                limiter=limiter,
                abandon_on_cancel=True,
            )
            busy = report is not None and report.attempts + report.expired >= BATCH_PER_POLL
            if not busy:
                await anyio.sleep(interval_seconds)
    finally:
        dispatcher.close()
