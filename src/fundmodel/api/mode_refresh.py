"""Keep this process's view of the mode store fresh, in the background, so requests never wait on it."""

from __future__ import annotations

from datetime import UTC, datetime

import anyio
import anyio.to_thread
import structlog

from fundmodel.api.brownout_edges import BrownoutEdges
from fundmodel.db.brownout_store import BrownoutSchedule
from fundmodel.db.mode_store import ModeStore
from fundmodel.observability.metrics import ServiceMetrics
from fundmodel.validation import ModeState
from fundmodel.validation.brownout import effective_state

_log = structlog.get_logger("fundmodel.mode")


async def refresh_mode_forever(
    store: ModeStore,
    metrics: ServiceMetrics,
    ttl_seconds: float,
    brownouts: BrownoutSchedule,
    brownout_edges: BrownoutEdges,
) -> None:
    """Poll every half TTL, so the cached mode and brownout windows are never older than the TTL while
    the store answers; the mode gauges show the mode in force, a brownout included."""
    interval = ttl_seconds / 2
    # Its own limiter: a saturated request thread pool must not delay the refresh.
    limiter = anyio.CapacityLimiter(1)
    previous: ModeState | None = None
    failing = False
    while True:
        ok = await anyio.to_thread.run_sync(store.refresh, limiter=limiter)
        ok = await anyio.to_thread.run_sync(brownouts.refresh, limiter=limiter) and ok
        if ok:
            if failing:
                _log.info("mode_store_recovered")
            failing = False
        else:
            metrics.count_mode_store_error()
            if not failing:
                _log.warning("mode_store_unreachable", keeping=store.current().describe())
            failing = True
        now = datetime.now(UTC)
        current = effective_state(store.current(), brownouts.windows(), now)
        await anyio.to_thread.run_sync(brownout_edges.observe, now, limiter=limiter)
        if current != previous:
            metrics.set_mode(current.mode.value, current.canary_percent)
            if previous is not None:
                _log.info("mode_applied", mode=current.mode.value, canary_percent=current.canary_percent)
            previous = current
        metrics.set_mode_cache_age(min(store.cache_age(), 1e9))
        await anyio.sleep(interval)
