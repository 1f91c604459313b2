"""Keep this process's view of the mode store fresh, in the background, so requests never wait on it."""

from __future__ import annotations

import anyio
import anyio.to_thread
import structlog

from fundmodel.db.mode_store import ModeStore
from fundmodel.observability.metrics import ServiceMetrics
from fundmodel.validation import ModeState

_log = structlog.get_logger("fundmodel.mode")


async def refresh_mode_forever(store: ModeStore, metrics: ServiceMetrics, ttl_seconds: float) -> None:
    """Poll every half TTL, so the cached mode is never older than the TTL while the store answers."""
    interval = ttl_seconds / 2
    # Its own limiter: a saturated request thread pool must not delay the refresh.
    limiter = anyio.CapacityLimiter(1)
    previous: ModeState | None = None
    failing = False
    while True:
        ok = await anyio.to_thread.run_sync(store.refresh, limiter=limiter)
        if ok:
            if failing:
                _log.info("mode_store_recovered")
            failing = False
        else:
            metrics.count_mode_store_error()
            if not failing:
                _log.warning("mode_store_unreachable", keeping=store.current().describe())
            failing = True
        current = store.current()
        if current != previous:
            metrics.set_mode(current.mode.value, current.canary_percent)
            if previous is not None:
                _log.info("mode_applied", mode=current.mode.value, canary_percent=current.canary_percent)
            previous = current
        metrics.set_mode_cache_age(min(store.cache_age(), 1e9))
        await anyio.sleep(interval)
