"""``fundmodel_stage_validation_mode_changes_total{source}``, read from the mode audit table at scrape time.

Mode changes come from this service (the Alertmanager webhook, ``PUT /_ops/stage-validation/mode``) and from
processes without a ``/metrics`` of their own (``fundmodel mode set``, the rollout controller). An in-process
counter only ever saw the first kind. Every change, whichever process made it, has its row in
``stage_validation_audit``, so the counter is the number of those rows per ``source``: one grouped query,
cached for a short TTL so a burst of scrapes (several Prometheus servers) costs one query.

It is a scrape-time collector, not a value in ``PROMETHEUS_MULTIPROC_DIR``: with several workers, the
worker answering the scrape reports it once (:func:`~fundmodel.observability.metrics.render_metrics` adds it
to the merged registry), so it is never summed across workers. Every worker reads the same table, so which
one answers does not matter. When the table cannot be read, the last counts read stay (a counter must not
drop to zero); before the first successful read the series are absent rather than a false 0.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

import structlog
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, or_, select
from sqlalchemy.exc import SQLAlchemyError

from fundmodel.db.tables import stage_validation_audit
from fundmodel.errors import StoreUnavailableError

__all__ = ["MODE_CHANGES_METRIC", "ModeChangeCounts", "audit_counts_by_source"]

MODE_CHANGES_METRIC = "fundmodel_stage_validation_mode_changes"
_HELP = (
    "Changes of the stage-validation mode or canary percentage, by source, whichever process made them "
    "(counted from the mode audit table)."
)

CountReader = Callable[[], Mapping[str, int]]

_log = structlog.get_logger("fundmodel.mode")


def audit_counts_by_source(engine: Engine) -> dict[str, int]:
    """Audited mode changes per source. Raises :class:`StoreUnavailableError` when unreadable.

    An audited write that changes neither the mode, the canary percentage nor the Sunset flag
    (``rollout extend-warn`` records a decision that way) is not a change.
    """
    audit = stage_validation_audit
    query = (
        select(audit.c.source, func.count())
        .where(
            or_(
                audit.c.old_mode != audit.c.new_mode,
                audit.c.old_canary_percent != audit.c.new_canary_percent,
                audit.c.old_aliases_rejected != audit.c.new_aliases_rejected,  # the Sunset step
            )
        )
        .group_by(audit.c.source)
    )
    try:
        with engine.connect() as connection:
            return {str(source): int(count) for source, count in connection.execute(query).all()}
    except SQLAlchemyError as exc:
        raise StoreUnavailableError(f"mode audit unreadable: {type(exc).__name__}") from exc


class ModeChangeCounts(Collector):
    """The collector. Until :meth:`attach` gives it a reader it reports 0 for every known source."""

    def __init__(
        self,
        sources: Sequence[str],
        *,
        other: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sources = tuple(sources)
        self._other = other
        self._clock = clock
        self._lock = threading.Lock()
        self._read: CountReader | None = None
        self._ttl = 0.0
        self._counts: Mapping[str, int] | None = {}
        self._read_at = -math.inf
        self._failing = False

    def attach(self, read: CountReader, *, ttl_seconds: float) -> None:
        """Read the counts with ``read`` from now on, at most once per ``ttl_seconds``."""
        with self._lock:
            self._read, self._ttl = read, ttl_seconds
            self._counts, self._read_at = None, -math.inf

    def invalidate(self) -> None:
        """Forget the cached counts: this process just made a change, the next scrape shows it."""
        with self._lock:
            self._read_at = -math.inf

    def describe(self) -> Iterable[CounterMetricFamily]:
        # Registering must not query the database: the family's name and type are enough.
        return [CounterMetricFamily(MODE_CHANGES_METRIC, _HELP, labels=["source"])]

    def collect(self) -> Iterable[CounterMetricFamily]:
        family = CounterMetricFamily(MODE_CHANGES_METRIC, _HELP, labels=["source"])
        counts = self._current()
        if counts is not None:
            for source in self._sources:
                family.add_metric([source], counts.get(source, 0))
            other = sum(count for source, count in counts.items() if source not in self._sources)
            if other:
                family.add_metric([self._other], other)
        return [family]

    def _current(self) -> Mapping[str, int] | None:
        with self._lock:
            if self._read is None or self._clock() - self._read_at < self._ttl:
                return self._counts
            # Even a failed read waits a TTL before the next one: an unreachable database must not slow
            # every scrape by its connect timeout.
            self._read_at = self._clock()
            try:
                self._counts = dict(self._read())
            except Exception as exc:
                if not self._failing:
                    _log.warning("mode_change_counts_unavailable", detail=str(exc)[:200])
                self._failing = True
            else:
                if self._failing:
                    _log.info("mode_change_counts_recovered")
                self._failing = False
            return self._counts
