from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fundmodel.errors import MeasurementUnavailableError
from fundmodel.rollout.prometheus import PrometheusClient
from tests.rollout.recorded_prometheus import RecordedPrometheus, free_port


def test_instant_vector_and_scalar(recorded_prometheus: RecordedPrometheus) -> None:
    with PrometheusClient(recorded_prometheus.url) as client:
        samples = client.query(
            'sum by (outcome) (fundmodel_stage_validations_total{scenario="warn_healthy",'
            'endpoint="/api/monte-carlo/simulate"})',
            at=recorded_prometheus.end,
        )
        by_outcome = {s.labels["outcome"]: s.value for s in samples}
        assert set(by_outcome) == {"valid", "would_reject"}
        assert by_outcome["would_reject"] == pytest.approx(by_outcome["valid"] * 0.002)
        assert [s.value for s in client.query("scalar(vector(42))")] == [42.0]


def test_nan_comes_back_as_nan_not_as_zero(recorded_prometheus: RecordedPrometheus) -> None:
    with PrometheusClient(recorded_prometheus.url) as client:
        [sample] = client.query("vector(0) / vector(0)")
    assert sample.value != sample.value  # NaN


def test_query_range(recorded_prometheus: RecordedPrometheus) -> None:
    end = recorded_prometheus.end
    with PrometheusClient(recorded_prometheus.url) as client:
        series = client.query_range(
            'sum(fundmodel_stage_validations_total{scenario="canary_healthy"})',
            start=end - timedelta(hours=2),
            end=end,
            step=timedelta(minutes=30),
        )
    [only] = series
    values = [value for _, value in only.points]
    assert len(values) == 5
    assert values == sorted(values)  # a counter grows


def test_bad_query_is_a_clear_error(recorded_prometheus: RecordedPrometheus) -> None:
    with (
        PrometheusClient(recorded_prometheus.url) as client,
        pytest.raises(MeasurementUnavailableError, match=r"rejected the query \(bad_data") as caught,
    ):
        client.query("sum(")
    assert caught.value.extra.get("reachable") is not False


def test_unreachable_server() -> None:
    with (
        PrometheusClient(f"http://127.0.0.1:{free_port()}", timeout=2) as client,
        pytest.raises(MeasurementUnavailableError, match="is unreachable") as caught,
    ):
        client.query("up")
    assert caught.value.extra["reachable"] is False


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/slow"):
            threading.Event().wait(1.5)
        body = b"<html>not prometheus</html>"
        status = 503 if self.path.startswith("/down") else 200
        try:
            self.send_response(status)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (the timeout case)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture(scope="module")
def not_prometheus() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True  # the "slow" handler must not hold up teardown
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("prefix", "message"),
    [("", "not Prometheus API JSON"), ("/down", "answered HTTP 503"), ("/slow", "did not answer in time")],
)
def test_garbage_errors_and_timeouts(not_prometheus: str, prefix: str, message: str) -> None:
    with (
        PrometheusClient(not_prometheus + prefix, timeout=0.5) as client,
        pytest.raises(MeasurementUnavailableError, match=message),
    ):
        client.query("up")


def test_url_must_be_http() -> None:
    with pytest.raises(MeasurementUnavailableError, match="must be an http"):
        PrometheusClient("localhost:9090")
