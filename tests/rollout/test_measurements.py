from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from fundmodel.observability.metrics import DEFAULT_VALIDATED_ENDPOINTS
from fundmodel.rollout.measurements import (
    PrometheusMeasurements,
    alias_validations_query,
    canary_reject_query,
    cohort_validations_query,
    selector,
    validation_p99_query,
    warn_would_reject_query,
    worst_hour_range,
)
from fundmodel.rollout.prometheus import PrometheusClient
from tests.rollout.recorded_prometheus import (
    CANARY_STEP,
    PER_STEP,
    WARN_STEP,
    RecordedPrometheus,
    free_port,
)

WEEK = timedelta(days=7)
SOAK = timedelta(hours=3)


def measurements(server: RecordedPrometheus, scenario: str) -> PrometheusMeasurements:
    return PrometheusMeasurements(PrometheusClient(server.url), label_filter=f'scenario="{scenario}"')


def test_queries_use_the_metric_names_and_outcomes_of_the_alert_rules() -> None:
    assert selector("m", ['a="1"'], 'job="x",') == 'm{a="1",job="x"}'
    ratio = warn_would_reject_query(WEEK)
    assert 'outcome=~"would_reject|unknown_accepted"' in ratio
    assert "[604800s]" in ratio
    assert 'mode="enforce",cohort="canary",outcome="rejected"' in canary_reject_query(SOAK)
    assert validation_p99_query(SOAK).startswith("histogram_quantile(0.99, sum by (le) (increase(")
    assert "[60s]" in canary_reject_query(timedelta(seconds=5))  # never a window under a minute
    assert cohort_validations_query("enforce", "canary", SOAK, 'job="x"') == (
        'sum(increase(fundmodel_stage_validations_total{mode="enforce",cohort="canary",job="x"}[10800s]))'
    )


def test_cohort_sample_sizes(recorded_prometheus: RecordedPrometheus) -> None:
    end = recorded_prometheus.end
    healthy = measurements(recorded_prometheus, "canary_healthy")
    three_hours = PER_STEP * (1 + 0.002) * (SOAK / CANARY_STEP)
    assert healthy.canary_validations(SOAK, end).value == pytest.approx(three_hours, rel=0.02)
    assert healthy.baseline_validations(SOAK, end).value == pytest.approx(three_hours, rel=0.02)
    sparse = measurements(recorded_prometheus, "canary_sparse").canary_validations(SOAK, end)
    assert sparse.value == pytest.approx(SOAK / CANARY_STEP, rel=0.05)
    absent = measurements(recorded_prometheus, "never_recorded").canary_validations(SOAK, end)
    assert absent.value is None


def test_validations_per_endpoint(recorded_prometheus: RecordedPrometheus) -> None:
    counts = measurements(recorded_prometheus, "warn_healthy").validations_per_endpoint(
        (*DEFAULT_VALIDATED_ENDPOINTS, "/api/not-validated"), WEEK, recorded_prometheus.end
    )
    week_of_traffic = PER_STEP * (1 + 0.002) * (WEEK / WARN_STEP)
    for endpoint in DEFAULT_VALIDATED_ENDPOINTS:
        assert counts[endpoint].value == pytest.approx(week_of_traffic, rel=0.02)
    assert counts["/api/not-validated"].value == 0  # measured: no traffic, which fails a ">= N" gate


def test_warn_ratio_and_worst_hour(recorded_prometheus: RecordedPrometheus) -> None:
    end = recorded_prometheus.end
    healthy = measurements(recorded_prometheus, "warn_healthy")
    assert healthy.warn_would_reject_ratio(WEEK, end).value == pytest.approx(0.002 / 1.002, rel=0.01)
    assert healthy.warn_max_hourly_would_reject_ratio(WEEK, end).value == pytest.approx(
        0.002 / 1.002, rel=0.05
    )
    spiky = measurements(recorded_prometheus, "warn_spiky")
    assert spiky.warn_would_reject_ratio(WEEK, end).value < 0.005  # type: ignore[operator]
    worst = spiky.warn_max_hourly_would_reject_ratio(WEEK, end)
    assert worst.value is not None
    assert worst.value > 0.03
    assert "worst hour ends" in worst.detail


def test_canary_measurements(recorded_prometheus: RecordedPrometheus) -> None:
    end = recorded_prometheus.end
    healthy = measurements(recorded_prometheus, "canary_healthy")
    assert healthy.canary_reject_ratio(SOAK, end).value == pytest.approx(0.002 / 1.002, rel=0.01)
    assert healthy.baseline_would_reject_ratio(SOAK, end).value == pytest.approx(0.002 / 1.002, rel=0.01)
    p99 = healthy.validation_p99_seconds(SOAK, end).value
    assert p99 is not None
    assert p99 < 0.001
    worse = measurements(recorded_prometheus, "canary_worse")
    assert worse.canary_reject_ratio(SOAK, end).value == pytest.approx(0.004 / 1.004, rel=0.01)
    slow = worse.validation_p99_seconds(SOAK, end).value
    assert slow is not None
    assert slow > 0.001


def test_no_series_and_no_traffic_are_missing_not_zero(recorded_prometheus: RecordedPrometheus) -> None:
    end = recorded_prometheus.end
    absent = measurements(recorded_prometheus, "never_recorded")
    ratio = absent.warn_would_reject_ratio(WEEK, end)
    assert ratio.value is None
    assert "no series" in ratio.detail
    assert all(m.value is None for m in absent.validations_per_endpoint(["/x"], WEEK, end).values())
    assert absent.warn_max_hourly_would_reject_ratio(WEEK, end).value is None
    # a warn-only scenario has no enforced canary traffic: 0/0 is no data
    warn_only = measurements(recorded_prometheus, "warn_healthy")
    assert warn_only.canary_reject_ratio(SOAK, end).value is None
    assert warn_only.validation_p99_seconds(SOAK, end).value is None


def test_unreachable_prometheus_gives_no_data_everywhere_and_fails_fast() -> None:
    unreachable = PrometheusMeasurements(
        PrometheusClient(f"http://127.0.0.1:{free_port()}", timeout=2), label_filter=""
    )
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    started = time.monotonic()
    results = [
        unreachable.warn_would_reject_ratio(WEEK, now),
        unreachable.warn_max_hourly_would_reject_ratio(WEEK, now),
        unreachable.canary_reject_ratio(SOAK, now),
        unreachable.baseline_would_reject_ratio(SOAK, now),
        unreachable.validation_p99_seconds(SOAK, now),
        *unreachable.validations_per_endpoint(["/a", "/b"], WEEK, now).values(),
    ]
    assert all(m.value is None and "unreachable" in m.detail for m in results)
    assert time.monotonic() - started < 2


def test_without_a_prometheus_url() -> None:
    from datetime import UTC, datetime

    missing = PrometheusMeasurements(None)
    measurement = missing.canary_reject_ratio(SOAK, datetime.now(UTC))
    assert measurement.value is None
    assert measurement.detail == "PROMETHEUS_URL is not set"


@pytest.mark.parametrize(
    "window", [timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=1), timedelta(hours=5), WEEK]
)
def test_no_worst_hour_reaches_back_beyond_the_window(window: timedelta) -> None:
    at = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    span, first_end = worst_hour_range(window, at)
    assert span <= timedelta(hours=1)
    assert first_end - span == at - window  # the first "hour" begins exactly at the window's start
    assert first_end <= at


def test_alias_query_counts_normalized_aliases_in_every_mode() -> None:
    query = alias_validations_query(WEEK, 'job="fundmodel"')
    assert query == (
        'sum(increase(fundmodel_stage_validations_total{outcome="normalized_alias",job="fundmodel"}[604800s]))'
    )
