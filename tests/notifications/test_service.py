"""Notifications from the running service (real ASGI app, its background dispatcher) and the controller.

The auto-downgrade webhook and the operators' mode API post to a real receiver; a hung receiver never
delays a mode change (timed); the rollout controller's gate verdicts (refused, forced) are posted; the
delivery metric counts by target name; a webhook URL (a secret) reaches no log line and no metric.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from sqlalchemy import Engine

from fundmodel.db.mode_store import ModeStore
from fundmodel.errors import OperationRefusedError
from fundmodel.notifications.dispatcher import Dispatcher, RetryPolicy
from fundmodel.notifications.outbox import recent_deliveries
from fundmodel.notifications.targets import parse_webhook_targets
from fundmodel.rollout.config import GateConfig
from fundmodel.rollout.controller import RolloutController
from fundmodel.rollout.data_checks import StoredDataChecks
from fundmodel.rollout.measurements import PrometheusMeasurements
from fundmodel.rollout.prometheus import PrometheusClient
from fundmodel.validation import ModeState, ValidationMode
from tests.api.test_ops import ADMIN_TOKEN, WEBHOOK_TOKEN, admin, deliver, payload
from tests.conftest import ApiClient, captured_json_logs, open_api_client, settings_for
from tests.notifications.receiver import Receiver, free_port, receiver_on_free_port, running

OpenService = Callable[..., ApiClient]


def webhooks(*entries: tuple[str, str, str]) -> str:
    return json.dumps([{"name": name, "url": url, "format": fmt} for name, url, fmt in entries])


@pytest.fixture
def open_service(database_url: str) -> Iterator[OpenService]:
    """The app with NOTIFY_WEBHOOKS and the ops tokens; fast retries so a test sees them happen."""
    closers: list[Callable[[], None]] = []

    def opener(notify_webhooks: str, **overrides: Any) -> ApiClient:
        values: dict[str, Any] = {
            "stage_webhook_token": WEBHOOK_TOKEN,
            "admin_token": ADMIN_TOKEN,
            "notify_webhooks": notify_webhooks,
            "notify_poll_interval_seconds": 0.05,
            "notify_retry_base_seconds": 0.05,
            "notify_retry_max_seconds": 0.2,
        }
        values.update(overrides)
        client, close = open_api_client(settings_for(database_url, **values))
        closers.append(close)
        return client

    yield opener
    for close in reversed(closers):
        close()


def test_the_auto_downgrade_webhook_is_posted_by_the_service(open_service: OpenService) -> None:
    with receiver_on_free_port() as receiver:
        service = open_service(
            webhooks(("ops", receiver.url("/json"), "json"), ("chat", receiver.url("/slack"), "slack"))
        )
        service.set_mode("enforce", 25.0)
        assert deliver(service, payload()).json()["result"] == "downgraded"
        # The set-up change and the downgrade, each to both targets.
        bodies = receiver.wait_for(2, path="/json")
        downgrade = bodies[-1]
        assert downgrade["data"]["source"] == "alertmanager"
        assert (downgrade["data"]["old"]["mode"], downgrade["data"]["new"]["mode"]) == ("enforce", "warn")
        slack = receiver.wait_for(2, path="/slack")[-1]
        assert slack["text"].startswith(
            "Stage validation: enforce 25% → warn (alertmanager, by alertmanager)"
        )
        registry = service.state.registry
        labels = {"target": "ops", "result": "delivered"}
        deadline = time.monotonic() + 5
        while (
            time.monotonic() < deadline
            and registry.get_sample_value("fundmodel_notification_deliveries_total", labels) != 2.0
        ):
            time.sleep(0.02)
        assert registry.get_sample_value("fundmodel_notification_deliveries_total", labels) == 2.0


def test_a_hung_receiver_never_delays_a_mode_change(open_service: OpenService) -> None:
    with receiver_on_free_port(delay=1.5) as receiver:
        service = open_service(webhooks(("slow", receiver.url(), "json")), notify_timeout_seconds=0.5)
        service.set_mode("enforce", 10.0)  # the dispatcher is now stuck on the hung receiver
        time.sleep(0.2)
        timings = []
        for mode in ("warn", "enforce", "off"):
            started = time.perf_counter()
            response = admin(service, "PUT", json={"mode": mode, "actor": "alice", "reason": "timed"})
            timings.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text
        assert max(timings) < 0.4, timings
        # A timeout is an attempt like any other: recorded and retried; once the receiver answers again,
        # every change arrives.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(
            row.last_error == "ReadTimeout" for row in recent_deliveries(service.state.engine)
        ):
            time.sleep(0.05)
        assert any(row.last_error == "ReadTimeout" for row in recent_deliveries(service.state.engine))
        receiver.delay = 0.0
        bodies = receiver.wait_for(4, timeout=20)
        assert {body["data"]["new"]["mode"] for body in bodies} == {"enforce", "warn", "off"}


class _Rig:
    def __init__(self, engine: Engine, tmp_path: Path) -> None:
        self.engine = engine
        self.store = ModeStore(engine, default=ModeState(ValidationMode.WARN))
        # Nothing listens here: every gate measured through Prometheus is "no data", which blocks.
        client = PrometheusClient(f"http://127.0.0.1:{free_port()}", timeout=1)
        self.controller = RolloutController(
            self.store,
            engine,
            measurements=PrometheusMeasurements(client, label_filter='scenario="none"'),
            data_checks=StoredDataChecks(engine, backup_dir=tmp_path),
            config=GateConfig(),
            canary_salt="pytest",
        )


def test_advance_gate_verdicts_are_posted_refused_and_forced(engine: Engine, tmp_path: Path) -> None:
    rig = _Rig(engine, tmp_path)
    with pytest.raises(OperationRefusedError):
        rig.controller.advance(actor="bob")
    step = rig.controller.advance(actor="carol", force=True, reason="incident drill")
    assert step.change is not None
    with receiver_on_free_port() as receiver:
        targets = parse_webhook_targets(webhooks(("ops", receiver.url(), "json")))
        policy = RetryPolicy(timeout_seconds=2.0)
        with Dispatcher(engine, targets, policy) as dispatcher:
            dispatcher.run_once()
        bodies = receiver.bodies()
    verdicts = [body["data"] for body in bodies if body["kind"] == "gate_verdict"]
    assert [(v["verdict"], v["actor"]) for v in verdicts] == [("refused", "bob"), ("forced", "carol")]
    assert verdicts[0]["gates"], "the refused verdict carries its gates"
    assert any(gate["status"] != "pass" for gate in verdicts[0]["gates"])
    assert verdicts[1]["auditId"] == step.change.audit_id
    changes = [body["data"] for body in bodies if body["kind"] == "mode_change"]
    assert [c["action"] for c in changes][-1] == "advance"
    assert changes[-1]["new"]["mode"] == "enforce"


def test_a_webhook_url_reaches_no_log_line_and_no_metric(open_service: OpenService) -> None:
    token = "T0000/B0000/sekrit-token-in-the-path"
    port = free_port()  # nothing listens: connection refused, then a 500 once something does
    secret_url = f"http://127.0.0.1:{port}/services/{token}"
    with captured_json_logs("DEBUG") as stream:
        service = open_service(webhooks(("chat", secret_url, "slack")), log_level="DEBUG")
        service.set_mode("enforce", 10.0)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(
            row.attempts for row in recent_deliveries(service.state.engine)
        ):
            time.sleep(0.05)
        receiver = Receiver(port, responses=[500])
        with running(receiver):
            receiver.wait_for(1, timeout=15)
        metrics_text = generate_latest(service.state.registry).decode()
        logs = stream.getvalue()
    assert "notification_attempt" in logs
    assert "ConnectError" in logs
    assert "sekrit" not in logs
    assert "sekrit" not in metrics_text
    assert 'target="chat"' in metrics_text
