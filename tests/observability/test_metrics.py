"""ServiceMetrics: fixed label sets, pre-created series, exposition, multi-process merging."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from fundmodel.db.availability import UnavailableReason
from fundmodel.errors import ConfigurationError
from fundmodel.observability.metrics import (
    COHORTS,
    DATABASE_UNAVAILABLE_REASONS,
    DEFAULT_VALIDATED_ENDPOINTS,
    HTTP_METHODS,
    METRICS_CONTENT_TYPE,
    MODE_CHANGE_SOURCES,
    MULTIPROC_ENV,
    OTHER,
    STATUS_CLASSES,
    VALIDATION_DURATION_BUCKETS,
    VALIDATION_MODES,
    VALIDATION_OUTCOMES,
    WEBHOOK_RESULTS,
    ServiceMetrics,
    mark_worker_dead,
    render_metrics,
    reset_multiprocess_dir,
)
from fundmodel.observability.mode_change_counts import ModeChangeCounts

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not installed (Debian package 'prometheus'; `make system-deps` installs it)",
)
SIMULATE = "/api/monte-carlo/simulate"
# What an app factory passes in (the real app's list is checked in tests/api/test_app.py).
HTTP_OPERATIONS = (("POST", SIMULATE), ("GET", "/api/funds"), ("GET", "/api/funds/{fundId}/companies"))


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> ServiceMetrics:
    return ServiceMetrics(registry, http_operations=HTTP_OPERATIONS)


@pytest.fixture(autouse=True)
def _single_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def label_values(registry: CollectorRegistry, sample_name: str, label: str) -> set[str]:
    return {
        sample.labels[label]
        for family in registry.collect()
        for sample in family.samples
        if sample.name == sample_name
    }


def test_known_label_sets_report_zero_before_any_traffic(registry: CollectorRegistry) -> None:
    ServiceMetrics(registry, http_operations=HTTP_OPERATIONS)
    for endpoint in DEFAULT_VALIDATED_ENDPOINTS:
        for mode in VALIDATION_MODES:
            for outcome in VALIDATION_OUTCOMES:
                for cohort in COHORTS:
                    labels = {
                        "endpoint": endpoint,
                        "mode": mode,
                        "outcome": outcome,
                        "cohort": cohort,
                    }
                    assert value(registry, "fundmodel_stage_validations_total", **labels) == 0
    for status_class in STATUS_CLASSES:
        labels = {"route": SIMULATE, "method": "POST", "status_class": status_class}
        assert value(registry, "fundmodel_http_requests_total", **labels) == 0
    for source in MODE_CHANGE_SOURCES:
        assert value(registry, "fundmodel_stage_validation_mode_changes_total", source=source) == 0
    for result in WEBHOOK_RESULTS:
        name = "fundmodel_stage_validation_webhook_requests_total"
        assert value(registry, name, result=result) == 0
    for mode in VALIDATION_MODES:
        assert value(registry, "fundmodel_stage_validation_mode", mode=mode) == 0
    assert value(registry, "fundmodel_stage_validation_mode_store_errors_total") == 0
    name = "fundmodel_stage_validation_duration_seconds_count"
    assert value(registry, name, endpoint=SIMULATE, mode="enforce") == 0


def test_observe_validation_counts_and_times(metrics: ServiceMetrics, registry: CollectorRegistry) -> None:
    metrics.observe_validation(SIMULATE, "enforce", "rejected", "canary", 0.0002)
    metrics.observe_validation(SIMULATE, "enforce", "rejected", "canary", 0.0004)
    labels = {"endpoint": SIMULATE, "mode": "enforce", "outcome": "rejected", "cohort": "canary"}
    assert value(registry, "fundmodel_stage_validations_total", **labels) == 2
    hist = {"endpoint": SIMULATE, "mode": "enforce"}
    assert value(registry, "fundmodel_stage_validation_duration_seconds_count", **hist) == 2
    total = value(registry, "fundmodel_stage_validation_duration_seconds_sum", **hist)
    assert total == pytest.approx(0.0006)


def test_validation_buckets_span_5us_to_10ms_with_exact_1ms_boundary(
    metrics: ServiceMetrics, registry: CollectorRegistry
) -> None:
    assert VALIDATION_DURATION_BUCKETS[0] == 0.000005
    assert VALIDATION_DURATION_BUCKETS[-1] == 0.01
    assert 0.001 in VALIDATION_DURATION_BUCKETS
    assert list(VALIDATION_DURATION_BUCKETS) == sorted(VALIDATION_DURATION_BUCKETS)
    metrics.observe_validation(SIMULATE, "warn", "valid", "baseline", 0.001)
    bucket = "fundmodel_stage_validation_duration_seconds_bucket"
    hist = {"endpoint": SIMULATE, "mode": "warn"}
    assert value(registry, bucket, le="0.001", **hist) == 1  # le is inclusive
    assert value(registry, bucket, le="0.00075", **hist) == 0


def test_route_templates_match_regardless_of_path_parameter_names(
    metrics: ServiceMetrics, registry: CollectorRegistry
) -> None:
    metrics.observe_validation("/api/funds/{fund_id}/companies", "warn", "valid", "baseline", 1e-5)
    labels = {
        "endpoint": "/api/funds/{fundId}/companies",
        "mode": "warn",
        "outcome": "valid",
        "cohort": "baseline",
    }
    assert value(registry, "fundmodel_stage_validations_total", **labels) == 1


def test_http_routes_are_the_ones_passed_in_and_nothing_else(registry: CollectorRegistry) -> None:
    metrics = ServiceMetrics(registry, http_operations=[("GET", "/api/funds/{fundId}")])
    http = "fundmodel_http_requests_total"
    assert label_values(registry, http, "route") == {"/api/funds/{fundId}"}  # zeros up front
    metrics.observe_http("/api/funds/{fund_id}", "GET", 200, 0.001)  # same template, other name
    metrics.observe_http(SIMULATE, "POST", 200, 0.001)  # served elsewhere, not by this app
    assert value(registry, http, route="/api/funds/{fundId}", method="GET", status_class="2xx") == 1
    assert value(registry, http, route=OTHER, method="POST", status_class="2xx") == 1
    assert ServiceMetrics(CollectorRegistry()).route_label("/healthz") == OTHER  # no routes: all other


def test_label_values_derived_from_the_enums_stay_what_dashboards_select_on() -> None:
    # Derived from ValidationMode, Outcome, Cohort and ModeChangeSource: renaming a member would
    # silently empty the panels, alert rules (deploy/prometheus) and the rollout's PromQL.
    assert VALIDATION_MODES == ("off", "warn", "enforce")
    assert VALIDATION_OUTCOMES == (
        "valid",
        "normalized_alias",
        "unknown_accepted",
        "would_reject",
        "rejected",
        "malformed",
    )
    assert COHORTS == ("canary", "baseline")
    assert MODE_CHANGE_SOURCES == ("manual", "alertmanager", "rollout")


def test_unknown_label_values_become_other(metrics: ServiceMetrics, registry: CollectorRegistry) -> None:
    metrics.observe_validation("/api/funds/123/companies", "strict", "Series Z", "vip", 1e-5)
    labels = {"endpoint": OTHER, "mode": OTHER, "outcome": OTHER, "cohort": OTHER}
    assert value(registry, "fundmodel_stage_validations_total", **labels) == 1
    metrics.observe_http("/etc/passwd", "BREW", 418, 0.01)
    metrics.observe_http("/api/funds", "get", 99, 0.01)
    http = "fundmodel_http_requests_total"
    assert value(registry, http, route=OTHER, method=OTHER, status_class="4xx") == 1
    assert value(registry, http, route="/api/funds", method="GET", status_class=OTHER) == 1
    metrics.mode_changes.attach(lambda: {"cron": 2, "manual": 1}, ttl_seconds=0)
    assert value(registry, "fundmodel_stage_validation_mode_changes_total", source=OTHER) == 2
    assert value(registry, "fundmodel_stage_validation_mode_changes_total", source="manual") == 1
    metrics.count_webhook("<script>")
    name = "fundmodel_stage_validation_webhook_requests_total"
    assert value(registry, name, result=OTHER) == 1
    metrics.count_offender_logs_dropped("/api/funds/42")
    name = "fundmodel_stage_validation_offender_logs_dropped_total"
    assert value(registry, name, endpoint=OTHER) == 1


label_text = st.text(min_size=0, max_size=40)


def test_validation_labels_never_leave_their_fixed_sets() -> None:
    registry = CollectorRegistry()
    metrics = ServiceMetrics(registry)
    sample = "fundmodel_stage_validations_total"

    @settings(max_examples=50)
    @given(endpoint=label_text, mode=label_text, outcome=label_text, cohort=label_text)
    def check(endpoint: str, mode: str, outcome: str, cohort: str) -> None:
        metrics.observe_validation(endpoint, mode, outcome, cohort, 1e-5)
        assert label_values(registry, sample, "endpoint") <= {*DEFAULT_VALIDATED_ENDPOINTS, OTHER}
        assert label_values(registry, sample, "mode") <= {*VALIDATION_MODES, OTHER}
        assert label_values(registry, sample, "outcome") <= {*VALIDATION_OUTCOMES, OTHER}
        assert label_values(registry, sample, "cohort") <= {*COHORTS, OTHER}

    check()


def test_http_labels_never_leave_their_fixed_sets() -> None:
    registry = CollectorRegistry()
    metrics = ServiceMetrics(registry, http_operations=HTTP_OPERATIONS)
    sample = "fundmodel_http_requests_total"
    known_routes = {route for _, route in HTTP_OPERATIONS} | {OTHER}

    @settings(max_examples=50)
    @given(route=label_text, method=label_text, status=st.integers(-1000, 1000))
    def check(route: str, method: str, status: int) -> None:
        metrics.observe_http(route, method, status, 0.001)
        assert label_values(registry, sample, "status_class") <= {*STATUS_CLASSES, OTHER}
        assert label_values(registry, sample, "method") <= {*HTTP_METHODS, OTHER}
        assert label_values(registry, sample, "route") <= known_routes

    check()


def test_status_classes(metrics: ServiceMetrics, registry: CollectorRegistry) -> None:
    for status in (200, 204, 301, 400, 422, 500, 503):
        metrics.observe_http(SIMULATE, "POST", status, 0.002)
    http = "fundmodel_http_requests_total"
    counts = {
        sc: value(registry, http, route=SIMULATE, method="POST", status_class=sc) for sc in STATUS_CLASSES
    }
    assert counts == {"2xx": 2, "3xx": 1, "4xx": 2, "5xx": 2}


def test_set_mode_marks_exactly_one_mode(metrics: ServiceMetrics, registry: CollectorRegistry) -> None:
    metrics.set_mode("enforce", 10)
    metrics.set_mode("warn", 0)
    modes = {m: value(registry, "fundmodel_stage_validation_mode", mode=m) for m in VALIDATION_MODES}
    assert modes == {"off": 0, "warn": 1, "enforce": 0}
    assert value(registry, "fundmodel_stage_validation_canary_percent") == 0
    with pytest.raises(ValueError, match="unknown stage-validation mode"):
        metrics.set_mode("strict", 0)


def test_counters_and_cache_age(metrics: ServiceMetrics, registry: CollectorRegistry) -> None:
    metrics.count_mode_store_error()
    metrics.set_mode_cache_age(1.5)
    assert value(registry, "fundmodel_stage_validation_mode_store_errors_total") == 1
    assert value(registry, "fundmodel_stage_validation_mode_cache_age_seconds") == 1.5


def test_database_outages_are_counted_by_reason_from_a_fixed_set(
    metrics: ServiceMetrics, registry: CollectorRegistry
) -> None:
    # The label set is the classifier's reasons, spelled out in metrics.py (which must not import db/).
    assert set(DATABASE_UNAVAILABLE_REASONS) == {reason.value for reason in UnavailableReason}
    name = "fundmodel_database_unavailable_total"
    assert label_values(registry, name, "reason") == set(DATABASE_UNAVAILABLE_REASONS)  # zeros up front
    metrics.count_database_unavailable("connection")
    metrics.count_database_unavailable("connection")
    metrics.count_database_unavailable("locked")
    metrics.count_database_unavailable("disk on fire")
    assert value(registry, name, reason="connection") == 2
    assert value(registry, name, reason="locked") == 1
    assert value(registry, name, reason="pool_timeout") == 0
    assert value(registry, name, reason=OTHER) == 1


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class CountingReader:
    """Stands in for the audit-table query: counts per source, and how often it was asked."""

    def __init__(self, counts: dict[str, int]) -> None:
        self.counts = counts
        self.calls = 0
        self.fail = False

    def __call__(self) -> dict[str, int]:
        self.calls += 1
        if self.fail:
            raise RuntimeError("database unreachable")
        return dict(self.counts)


MODE_CHANGES = "fundmodel_stage_validation_mode_changes_total"


def mode_changes_collector(reader: CountingReader, clock: FakeClock) -> CollectorRegistry:
    registry = CollectorRegistry()
    collector = ModeChangeCounts(MODE_CHANGE_SOURCES, other=OTHER, clock=clock)
    registry.register(collector)
    collector.attach(reader, ttl_seconds=2.0)
    return registry


def test_mode_changes_are_read_at_scrape_time_and_cached_briefly() -> None:
    clock, reader = FakeClock(), CountingReader({"manual": 2, "rollout": 3})
    registry = mode_changes_collector(reader, clock)
    assert reader.calls == 0  # registering does not query
    assert value(registry, MODE_CHANGES, source="rollout") == 3
    assert value(registry, MODE_CHANGES, source="alertmanager") == 0  # known sources always reported
    reader.counts["rollout"] = 4  # e.g. `fundmodel rollout advance` in another process
    assert value(registry, MODE_CHANGES, source="rollout") == 3  # within the TTL: the cached count
    assert reader.calls == 1
    clock.now += 2.0
    assert value(registry, MODE_CHANGES, source="rollout") == 4
    assert reader.calls == 2


def test_a_change_made_by_this_process_shows_at_the_next_scrape(
    metrics: ServiceMetrics, registry: CollectorRegistry
) -> None:
    reader = CountingReader({"alertmanager": 0})
    metrics.mode_changes.attach(reader, ttl_seconds=3600.0)
    assert value(registry, MODE_CHANGES, source="alertmanager") == 0
    reader.counts["alertmanager"] = 1
    assert value(registry, MODE_CHANGES, source="alertmanager") == 0  # cached
    metrics.refresh_mode_change_counts()  # the webhook just wrote its audit row
    assert value(registry, MODE_CHANGES, source="alertmanager") == 1


def test_an_unreadable_audit_keeps_the_last_counts_and_never_fails_the_scrape() -> None:
    clock, reader = FakeClock(), CountingReader({"manual": 5})
    registry = mode_changes_collector(reader, clock)
    reader.fail = True
    assert value(registry, MODE_CHANGES, source="manual") is None  # never read: absent, not a false 0
    clock.now += 1.0
    assert value(registry, MODE_CHANGES, source="manual") is None
    assert reader.calls == 1  # a failed read also waits out the TTL
    reader.fail = False
    clock.now += 2.0
    assert value(registry, MODE_CHANGES, source="manual") == 5
    reader.fail = True
    clock.now += 2.0
    assert value(registry, MODE_CHANGES, source="manual") == 5  # counters never drop back to zero
    assert render_metrics(registry)[0]  # the scrape still answers


def test_multiprocess_output_reports_mode_changes_once_not_per_worker(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pids = run_workers(tmp_path, [("warn", 1, 0), ("warn", 1, 0), ("enforce", 1, 0)])
    assert len(pids) == 3
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    reader = CountingReader({"manual": 2, "alertmanager": 1, "rollout": 4})
    collector = ModeChangeCounts(MODE_CHANGE_SOURCES, other=OTHER)
    collector.attach(reader, ttl_seconds=2.0)
    body, _ = render_metrics(None, scrape_time=[collector])
    families = [f for f in text_string_to_metric_families(body.decode()) if f.name == MODE_CHANGES[:-6]]
    assert len(families) == 1
    assert sample_value(body, MODE_CHANGES, source="rollout") == 4
    assert sample_value(body, MODE_CHANGES, source="manual") == 2
    assert sample_value(body, MODE_CHANGES, source="alertmanager") == 1
    # The workers' own files hold no mode-change values that could be summed.
    assert b"mode_changes" not in b"".join(path.read_bytes() for path in tmp_path.glob("*.db"))
    if PROMTOOL is not None:
        result = promtool_check(body)
        assert result.returncode == 0, result.stdout + result.stderr


def test_render_metrics_single_process(metrics: ServiceMetrics, registry: CollectorRegistry) -> None:
    metrics.observe_validation(SIMULATE, "warn", "would_reject", "baseline", 1e-4)
    body, content_type = render_metrics(registry)
    assert content_type == METRICS_CONTENT_TYPE
    assert content_type.startswith("text/plain; version=0.0.4")
    names = {family.name for family in text_string_to_metric_families(body.decode())}
    assert "fundmodel_stage_validations" in names
    assert b'outcome="would_reject"' in body


def test_render_metrics_without_registry_or_multiprocess_dir_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=MULTIPROC_ENV):
        render_metrics(None)


def test_render_metrics_rejects_missing_multiprocess_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path / "missing"))
    with pytest.raises(ConfigurationError, match="not a directory"):
        render_metrics(None)


def promtool_check(body: bytes) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, "check", "metrics"],
        input=body.decode(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@needs_promtool
def test_promtool_accepts_single_process_output(metrics: ServiceMetrics, registry: CollectorRegistry) -> None:
    metrics.observe_validation(SIMULATE, "enforce", "rejected", "canary", 3e-4)
    metrics.observe_http(SIMULATE, "POST", 400, 0.004)
    metrics.set_mode("enforce", 25)
    body, _ = render_metrics(registry)
    result = promtool_check(body)
    assert result.returncode == 0, result.stdout + result.stderr


WORKER_SCRIPT = textwrap.dedent(
    """
    import sys
    from prometheus_client import CollectorRegistry
    from fundmodel.observability.metrics import ServiceMetrics

    mode, rejected, valid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    metrics = ServiceMetrics(
        CollectorRegistry(), http_operations=[("POST", "/api/monte-carlo/simulate")]
    )
    metrics.set_mode(mode, 100.0 if mode == "enforce" else 0.0)
    for _ in range(rejected):
        metrics.observe_validation(
            "/api/monte-carlo/simulate", "enforce", "rejected", "canary", 0.0002
        )
    for _ in range(valid):
        metrics.observe_validation(
            "/api/monte-carlo/simulate", "enforce", "valid", "canary", 0.002
        )
    metrics.observe_http("/api/monte-carlo/simulate", "POST", 400, 0.01)
    metrics.count_webhook("downgraded")
    print("ok")
    """
)


def run_workers(multiproc_dir: Path, specs: list[tuple[str, int, int]]) -> list[int]:
    env = {**os.environ, MULTIPROC_ENV: str(multiproc_dir)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER_SCRIPT, mode, str(rejected), str(valid)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for mode, rejected, valid in specs
    ]
    pids = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert out.strip() == "ok"
        pids.append(proc.pid)
    return pids


def sample_value(body: bytes, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None


def test_multiprocess_totals_sum_across_real_worker_processes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    multiproc_dir = tmp_path / "prom"
    multiproc_dir.mkdir()
    (multiproc_dir / "counter_999999.db").write_bytes(b"stale from a previous run")
    reset_multiprocess_dir(multiproc_dir)
    assert not list(multiproc_dir.iterdir())

    pids = run_workers(multiproc_dir, [("enforce", 7, 3), ("warn", 5, 1), ("enforce", 11, 0)])
    assert len(set(pids)) == 3
    assert len(list(multiproc_dir.glob("counter_*.db"))) == 3

    monkeypatch.setenv(MULTIPROC_ENV, str(multiproc_dir))
    body, content_type = render_metrics(None)
    assert content_type == METRICS_CONTENT_TYPE
    labels = {"endpoint": SIMULATE, "mode": "enforce", "cohort": "canary"}
    total = "fundmodel_stage_validations_total"
    assert sample_value(body, total, outcome="rejected", **labels) == 23
    assert sample_value(body, total, outcome="valid", **labels) == 4
    assert sample_value(body, total, outcome="would_reject", **labels) == 0
    hist = {"endpoint": SIMULATE, "mode": "enforce"}
    count = "fundmodel_stage_validation_duration_seconds_count"
    assert sample_value(body, count, **hist) == 27
    bucket = "fundmodel_stage_validation_duration_seconds_bucket"
    assert sample_value(body, bucket, le="0.001", **hist) == 23
    http = "fundmodel_http_requests_total"
    assert sample_value(body, http, route=SIMULATE, method="POST", status_class="4xx") == 3
    webhook = "fundmodel_stage_validation_webhook_requests_total"
    assert sample_value(body, webhook, result="downgraded") == 3

    # livemax: a mode reads 1 while any live worker applies it ...
    mode = "fundmodel_stage_validation_mode"
    assert sample_value(body, mode, mode="enforce") == 1
    assert sample_value(body, mode, mode="warn") == 1
    assert sample_value(body, mode, mode="off") == 0
    assert sample_value(body, "fundmodel_stage_validation_canary_percent") == 100

    # ... and a dead worker's view is forgotten once it is marked dead (gunicorn child_exit).
    for pid in (pids[0], pids[2]):
        mark_worker_dead(pid)
    body, _ = render_metrics(None)
    assert sample_value(body, mode, mode="enforce") == 0
    assert sample_value(body, mode, mode="warn") == 1
    assert sample_value(body, "fundmodel_stage_validation_canary_percent") == 0
    # Counters of dead workers stay: totals must never go backwards.
    assert sample_value(body, total, outcome="rejected", **labels) == 23

    if PROMTOOL is not None:
        result = promtool_check(body)
        assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_accepts_multiprocess_output(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    run_workers(tmp_path, [("warn", 1, 1), ("enforce", 2, 0)])
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    body, _ = render_metrics(None)
    result = promtool_check(body)
    assert result.returncode == 0, result.stdout + result.stderr
