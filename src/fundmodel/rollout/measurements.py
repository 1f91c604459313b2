"""The PromQL behind each gate, and reading it into :class:`~fundmodel.rollout.gates.Measurement` values.

The queries use the raw series of :mod:`fundmodel.observability.metrics` rather than the recording rules
in ``deploy/prometheus/rules``: the gates need windows (7 days, the time since a step began) that the
rules' fixed 5-30 minute windows do not cover, and ratios are sums over the window, not averages of
short ratios. The outcome sets are the rules' own (``would_reject|unknown_accepted`` = what enforce
would reject; ``rejected`` in the enforced canary cohort).

Anything that cannot be measured - no ``PROMETHEUS_URL``, Prometheus unreachable, no series, 0/0 -
comes back as a missing measurement, which the gates treat as "no data" (blocking).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from fundmodel.errors import MeasurementUnavailableError
from fundmodel.rollout.gates import Measurement
from fundmodel.rollout.prometheus import PrometheusClient, Sample

VALIDATIONS = "fundmodel_stage_validations_total"
VALIDATION_DURATION_BUCKETS = "fundmodel_stage_validation_duration_seconds_bucket"
WOULD_REJECT_OUTCOMES = "would_reject|unknown_accepted"
MIN_WINDOW = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def promql_range(window: timedelta) -> str:
    """A PromQL range in whole seconds (at least one minute)."""
    return f"{int(max(window, MIN_WINDOW).total_seconds())}s"


def selector(metric: str, matchers: Sequence[str], label_filter: str = "") -> str:
    parts = [m for m in (*matchers, label_filter.strip().strip(",")) if m]
    return f"{metric}{{{','.join(parts)}}}"


def ratio_query(
    numerator: Sequence[str], denominator: Sequence[str], window: timedelta, label_filter: str = ""
) -> str:
    span = promql_range(window)
    top = selector(VALIDATIONS, numerator, label_filter)
    bottom = selector(VALIDATIONS, denominator, label_filter)
    return f"sum(increase({top}[{span}])) / sum(increase({bottom}[{span}]))"


def validations_by_endpoint_query(window: timedelta, label_filter: str = "") -> str:
    series = selector(VALIDATIONS, ['endpoint!="other"'], label_filter)
    return f"sum by (endpoint) (increase({series}[{promql_range(window)}]))"


def warn_would_reject_query(window: timedelta, label_filter: str = "") -> str:
    return ratio_query(
        ['mode="warn"', f'outcome=~"{WOULD_REJECT_OUTCOMES}"'], ['mode="warn"'], window, label_filter
    )


def canary_reject_query(window: timedelta, label_filter: str = "") -> str:
    enforced = ['mode="enforce"', 'cohort="canary"']
    return ratio_query([*enforced, 'outcome="rejected"'], enforced, window, label_filter)


def cohort_validations_query(mode: str, cohort: str, window: timedelta, label_filter: str = "") -> str:
    series = selector(VALIDATIONS, [f'mode="{mode}"', f'cohort="{cohort}"'], label_filter)
    return f"sum(increase({series}[{promql_range(window)}]))"


def baseline_would_reject_query(window: timedelta, label_filter: str = "") -> str:
    baseline = ['mode="warn"', 'cohort="baseline"']
    return ratio_query([*baseline, f'outcome=~"{WOULD_REJECT_OUTCOMES}"'], baseline, window, label_filter)


def alias_validations_query(window: timedelta, label_filter: str = "") -> str:
    """Validations that carried a deprecated alias (accepted and normalized) in the window, any mode."""
    series = selector(VALIDATIONS, ['outcome="normalized_alias"'], label_filter)
    return f"sum(increase({series}[{promql_range(window)}]))"


def all_validations_query(window: timedelta, label_filter: str = "") -> str:
    return f"sum(increase({selector(VALIDATIONS, [], label_filter)}[{promql_range(window)}]))"


def validation_p99_query(window: timedelta, label_filter: str = "") -> str:
    buckets = selector(VALIDATION_DURATION_BUCKETS, [], label_filter)
    return f"histogram_quantile(0.99, sum by (le) (increase({buckets}[{promql_range(window)}])))"


def worst_hour_range(window: timedelta, at: datetime) -> tuple[timedelta, datetime]:
    """The span of each "hour" and the first point's end time: each point ``t`` covers ``[t - span, t]``,
    the first one begins exactly at ``at - window``, so no hour reaches back beyond the window."""
    span = min(max(window, MIN_WINDOW), HOUR)
    return span, at - max(window, span) + span


class PrometheusMeasurements:
    """Reads the gates' measurements from Prometheus at one evaluation time.

    After the first transport failure (unreachable, timeout) the remaining queries are not sent: they
    would fail the same way, each after its timeout.
    """

    def __init__(
        self, client: PrometheusClient | None, *, label_filter: str = "", missing_url: str = ""
    ) -> None:
        self._client = client
        self._filter = label_filter
        self._down: str | None = None if client is not None else (missing_url or "PROMETHEUS_URL is not set")

    def validations_per_endpoint(
        self, endpoints: Sequence[str], window: timedelta, at: datetime
    ) -> dict[str, Measurement]:
        query = validations_by_endpoint_query(window, self._filter)
        samples = self._instant(query, at)
        if isinstance(samples, Measurement):
            return dict.fromkeys(endpoints, samples)
        if not samples:
            missing = Measurement.missing(f"no {VALIDATIONS} series in Prometheus")
            return dict.fromkeys(endpoints, missing)
        counts = {sample.labels.get("endpoint", ""): sample.value for sample in samples}
        return {
            endpoint: Measurement(
                counts.get(endpoint, 0.0),
                "" if endpoint in counts else "no series for this endpoint",
            )
            for endpoint in endpoints
        }

    def warn_would_reject_ratio(self, window: timedelta, at: datetime) -> Measurement:
        return self._scalar(warn_would_reject_query(window, self._filter), at, "warn-mode validations")

    def warn_max_hourly_would_reject_ratio(self, window: timedelta, at: datetime) -> Measurement:
        """The worst hour's ratio inside the window (hours without traffic are skipped).

        Every hour lies wholly inside ``[at - window, at]``: a window shorter than an hour (a fresh
        observation, a drill) is one "hour" of the window's own length, so nothing older than the window
        (an incident before ``rollout reset-observation``) can fail the gate. The detail says which hour
        is the worst and when it leaves the window."""
        span, start = worst_hour_range(window, at)
        query = warn_would_reject_query(span, self._filter)
        if self._client is None or self._down is not None:
            return Measurement.missing(self._down or "")
        try:
            series = self._client.query_range(query, start=start, end=at, step=span)
        except MeasurementUnavailableError as exc:
            return self._failed(exc)
        points = [(t, v) for s in series for t, v in s.points if math.isfinite(v)]
        if not points:
            return Measurement.missing("no warn-mode validations in any hour of the window")
        worst_time, worst = max(points, key=lambda point: point[1])
        ends = datetime.fromtimestamp(worst_time, tz=at.tzinfo)
        ages_out = ends + max(window, span) - span
        return Measurement(
            worst,
            f"worst hour ends {ends:%Y-%m-%d %H:%M} UTC ({len(points)} hours with traffic); it leaves the "
            f"window at {ages_out:%Y-%m-%d %H:%M} UTC",
        )

    def alias_validations(self, window: timedelta, at: datetime) -> Measurement:
        return self._scalar(alias_validations_query(window, self._filter), at, "validations")

    def all_validations(self, window: timedelta, at: datetime) -> Measurement:
        return self._scalar(all_validations_query(window, self._filter), at, "validations")

    def canary_reject_ratio(self, window: timedelta, at: datetime) -> Measurement:
        return self._scalar(canary_reject_query(window, self._filter), at, "enforced canary validations")

    def canary_validations(self, window: timedelta, at: datetime) -> Measurement:
        """Enforced canary-cohort validations in the window (the sample behind the canary ratios)."""
        query = cohort_validations_query("enforce", "canary", window, self._filter)
        return self._scalar(query, at, "enforced canary validations")

    def baseline_validations(self, window: timedelta, at: datetime) -> Measurement:
        """Warn baseline-cohort validations in the window (the sample behind the baseline ratio)."""
        query = cohort_validations_query("warn", "baseline", window, self._filter)
        return self._scalar(query, at, "baseline-cohort validations")

    def baseline_would_reject_ratio(self, window: timedelta, at: datetime) -> Measurement:
        return self._scalar(
            baseline_would_reject_query(window, self._filter), at, "baseline-cohort validations"
        )

    def validation_p99_seconds(self, window: timedelta, at: datetime) -> Measurement:
        return self._scalar(validation_p99_query(window, self._filter), at, "validation duration samples")

    def _scalar(self, query: str, at: datetime, what: str) -> Measurement:
        samples = self._instant(query, at)
        if isinstance(samples, Measurement):
            return samples
        if not samples:
            return Measurement.missing(f"no series: no {what} recorded in the window")
        value = samples[0].value
        if not math.isfinite(value):
            return Measurement.missing(f"no {what} in the window")
        return Measurement(value)

    def _instant(self, query: str, at: datetime) -> list[Sample] | Measurement:
        if self._client is None or self._down is not None:
            return Measurement.missing(self._down or "")
        try:
            return self._client.query(query, at=at)
        except MeasurementUnavailableError as exc:
            return self._failed(exc)

    def _failed(self, exc: MeasurementUnavailableError) -> Measurement:
        if exc.extra.get("reachable") is False:
            self._down = exc.detail
        return Measurement.missing(exc.detail)
