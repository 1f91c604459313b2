"""Self-test of the e2e harness: real Prometheus + real Alertmanager with the shipped rules and routing.

A small in-test HTTP endpoint stands in for the service (the API's webhook route is wired in a later
step): it serves ``render_metrics`` of a real ``ServiceMetrics`` and receives the webhook, checking it
with the real parsing and auth code. This proves that the shipped rules fire on enforce rejections,
that Alertmanager's real version-4 payload is accepted by ``parse_webhook_payload``, and measures
first rejection -> webhook delivery with test-sized intervals.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from fundmodel.errors import FundmodelError
from fundmodel.observability.alertmanager import (
    DowngradeRequest,
    SecretToken,
    downgrade_requests,
    parse_webhook_payload,
    plan_downgrade,
    verify_webhook_auth,
)
from fundmodel.observability.metrics import ServiceMetrics, render_metrics

from .harness import (
    ObservabilityStack,
    alertmanager_binary,
    free_port,
    prometheus_binary,
    wait_until,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(
        prometheus_binary() is None or alertmanager_binary() is None,
        reason="prometheus/alertmanager not installed (`make system-deps` installs Debian's packages)",
    ),
]

WEBHOOK_PATH = "/_ops/stage-validation/auto-downgrade"
SIMULATE = "/api/monte-carlo/simulate"
TOKEN = SecretToken(value="e2e-harness-token-" + "x" * 32, source="test")
DRILL_TIMEOUT_SECONDS = 60.0


@dataclass
class StandIn:
    """The service's observable surface: metrics, current mode, received webhook deliveries."""

    metrics: ServiceMetrics
    registry: CollectorRegistry
    mode: str = "enforce"
    deliveries: list[tuple[int, dict[str, object]]] = field(default_factory=list)
    downgrades: list[DowngradeRequest] = field(default_factory=list)
    seen_keys: set[str] = field(default_factory=set)
    downgraded_at: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle_webhook(self, authorization: str | None, body: bytes) -> int:
        try:
            verify_webhook_auth(authorization=authorization, signature=None, body=body, token=TOKEN)
            payload = parse_webhook_payload(body)
        except FundmodelError as exc:
            self.metrics.count_webhook("unauthorized" if exc.code == "UNAUTHENTICATED" else "malformed")
            return 401 if exc.code == "UNAUTHENTICATED" else 400
        with self.lock:
            self.deliveries.append((200, json.loads(body)))
            plan = plan_downgrade(downgrade_requests(payload), self.mode, self.seen_keys)
            self.seen_keys.update(r.idempotency_key for r in plan.new_requests)
            self.downgrades.extend(plan.new_requests)
            if plan.target_mode is not None:
                self.mode = plan.target_mode
                self.downgraded_at = time.monotonic()
                self.metrics.set_mode(plan.target_mode, 100.0)
                self.metrics.refresh_mode_change_counts()
            self.metrics.count_webhook(plan.result)
        return 200


def make_handler(stand_in: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/metrics":
                self.send_error(404)
                return
            body, content_type = render_metrics(stand_in.registry)
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            status = 404
            if self.path == WEBHOOK_PATH:
                status = stand_in.handle_webhook(self.headers.get("Authorization"), body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[StandIn, str]]:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    registry = CollectorRegistry()
    metrics = ServiceMetrics(registry)
    metrics.set_mode("enforce", 100.0)
    state = StandIn(metrics=metrics, registry=registry)
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), make_handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def drive_traffic(state: StandIn, stop: threading.Event, first_reject: list[float]) -> None:
    """Per 100 ms: 5 valid and, while enforcing, 1 rejected validation (about 17 % rejected)."""
    while not stop.is_set():
        for _ in range(5):
            state.metrics.observe_validation(SIMULATE, state.mode, "valid", "canary", 0.00002)
        if state.mode == "enforce":
            if not first_reject:
                first_reject.append(time.monotonic())
            state.metrics.observe_validation(SIMULATE, "enforce", "rejected", "canary", 0.00003)
        else:
            state.metrics.observe_validation(SIMULATE, state.mode, "would_reject", "baseline", 3e-5)
        stop.wait(0.1)


def test_shipped_rules_and_routing_deliver_a_parsable_downgrade(
    tmp_path: Path, stand_in: tuple[StandIn, str]
) -> None:
    state, target = stand_in
    token_file = tmp_path / "webhook-token"
    token_file.write_text(TOKEN.value + "\n")
    token_file.chmod(0o600)
    stop = threading.Event()
    first_reject: list[float] = []
    traffic = threading.Thread(target=drive_traffic, args=(state, stop, first_reject), daemon=True)
    with ObservabilityStack(
        tmp_path / "stack",
        scrape_targets=[target],
        webhook_url=f"http://{target}{WEBHOOK_PATH}",
        webhook_token_file=token_file,
    ) as stack:
        try:
            assert wait_until(stack.prometheus.targets_up, timeout=20), stack.logs()
            traffic.start()
            downgraded = wait_until(lambda: state.downgraded_at, timeout=DRILL_TIMEOUT_SECONDS)
            assert downgraded, f"no downgrade within {DRILL_TIMEOUT_SECONDS}s\n{stack.logs()}"
            elapsed = downgraded - first_reject[0]
            print(f"\nfirst rejection -> webhook downgrade: {elapsed:.1f}s (scrape/eval 1s, for 1s)")
            assert elapsed < DRILL_TIMEOUT_SECONDS

            [request] = state.downgrades
            assert request.alert_name == "StageValidationRejectRatioHigh"
            assert request.external_url.startswith("http://")
            _, raw = state.deliveries[0]
            assert raw["version"] == "4"
            assert raw["receiver"] == "stage-validation-auto-downgrade"

            # Prometheus sees the new mode: no worker enforces any more.
            def enforce_gone() -> bool:
                result = stack.prometheus.query('fundmodel_stage_validation_mode{mode="enforce"}')
                return bool(result) and float(result[0]["value"][1]) == 0.0

            assert wait_until(enforce_gone, timeout=20), stack.logs()
        finally:
            stop.set()
            traffic.join(timeout=10)
    assert not stack.prometheus.process or not stack.prometheus.process.alive()
    assert not stack.alertmanager.process or not stack.alertmanager.process.alive()
