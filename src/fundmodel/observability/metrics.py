"""Prometheus metrics of the service, low-cardinality by construction.

Every label value comes from a small fixed set; anything else is recorded as ``"other"``. Raw stage
names, client ids, user agents and request ids never become labels (they go to the offender log).
All known label combinations are created up front so rate() and ratio queries see explicit zeros.

Multi-process (gunicorn + uvicorn workers): when ``PROMETHEUS_MULTIPROC_DIR`` is set before
``prometheus_client`` is imported, every worker writes its values to mmap files in that directory
and :func:`render_metrics` merges them. Counters and histograms are summed across workers. The three
gauges use ``livemax`` deliberately:

- ``fundmodel_stage_validation_mode{mode}`` is 1 for a mode if *any* live worker applies it, so
  while a change propagates both the old and the new mode read 1, and ``{mode="enforce"} == 0``
  proves that *no* worker enforces any more (what the auto-downgrade must guarantee);
- ``fundmodel_stage_validation_canary_percent`` shows the widest enforcement exposure of any worker;
- ``fundmodel_stage_validation_mode_cache_age_seconds`` shows the stalest worker's cached view.

``fundmodel_stage_validation_mode_changes_total{source}`` is not kept in any process: it is read from the
mode audit table at scrape time (:mod:`fundmodel.observability.mode_change_counts`), so it counts the
changes of every process (the CLI and the rollout controller too) and is reported once, never summed
over workers.

"live" modes drop a worker's values once :func:`mark_worker_dead` runs for its pid, so a dead
worker's last mode cannot keep an alert or a check alive. ``fundmodel.observability.worker_hooks``
has the gunicorn hooks (``on_starting`` clears the directory, ``child_exit`` marks workers dead).
The directory must be set in the environment before ``prometheus_client`` is first imported.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from fundmodel.db.mode_store import ModeChangeSource
from fundmodel.errors import ConfigurationError
from fundmodel.observability.mode_change_counts import ModeChangeCounts
from fundmodel.validation import Cohort, Outcome, ValidationMode

__all__ = [
    "COHORTS",
    "DATABASE_UNAVAILABLE_REASONS",
    "DEFAULT_VALIDATED_ENDPOINTS",
    "HTTP_DURATION_BUCKETS",
    "HTTP_METHODS",
    "METRICS_CONTENT_TYPE",
    "MODE_CHANGE_SOURCES",
    "MULTIPROC_ENV",
    "NOTIFICATION_RESULTS",
    "OTHER",
    "STATUS_CLASSES",
    "USAGE_DROP_REASONS",
    "USAGE_FLUSH_RESULTS",
    "VALIDATION_DURATION_BUCKETS",
    "VALIDATION_MODES",
    "VALIDATION_OUTCOMES",
    "WEBHOOK_RESULTS",
    "ServiceMetrics",
    "mark_worker_dead",
    "render_metrics",
    "reset_multiprocess_dir",
    "use_multiprocess_dir",
]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
OTHER = "other"

# Label sets derived from the enums they mirror, in their declaration order.
VALIDATION_MODES: tuple[str, ...] = tuple(mode.value for mode in ValidationMode)
VALIDATION_OUTCOMES: tuple[str, ...] = tuple(outcome.value for outcome in Outcome)
COHORTS: tuple[str, ...] = tuple(cohort.value for cohort in Cohort)
STATUS_CLASSES: tuple[str, ...] = ("2xx", "3xx", "4xx", "5xx")
MODE_CHANGE_SOURCES: tuple[str, ...] = tuple(source.value for source in ModeChangeSource)
WEBHOOK_RESULTS: tuple[str, ...] = (
    "downgraded",  # enforce -> warn written to the store
    "unchanged",  # matching firing alert, but the mode was already warn or off
    "duplicate",  # same (groupKey, fingerprint, startsAt) seen before
    "ignored",  # no firing alert with the downgrade label (e.g. resolved notifications)
    "unauthorized",  # missing or wrong bearer token / signature
    "malformed",  # body is not a version-4 Alertmanager payload
    "unconfigured",  # no webhook token configured: answered 503
    "store_error",  # mode store write failed: answered 5xx so Alertmanager retries
)
# fundmodel.usage.recorder.FlushOutcome, spelled out (tests/usage/test_recorder.py checks they agree).
USAGE_FLUSH_RESULTS: tuple[str, ...] = ("written", "already_written", "not_written", "uncertain")
USAGE_DROP_REASONS: tuple[str, ...] = (
    "memory_bound",  # new keys past STAGE_USAGE_MAX_HELD_KEYS while the database could not be written
    "shutdown",  # counts a stopping worker could not write
)
# fundmodel.db.availability.UnavailableReason, spelled out: metrics does not depend on the db layer.
# fundmodel.notifications.dispatcher.ATTEMPT_OUTCOMES, spelled out: metrics does not load the HTTP client.
NOTIFICATION_RESULTS: tuple[str, ...] = ("delivered", "retry", "failed", "expired")
DATABASE_UNAVAILABLE_REASONS: tuple[str, ...] = (
    "connection",
    "pool_timeout",
    "too_many_connections",
    "timeout",
    "locked",
    "storage",
)
HTTP_METHODS: tuple[str, ...] = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

# Route templates of the endpoints that validate stages (issue 4). Matching ignores the names of
# path parameters, so "{fundId}" and "{fund_id}" are the same endpoint.
DEFAULT_VALIDATED_ENDPOINTS: tuple[str, ...] = (
    "/api/monte-carlo/simulate",
    "/api/monte-carlo/compare",
    "/api/portfolio/strategies",
    "/api/portfolio/strategies/{id}",
    "/api/funds/{fundId}/companies",
)

# 5 µs .. 10 ms with an exact boundary at 1 ms (the p99 alert threshold), finer around it.
VALIDATION_DURATION_BUCKETS: tuple[float, ...] = (
    0.000005,
    0.00001,
    0.000025,
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.00075,
    0.001,
    0.0015,
    0.0025,
    0.005,
    0.01,
)
HTTP_DURATION_BUCKETS: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

# Prometheus 2.x scrapes this text format; prometheus_client's newer default (1.0.0) is not needed.
METRICS_CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

_PATH_PARAMETER = re.compile(r"\{[^{}]*\}")


def _template_key(template: str) -> str:
    return _PATH_PARAMETER.sub("{}", template.strip())


def _lookup(known: Iterable[str]) -> dict[str, str]:
    return {value: value for value in known}


class ServiceMetrics:
    """The service's metrics, registered in the registry the app owns (tests pass a fresh one).

    ``http_operations`` are the (method, route template) pairs the app serves: the app factory passes
    its own routes, so this module never imports the web layer and a new route is never ``"other"``.
    Routes not among them are recorded as ``"other"``.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        endpoints: Sequence[str] = DEFAULT_VALIDATED_ENDPOINTS,
        http_operations: Sequence[tuple[str, str]] = (),
        notification_targets: Sequence[str] = (),
    ) -> None:
        self._endpoints = {_template_key(e): e for e in endpoints}
        self._routes = {_template_key(route): route for _, route in http_operations}
        self._endpoint_exact = _lookup(self._endpoints.values())
        self._route_exact = _lookup(self._routes.values())
        self._modes = _lookup(VALIDATION_MODES)
        self._outcomes = _lookup(VALIDATION_OUTCOMES)
        self._cohorts = _lookup(COHORTS)
        self._webhook_results = _lookup(WEBHOOK_RESULTS)
        self._unavailable_reasons = _lookup(DATABASE_UNAVAILABLE_REASONS)
        self._methods = _lookup(HTTP_METHODS)
        # Target *names* (NOTIFY_WEBHOOKS): a small configured set; the URLs are secrets, never labels.
        self._notification_targets = _lookup(notification_targets)
        self._notification_results = _lookup(NOTIFICATION_RESULTS)

        self.validations = Counter(
            "fundmodel_stage_validations",
            "Stage validations by endpoint, mode, outcome and canary cohort.",
            ["endpoint", "mode", "outcome", "cohort"],
            registry=registry,
        )
        self.validation_duration = Histogram(
            "fundmodel_stage_validation_duration_seconds",
            "Time spent in the stage-validation layer per request.",
            ["endpoint", "mode"],
            buckets=VALIDATION_DURATION_BUCKETS,
            registry=registry,
        )
        self.http_requests = Counter(
            "fundmodel_http_requests",
            "HTTP requests by route template, method and status class.",
            ["route", "method", "status_class"],
            registry=registry,
        )
        self.http_duration = Histogram(
            "fundmodel_http_request_duration_seconds",
            "HTTP request latency by route template and method.",
            ["route", "method"],
            buckets=HTTP_DURATION_BUCKETS,
            registry=registry,
        )
        self.mode = Gauge(
            "fundmodel_stage_validation_mode",
            "1 for the validation mode a live worker applies, 0 otherwise (max over workers).",
            ["mode"],
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.canary_percent = Gauge(
            "fundmodel_stage_validation_canary_percent",
            "Percentage of clients in the enforce cohort (max over live workers).",
            registry=registry,
            multiprocess_mode="livemax",
        )
        # livemax, like the mode: 1 while any live worker applies a brownout window.
        self.brownout_active = Gauge(
            "fundmodel_stage_brownout_active",
            "1 while a brownout window (scheduled enforce) is in force on a live worker, 0 otherwise.",
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.brownout_next_start = Gauge(
            "fundmodel_stage_brownout_next_start_timestamp_seconds",
            "Unix time at which the next scheduled brownout window starts (0: none scheduled).",
            registry=registry,
            multiprocess_mode="livemax",
        )
        # Read from the audit table at scrape time (the app attaches the reader once its engine exists).
        self.mode_changes = ModeChangeCounts(MODE_CHANGE_SOURCES, other=OTHER)
        registry.register(self.mode_changes)
        self.mode_store_errors = Counter(
            "fundmodel_stage_validation_mode_store_errors",
            "Failed reads or writes of the mode store.",
            registry=registry,
        )
        self.mode_cache_age = Gauge(
            "fundmodel_stage_validation_mode_cache_age_seconds",
            "Age of the cached mode since its last successful read (stalest live worker).",
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.webhook_requests = Counter(
            "fundmodel_stage_validation_webhook_requests",
            "Alertmanager auto-downgrade webhook requests by result.",
            ["result"],
            registry=registry,
        )
        self.database_unavailable = Counter(
            "fundmodel_database_unavailable",
            "Requests answered 503 because the database was unavailable, by reason.",
            ["reason"],
            registry=registry,
        )
        self.notification_deliveries = Counter(
            "fundmodel_notification_deliveries",
            "Outgoing webhook delivery attempts by target name and result (delivered, retry, failed, "
            "expired).",
            ["target", "result"],
            registry=registry,
        )
        self.offender_logs_dropped = Counter(
            "fundmodel_stage_validation_offender_logs_dropped",
            "Offender log events dropped by the sampler, by endpoint.",
            ["endpoint"],
            registry=registry,
        )
        self.usage_flushes = Counter(
            "fundmodel_stage_usage_flushes",
            "Usage-ledger batches written to the database, by result.",
            ["result"],
            registry=registry,
        )
        self.usage_rows_flushed = Counter(
            "fundmodel_stage_usage_rows_flushed",
            "stage_usage rows upserted by the usage-ledger flushes.",
            registry=registry,
        )
        self.usage_held_keys = Gauge(
            "fundmodel_stage_usage_held_keys",
            "Usage-ledger keys held in memory, not yet in the database (sum over live workers).",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.usage_dropped = Counter(
            "fundmodel_stage_usage_dropped",
            "Usage counts never written to the database, by reason.",
            ["reason"],
            registry=registry,
        )

        endpoint_values = (*self._endpoints.values(), OTHER)
        # Children resolved once: the validation path stays a few dict lookups per request.
        self._validation_children = {
            (endpoint, mode, outcome, cohort): self.validations.labels(endpoint, mode, outcome, cohort)
            for endpoint in endpoint_values
            for mode in VALIDATION_MODES
            for outcome in VALIDATION_OUTCOMES
            for cohort in COHORTS
        }
        self._validation_duration_children = {
            (endpoint, mode): self.validation_duration.labels(endpoint, mode)
            for endpoint in endpoint_values
            for mode in (*VALIDATION_MODES, OTHER)
        }
        self._http_request_children: dict[tuple[str, str, str], Counter] = {}
        self._http_duration_children: dict[tuple[str, str], Histogram] = {}
        for method, route in http_operations:
            method_value = self._methods.get(method.upper(), OTHER)
            route_value = self._routes[_template_key(route)]
            self._http_duration_children[(route_value, method_value)] = self.http_duration.labels(
                route_value, method_value
            )
            for status_class in STATUS_CLASSES:
                key = (route_value, method_value, status_class)
                self._http_request_children[key] = self.http_requests.labels(*key)
        for mode in VALIDATION_MODES:
            self.mode.labels(mode)
        for result in WEBHOOK_RESULTS:
            self.webhook_requests.labels(result)
        for reason in DATABASE_UNAVAILABLE_REASONS:
            self.database_unavailable.labels(reason)
        for endpoint in endpoint_values:
            self.offender_logs_dropped.labels(endpoint)
        for target in self._notification_targets:
            for result in NOTIFICATION_RESULTS:
                self.notification_deliveries.labels(target, result)
        for result in USAGE_FLUSH_RESULTS:
            self.usage_flushes.labels(result)
        for reason in USAGE_DROP_REASONS:
            self.usage_dropped.labels(reason)

    def endpoint_label(self, endpoint: str) -> str:
        """The label recorded for a route template (``"other"`` when not a validated endpoint)."""
        exact = self._endpoint_exact.get(endpoint)
        if exact is not None:
            return exact
        return self._endpoints.get(_template_key(endpoint), OTHER)

    def route_label(self, route: str) -> str:
        """The label value recorded for an HTTP route template (``"other"`` when unknown)."""
        exact = self._route_exact.get(route)
        if exact is not None:
            return exact
        return self._routes.get(_template_key(route), OTHER)

    def observe_validation(self, endpoint: str, mode: str, outcome: str, cohort: str, seconds: float) -> None:
        """Count one validation and its duration."""
        endpoint_value = self.endpoint_label(endpoint)
        mode_value = self._modes.get(mode, OTHER)
        key = (
            endpoint_value,
            mode_value,
            self._outcomes.get(outcome, OTHER),
            self._cohorts.get(cohort, OTHER),
        )
        counter = self._validation_children.get(key)
        if counter is None:
            counter = self.validations.labels(*key)
        counter.inc()
        self._validation_duration_children[(endpoint_value, mode_value)].observe(seconds)

    def observe_http(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one HTTP request by route template, method and status class, with its latency."""
        route_value = self.route_label(route)
        method_value = self._methods.get(method.upper(), OTHER)
        status_class = f"{status // 100}xx" if 200 <= status <= 599 else OTHER
        key = (route_value, method_value, status_class)
        counter = self._http_request_children.get(key)
        if counter is None:
            counter = self.http_requests.labels(*key)
        counter.inc()
        duration = self._http_duration_children.get(key[:2])
        if duration is None:
            duration = self.http_duration.labels(*key[:2])
        duration.observe(seconds)

    def set_mode(self, mode: str, canary_percent: float) -> None:
        """Record the mode this process applies now (1 for it, 0 for the others)."""
        if mode not in self._modes:
            raise ValueError(f"unknown stage-validation mode {mode!r}")
        for known in VALIDATION_MODES:
            self.mode.labels(known).set(1.0 if known == mode else 0.0)
        self.canary_percent.set(canary_percent)

    @property
    def scrape_time_collectors(self) -> tuple[Collector, ...]:
        """Collectors computed when scraped, outside ``PROMETHEUS_MULTIPROC_DIR`` (see render_metrics)."""
        return (self.mode_changes,)

    def refresh_mode_change_counts(self) -> None:
        """This process wrote a change (already in the audit table): the next scrape re-reads the counts.

        The counts themselves come from the audit table (by its ``source`` column), so changes made by
        other processes count too.
        """
        self.mode_changes.invalidate()

    def set_brownout(self, active: bool, next_start: float | None) -> None:
        """Whether a brownout is in force in this process, and when the next one starts (Unix time)."""
        self.brownout_active.set(1.0 if active else 0.0)
        self.brownout_next_start.set(next_start or 0.0)

    def count_mode_store_error(self) -> None:
        self.mode_store_errors.inc()

    def set_mode_cache_age(self, seconds: float) -> None:
        self.mode_cache_age.set(seconds)

    def count_webhook(self, result: str) -> None:
        self.webhook_requests.labels(self._webhook_results.get(result, OTHER)).inc()

    def count_database_unavailable(self, reason: str) -> None:
        """One request failed because the database was unavailable (a DATABASE_UNAVAILABLE_REASONS value)."""
        self.database_unavailable.labels(self._unavailable_reasons.get(reason, OTHER)).inc()

    def count_notification(self, target: str, result: str) -> None:
        """One webhook delivery attempt (or a delivery given up unsent, ``expired``)."""
        self.notification_deliveries.labels(
            self._notification_targets.get(target, OTHER), self._notification_results.get(result, OTHER)
        ).inc()

    def count_offender_logs_dropped(self, endpoint: str) -> None:
        self.offender_logs_dropped.labels(self.endpoint_label(endpoint)).inc()

    def count_usage_flush(self, result: str, rows: int) -> None:
        """One usage-ledger batch attempted (a USAGE_FLUSH_RESULTS value) and the rows it upserted."""
        self.usage_flushes.labels(result if result in USAGE_FLUSH_RESULTS else OTHER).inc()
        if rows:
            self.usage_rows_flushed.inc(rows)

    def count_usage_dropped(self, reason: str, counts: int) -> None:
        """Usage counts lost (a USAGE_DROP_REASONS value)."""
        self.usage_dropped.labels(reason if reason in USAGE_DROP_REASONS else OTHER).inc(counts)

    def count_usage_dropped_at_memory_bound(self, counts: int) -> None:
        self.count_usage_dropped("memory_bound", counts)

    def set_usage_held_keys(self, keys: int) -> None:
        self.usage_held_keys.set(keys)


def _multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def render_metrics(
    registry: CollectorRegistry | None, *, scrape_time: Sequence[Collector] = ()
) -> tuple[bytes, str]:
    """The ``GET /metrics`` body and content type.

    With ``PROMETHEUS_MULTIPROC_DIR`` set, the values of every worker are merged from that directory
    (the passed registry is then not read, which would count this worker twice), and the
    ``scrape_time`` collectors (:attr:`ServiceMetrics.scrape_time_collectors`, values shared by every
    worker) are added once. Without it, they are already in ``registry``.
    """
    path = _multiprocess_dir()
    if path is not None:
        if not Path(path).is_dir():
            raise ConfigurationError(f"{MULTIPROC_ENV}={path!r} is not a directory")
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged, path=path)  # type: ignore[no-untyped-call]
        for collector in scrape_time:
            merged.register(collector)
        return generate_latest(merged), METRICS_CONTENT_TYPE
    if registry is None:
        raise ConfigurationError(
            f"no metrics registry given and {MULTIPROC_ENV} is not set: nothing to render"
        )
    return generate_latest(registry), METRICS_CONTENT_TYPE


def mark_worker_dead(pid: int) -> None:
    """Forget a dead worker's live gauges (call from gunicorn's ``child_exit`` hook)."""
    path = _multiprocess_dir()
    if path is not None:
        multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]


def reset_multiprocess_dir(path: Path) -> None:
    """Remove the previous run's value files before the workers start (call in the master only)."""
    if not path.is_dir():
        raise ConfigurationError(f"{MULTIPROC_ENV}={str(path)!r} is not a directory")
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)


def use_multiprocess_dir(path: Path) -> None:
    """Switch this process (and the workers it forks) to multi-process metrics in ``path``.

    prometheus_client picks its value class when first imported, which may already have happened
    (any module importing this one does it), so the choice is made again here. Call it in the master
    before any worker starts and before any metric is created.
    """
    os.environ[MULTIPROC_ENV] = str(path)
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
