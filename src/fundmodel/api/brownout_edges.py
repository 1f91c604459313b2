"""What the mode refresh loop does with the brownout windows: gauges, logs and start/end notifications.

Every worker runs this after each refresh (:mod:`fundmodel.api.mode_refresh`). The edges themselves are
exact on every request (the effective mode compares the cached windows with the request's time); this only
*reports* them, within one refresh interval. Every worker that notices an edge publishes it; the outbox's
dedupe key (``brownout:<id>:<edge>``) keeps one notification per edge however many workers and replicas see
it. A window cut short (cancelled, or ended by the auto-downgrade) was announced by the write that ended it,
so only a window that ran its course is announced here as ended.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import structlog

from fundmodel.db.brownout_store import BrownoutSchedule
from fundmodel.notifications.events import BrownoutEdge, NotificationEvent, brownout_event
from fundmodel.observability.metrics import ServiceMetrics
from fundmodel.validation.brownout import BrownoutWindow, active_window, next_start

_log = structlog.get_logger("fundmodel.mode")
_LOOP_ACTOR = "brownout schedule"

Publisher = Callable[[NotificationEvent], object]
"""Publishes one event in a transaction of its own (best effort: never raises on a database error)."""


class BrownoutEdges:
    """Remembers the window this process saw in force at its last look, to notice starts and ends."""

    def __init__(self, schedule: BrownoutSchedule, metrics: ServiceMetrics, publish: Publisher) -> None:
        self._schedule = schedule
        self._metrics = metrics
        self._publish = publish
        self._in_force: BrownoutWindow | None = None
        self._first_look = True

    def observe(self, now: datetime) -> None:
        """Update the gauges; log and publish the edges since the last look (blocking: run off the loop)."""
        windows = self._schedule.windows()
        current = active_window(windows, now)
        upcoming = next_start(windows, now)
        self._metrics.set_brownout(current is not None, upcoming.timestamp() if upcoming else None)
        previous, self._in_force = self._in_force, current
        first_look, self._first_look = self._first_look, False
        if previous is not None and (current is None or current.window_id != previous.window_id):
            self._ended(previous, now)
        if current is not None and (previous is None or previous.window_id != current.window_id):
            if not first_look:
                _log.info(
                    "brownout_started", brownout_id=current.window_id, ends_at=current.ends_at.isoformat()
                )
            self._announce(current, BrownoutEdge.STARTED, ended_by=None)

    def _ended(self, window: BrownoutWindow, now: datetime) -> None:
        if now < window.ends_at:
            # Cut short by a cancel or an auto-downgrade: that write announced it.
            _log.info("brownout_ended_early", brownout_id=window.window_id)
            return
        _log.info("brownout_ended", brownout_id=window.window_id)
        self._announce(window, BrownoutEdge.ENDED, ended_by="elapsed")

    def _announce(self, window: BrownoutWindow, edge: BrownoutEdge, *, ended_by: str | None) -> None:
        self._publish(
            brownout_event(
                edge,
                brownout_id=window.window_id,
                starts_at=window.starts_at,
                ends_at=window.ends_at,
                canary_percent=window.canary_percent,
                actor=_LOOP_ACTOR,
                reason=f"brownout {window.window_id} {edge.value}",
                ended_by=ended_by,
            )
        )
