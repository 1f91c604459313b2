"""The ops API over real ASGI and a real database (SQLite and PostgreSQL).

``POST /_ops/stage-validation/auto-downgrade`` (Alertmanager webhook) and ``GET/PUT
/_ops/stage-validation/mode`` (operators): authentication, the only-lowers rule, idempotency across
workers, the audit trail, metrics and logs.
"""

from __future__ import annotations

import io
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog
from sqlalchemy import Engine, text

from fundmodel.db.engine import create_db_engine
from fundmodel.observability.alertmanager import SIGNATURE_HEADER, SecretToken, body_signature
from fundmodel.observability.logging import configure_logging
from fundmodel.validation import ModeState, ValidationMode
from tests.conftest import ApiClient, open_api_client, settings_for

WEBHOOK = "/_ops/stage-validation/auto-downgrade"
MODE = "/_ops/stage-validation/mode"
WEBHOOK_TOKEN = "webhook-" + "w" * 40
ADMIN_TOKEN = "admin-" + "a" * 40
GROUP_KEY = '{}/{action="downgrade_stage_validation"}:{alertname="StageValidationRejectRatioHigh"}'
AM_URL = "http://alertmanager.example:9093"
# HTTP-level checks that never reach the store run on SQLite only; store behaviour runs on both.
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def alert(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "status": "firing",
        "labels": {
            "alertname": "StageValidationRejectRatioHigh",
            "action": "downgrade_stage_validation",
            "severity": "warning",
        },
        "annotations": {"summary": "reject ratio 3.2%"},
        "startsAt": "2026-11-28T10:00:03.123456789Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example:9090/graph?g0.expr=x",
        "fingerprint": "1a30ba71cca2921f",
    }
    base.update(overrides)
    return base


def payload(*alerts: dict[str, Any], **overrides: Any) -> bytes:
    base: dict[str, Any] = {
        "receiver": "stage-validation-auto-downgrade",
        "status": "firing",
        "alerts": list(alerts or (alert(),)),
        "groupLabels": {"alertname": "StageValidationRejectRatioHigh"},
        "commonLabels": {"alertname": "StageValidationRejectRatioHigh"},
        "commonAnnotations": {},
        "externalURL": AM_URL,
        "version": "4",
        "groupKey": GROUP_KEY,
        "truncatedAlerts": 0,
        "someFutureField": {"ignored": True},
    }
    base.update(overrides)
    return json.dumps(base).encode()


class Logs:
    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    def text(self) -> str:
        return self.stream.getvalue()

    def events(self, name: str) -> list[dict[str, Any]]:
        parsed = [json.loads(line) for line in self.text().splitlines() if line.strip()]
        return [event for event in parsed if event.get("event") == name]


@pytest.fixture
def logs() -> Iterator[Logs]:
    stream = io.StringIO()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    configure_logging("DEBUG", stream=stream, cache_loggers=False)
    try:
        yield Logs(stream)
    finally:
        structlog.reset_defaults()
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
        root.setLevel(level)


OpenClient = Callable[..., ApiClient]


@pytest.fixture
def open_client(database_url: str) -> Iterator[OpenClient]:
    """Opens app instances (think: workers) on one database; tokens configured unless overridden."""
    closers: list[Callable[[], None]] = []

    def opener(**overrides: Any) -> ApiClient:
        values: dict[str, Any] = {"stage_webhook_token": WEBHOOK_TOKEN, "admin_token": ADMIN_TOKEN}
        values.update(overrides)
        client, close = open_api_client(settings_for(database_url, **values))
        closers.append(close)
        return client

    yield opener
    for close in reversed(closers):
        close()


@pytest.fixture
def ops(open_client: OpenClient) -> ApiClient:
    return open_client()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_db_engine(database_url)
    yield engine
    engine.dispose()


def deliver(client: ApiClient, body: bytes, token: str | None = WEBHOOK_TOKEN, **headers: str) -> Any:
    sent = {"Content-Type": "application/json", **headers}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    return client.http.post(WEBHOOK, content=body, headers=sent)


def admin(client: ApiClient, method: str, token: str | None = ADMIN_TOKEN, **kwargs: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.http.request(method, MODE, headers=headers, **kwargs)


def sample(client: ApiClient, name: str, **labels: str) -> float:
    value = client.state.registry.get_sample_value(name, labels)
    return 0.0 if value is None else float(value)


def webhook_count(client: ApiClient, result: str) -> float:
    return sample(client, "fundmodel_stage_validation_webhook_requests_total", result=result)


def alertmanager_audit_rows(client: ApiClient) -> list[Any]:
    return [c for c in client.state.mode_store.audit_log(100) if c.source == "alertmanager"]


def test_firing_alert_downgrades_enforce_to_warn_with_audit_metrics_and_log(
    ops: ApiClient, logs: Logs
) -> None:
    ops.set_mode("enforce", 25.0)
    response = deliver(ops, payload())
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["result"] == "downgraded"
    assert result["previous"] == {
        "mode": "enforce",
        "canaryPercent": 25.0,
        "canaryClients": [],
        "aliasesRejected": False,
    }
    assert result["current"] == {
        "mode": "warn",
        "canaryPercent": 25.0,
        "canaryClients": [],
        "aliasesRejected": False,
    }
    # This worker applies it at once, without waiting for the refresher.
    assert ops.state.mode_store.current() == ModeState(ValidationMode.WARN, 25.0)
    assert ops.state.mode_store.read().state.mode is ValidationMode.WARN

    [row] = alertmanager_audit_rows(ops)
    assert row.audit_id == result["auditId"]
    assert (row.old.mode, row.new.mode, row.actor) == ("enforce", "warn", "alertmanager")
    assert "StageValidationRejectRatioHigh" in row.reason
    assert row.extra["alertName"] == "StageValidationRejectRatioHigh"
    assert row.extra["fingerprint"] == "1a30ba71cca2921f"
    assert row.extra["groupKey"] == GROUP_KEY
    assert row.extra["alertmanagerUrl"] == AM_URL
    assert len(row.extra["idempotencyKeys"]) == 1

    assert webhook_count(ops, "downgraded") == 1
    assert sample(ops, "fundmodel_stage_validation_mode_changes_total", source="alertmanager") == 1
    assert sample(ops, "fundmodel_stage_validation_mode", mode="warn") == 1
    assert sample(ops, "fundmodel_stage_validation_mode", mode="enforce") == 0
    [changed] = logs.events("stage_validation_mode_changed")
    assert (changed["old"], changed["new"], changed["source"]) == ("enforce", "warn", "alertmanager")
    assert changed["actor"] == "alertmanager"
    assert logs.events("stage_webhook_handled")[0]["result"] == "downgraded"
    # The stage-validation traffic of this worker is now lenient.
    assert (
        ops.request(
            "POST",
            "/api/portfolio/strategies",
            json={"name": "after", "stageAllocation": {"seed": 0.5, "moonshot": 0.5}},
        ).status_code
        == 201
    )


def test_a_redelivery_changes_nothing_on_any_worker(open_client: OpenClient) -> None:
    first_worker, second_worker = open_client(), open_client()
    first_worker.set_mode("enforce")
    assert deliver(first_worker, payload()).json()["result"] == "downgraded"
    # An operator re-enables enforce; Alertmanager then repeats the same notification to another worker.
    first_worker.set_mode("enforce")
    repeated = deliver(second_worker, payload())
    assert repeated.status_code == 200
    assert repeated.json()["result"] == "duplicate"
    assert second_worker.state.mode_store.read().state.mode is ValidationMode.ENFORCE
    assert webhook_count(second_worker, "duplicate") == 1
    assert len(alertmanager_audit_rows(first_worker)) == 1
    # A new episode of the alert (new startsAt) is a new delivery and acts again.
    again = deliver(second_worker, payload(alert(startsAt="2026-11-28T11:30:00Z")))
    assert again.json()["result"] == "downgraded"
    assert len(alertmanager_audit_rows(first_worker)) == 2


def delivery_rows(engine: Engine) -> list[tuple[str, str, int | None]]:
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT idempotency_key, result, audit_id FROM stage_webhook_deliveries")
        ).all()
    return [(str(row[0]), str(row[1]), row[2]) for row in rows]


@pytest.mark.parametrize("lenient", ["warn", "off"])
def test_a_repeat_of_a_delivery_that_changed_nothing_stays_a_duplicate(
    open_client: OpenClient, engine: Engine, lenient: str
) -> None:
    first_worker, second_worker = open_client(), open_client()
    first_worker.set_mode(lenient)
    assert deliver(first_worker, payload()).json()["result"] == "unchanged"
    # An operator promotes to enforce; Alertmanager's repeat of the same alert reaches another worker.
    first_worker.set_mode("enforce")
    repeated = deliver(second_worker, payload())
    assert repeated.status_code == 200
    assert repeated.json()["result"] == "duplicate"
    assert second_worker.state.mode_store.read().state.mode is ValidationMode.ENFORCE
    assert alertmanager_audit_rows(first_worker) == []
    [(key, result, audit_id)] = delivery_rows(engine)
    assert (len(key), result, audit_id) == (64, "unchanged", None)
    # A new episode of the alert still acts.
    again = deliver(second_worker, payload(alert(startsAt="2026-11-28T11:30:00Z")))
    assert again.json()["result"] == "downgraded"


def test_a_downgrade_records_its_delivery_keys_with_the_audit_row(ops: ApiClient, engine: Engine) -> None:
    ops.set_mode("enforce")
    two = payload(alert(), alert(fingerprint="2b40cb82ddb3a32e"))
    result = deliver(ops, two).json()
    assert result["result"] == "downgraded"
    rows = delivery_rows(engine)
    assert sorted(rows) == sorted((key, "downgraded", result["auditId"]) for key, _, _ in rows)
    [row] = alertmanager_audit_rows(ops)
    assert sorted(key for key, _, _ in rows) == sorted(row.extra["idempotencyKeys"])


def _break_delivery_writes(engine: Engine, statement: str = "INSERT") -> Callable[[], None]:
    """Make every ``statement`` (INSERT or UPDATE) on stage_webhook_deliveries fail inside the database,
    and undo it."""
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.execute(
                text(
                    f"CREATE TRIGGER fail_deliveries BEFORE {statement} ON stage_webhook_deliveries "
                    "BEGIN SELECT RAISE(ABORT, 'simulated disk failure'); END"
                )
            )
        else:
            connection.execute(
                text(
                    "CREATE FUNCTION fail_deliveries() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'simulated disk failure'; END $$"
                )
            )
            connection.execute(
                text(
                    f"CREATE TRIGGER fail_deliveries BEFORE {statement} ON stage_webhook_deliveries "
                    "FOR EACH ROW EXECUTE FUNCTION fail_deliveries()"
                )
            )

    def repair() -> None:
        with engine.begin() as connection:
            if engine.dialect.name == "sqlite":
                connection.execute(text("DROP TRIGGER fail_deliveries"))
            else:
                connection.execute(text("DROP TRIGGER fail_deliveries ON stage_webhook_deliveries"))
                connection.execute(text("DROP FUNCTION fail_deliveries()"))

    return repair


# INSERT fails before the mode write, UPDATE (marking the keys "downgraded") after it.
@pytest.mark.parametrize("failing_statement", ["INSERT", "UPDATE"])
def test_when_the_keys_cannot_be_recorded_nothing_changes_and_the_retry_applies(
    ops: ApiClient, engine: Engine, failing_statement: str
) -> None:
    ops.set_mode("enforce")
    repair = _break_delivery_writes(engine, failing_statement)
    try:
        failed = deliver(ops, payload())
    finally:
        repair()
    # Keys and downgrade are one transaction: a 503 leaves neither, so Alertmanager's retry is the
    # first delivery as far as the service can tell ...
    assert failed.status_code == 503, failed.text
    assert ops.state.mode_store.read().state.mode is ValidationMode.ENFORCE
    assert alertmanager_audit_rows(ops) == []
    assert delivery_rows(engine) == []
    assert webhook_count(ops, "store_error") == 1
    assert deliver(ops, payload()).json()["result"] == "downgraded"
    # ... and remembered with it, so a later repeat is inert even under enforce again.
    ops.set_mode("enforce")
    assert deliver(ops, payload()).json()["result"] == "duplicate"
    assert ops.state.mode_store.read().state.mode is ValidationMode.ENFORCE
    [downgrade] = alertmanager_audit_rows(ops)
    assert [(result, audit_id) for _key, result, audit_id in delivery_rows(engine)] == [
        ("downgraded", downgrade.audit_id)
    ]


@pytest.mark.parametrize("mode", ["warn", "off"])
def test_never_raises_strictness(ops: ApiClient, mode: str) -> None:
    ops.set_mode(mode)
    response = deliver(ops, payload())
    assert response.status_code == 200
    assert response.json()["result"] == "unchanged"
    assert ops.state.mode_store.read().state.mode.value == mode
    assert alertmanager_audit_rows(ops) == []
    assert webhook_count(ops, "unchanged") == 1


def test_resolved_and_unlabelled_alerts_are_ignored(ops: ApiClient) -> None:
    ops.set_mode("enforce")
    resolved = payload(alert(status="resolved", endsAt="2026-11-28T10:20:00Z"), status="resolved")
    unlabelled = payload(alert(labels={"alertname": "StageValidationLatencyP99High"}))
    for body in (resolved, unlabelled):
        response = deliver(ops, body)
        assert response.status_code == 200
        assert response.json()["result"] == "ignored"
    assert ops.state.mode_store.read().state.mode is ValidationMode.ENFORCE
    assert webhook_count(ops, "ignored") == 2


@SQLITE_ONLY
def test_configured_label_filter(open_client: OpenClient) -> None:
    client = open_client(stage_webhook_label_filter='team="stages"')
    client.set_mode("enforce")
    assert deliver(client, payload()).json()["result"] == "ignored"
    labelled = payload(alert(labels={"alertname": "Custom", "team": "stages"}))
    assert deliver(client, labelled).json()["result"] == "downgraded"


@SQLITE_ONLY
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer " + "x" * 48},
        {"Authorization": f"Basic {WEBHOOK_TOKEN}"},
        {"Authorization": f"Bearer {WEBHOOK_TOKEN}", SIGNATURE_HEADER: "sha256=" + "0" * 64},
    ],
    ids=["missing", "wrong-token", "wrong-scheme", "bad-signature"],
)
def test_unauthenticated_deliveries_are_401_and_never_logged_with_the_token(
    ops: ApiClient, logs: Logs, headers: dict[str, str]
) -> None:
    ops.set_mode("enforce")
    response = ops.http.post(WEBHOOK, content=payload(), headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == "UNAUTHENTICATED"
    assert response.headers["content-type"] == "application/problem+json"
    assert ops.state.mode_store.read().state.mode is ValidationMode.ENFORCE
    assert webhook_count(ops, "unauthorized") == 1
    assert logs.events("stage_webhook_unauthorized")
    assert WEBHOOK_TOKEN not in logs.text()
    assert "x" * 48 not in logs.text()


@SQLITE_ONLY
def test_a_valid_body_signature_is_accepted(ops: ApiClient) -> None:
    ops.set_mode("enforce")
    body = payload()
    signature = body_signature(body, SecretToken(WEBHOOK_TOKEN, "test"))
    response = deliver(ops, body, **{SIGNATURE_HEADER: signature})
    assert response.json()["result"] == "downgraded"


@SQLITE_ONLY
@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[]", payload(version="3"), payload(alert(fingerprint="")), b""],
    ids=["not-json", "array", "version-3", "empty-fingerprint", "empty"],
)
def test_malformed_bodies_are_400(ops: ApiClient, body: bytes) -> None:
    ops.set_mode("enforce")
    response = deliver(ops, body)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "INVALID_WEBHOOK_PAYLOAD"
    assert ops.state.mode_store.read().state.mode is ValidationMode.ENFORCE
    assert webhook_count(ops, "malformed") == 1


@SQLITE_ONLY
def test_an_oversized_body_is_400(ops: ApiClient) -> None:
    response = deliver(ops, b" " * (1024 * 1024 + 10))
    assert response.status_code == 400
    assert "exceeds" in response.json()["detail"]


@SQLITE_ONLY
@pytest.mark.parametrize(
    "overrides",
    [{"stage_webhook_token": None}, {"stage_webhook_token": "short"}],
    ids=["unset", "too-short"],
)
def test_without_a_usable_token_the_webhook_is_503_and_logs_why(
    open_client: OpenClient, logs: Logs, overrides: dict[str, Any]
) -> None:
    client = open_client(**overrides)
    client.set_mode("enforce")
    response = deliver(client, payload())
    assert response.status_code == 503
    assert response.json()["code"] == "NOT_CONFIGURED"
    assert client.state.mode_store.read().state.mode is ValidationMode.ENFORCE
    assert webhook_count(client, "unconfigured") == 1
    reasons = logs.events("ops_token_not_configured") + logs.events("ops_token_invalid")
    assert reasons
    assert "STAGE_WEBHOOK_TOKEN" in reasons[0]["detail"]


@SQLITE_ONLY
def test_token_from_a_file(open_client: OpenClient, tmp_path: Any) -> None:
    token_file = tmp_path / "webhook-token"
    token_file.write_text(WEBHOOK_TOKEN + "\n", encoding="utf-8")
    client = open_client(stage_webhook_token=None, stage_webhook_token_file=token_file)
    client.set_mode("enforce")
    assert deliver(client, payload()).json()["result"] == "downgraded"


def _break_audit_writes(engine: Engine) -> Callable[[], None]:
    """Make every audit insert fail inside the database (a real store write failure), and undo it."""
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.execute(
                text(
                    "CREATE TRIGGER fail_audit BEFORE INSERT ON stage_validation_audit "
                    "BEGIN SELECT RAISE(ABORT, 'simulated disk failure'); END"
                )
            )
        else:
            connection.execute(
                text(
                    "CREATE FUNCTION fail_audit() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'simulated disk failure'; END $$"
                )
            )
            connection.execute(
                text(
                    "CREATE TRIGGER fail_audit BEFORE INSERT ON stage_validation_audit "
                    "FOR EACH ROW EXECUTE FUNCTION fail_audit()"
                )
            )

    def repair() -> None:
        with engine.begin() as connection:
            if engine.dialect.name == "sqlite":
                connection.execute(text("DROP TRIGGER fail_audit"))
            else:
                connection.execute(text("DROP TRIGGER fail_audit ON stage_validation_audit"))
                connection.execute(text("DROP FUNCTION fail_audit()"))

    return repair


def test_a_failed_store_write_is_5xx_and_the_retry_applies(ops: ApiClient, engine: Engine) -> None:
    ops.set_mode("enforce")
    repair = _break_audit_writes(engine)
    try:
        failed = deliver(ops, payload())
    finally:
        repair()
    assert failed.status_code == 503, failed.text
    assert failed.json()["code"] == "STORE_UNAVAILABLE"
    assert webhook_count(ops, "store_error") == 1
    assert ops.state.mode_store.read().state.mode is ValidationMode.ENFORCE  # rolled back
    # Alertmanager retries the same notification: it is not a "duplicate", it applies now.
    retried = deliver(ops, payload())
    assert retried.json()["result"] == "downgraded"


# Copies of one notification sent at once, spread over two app instances (think: workers) on one
# database; 500 is the burst the review measured. Each instance serves them on its own thread pool.
CONCURRENT_COPIES = 500


@pytest.mark.parametrize(("mode", "acting_result"), [("enforce", "downgraded"), ("warn", "unchanged")])
def test_concurrent_copies_of_a_delivery_are_answered_exactly_once(
    open_client: OpenClient, engine: Engine, mode: str, acting_result: str
) -> None:
    workers = [open_client(), open_client()]
    workers[0].set_mode(mode)
    results: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(CONCURRENT_COPIES)

    def send(client: ApiClient) -> None:
        start.wait()
        response = deliver(client, payload())
        with lock:
            results.append(f"{response.status_code}:{response.json().get('result')}")

    threads = [threading.Thread(target=send, args=(workers[i % 2],)) for i in range(CONCURRENT_COPIES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(f"200:{acting_result}") == 1, sorted(set(results))
    assert results.count("200:duplicate") == CONCURRENT_COPIES - 1, sorted(set(results))
    # The metric agrees with the answers, summed over the workers.
    for result, expected in ((acting_result, 1), ("duplicate", CONCURRENT_COPIES - 1)):
        assert sum(webhook_count(worker, result) for worker in workers) == expected
    downgrades = alertmanager_audit_rows(workers[0])
    assert len(downgrades) == (1 if acting_result == "downgraded" else 0)
    [(_key, recorded, audit_id)] = delivery_rows(engine)
    assert (recorded, audit_id) == (acting_result, downgrades[0].audit_id if downgrades else None)


# --- the operators' mode API --------------------------------------------------------------------


@SQLITE_ONLY
@pytest.mark.parametrize("token", [None, "y" * 40, WEBHOOK_TOKEN], ids=["missing", "wrong", "webhook"])
def test_mode_api_requires_the_admin_token(ops: ApiClient, token: str | None) -> None:
    assert admin(ops, "GET", token=token).status_code == 401
    body = {"mode": "off", "actor": "x", "reason": "y"}
    assert admin(ops, "PUT", token=token, json=body).status_code == 401
    assert ops.state.mode_store.read().version == 0


@SQLITE_ONLY
def test_mode_api_without_admin_token_is_503(open_client: OpenClient) -> None:
    client = open_client(admin_token=None)
    response = admin(client, "GET")
    assert response.status_code == 503
    assert response.json()["code"] == "NOT_CONFIGURED"


def test_get_reports_store_worker_and_recent_changes(ops: ApiClient) -> None:
    initial = admin(ops, "GET").json()
    assert initial["mode"] == "warn"
    assert initial["source"] == "default"
    assert initial["recentChanges"] == []
    ops.set_mode("enforce", 10.0)
    status = admin(ops, "GET").json()
    assert (status["mode"], status["canaryPercent"], status["source"]) == ("enforce", 10.0, "store")
    assert status["worker"]["pid"] == os.getpid()
    assert status["worker"]["mode"] == "enforce"
    assert 0 <= status["worker"]["cacheAgeSeconds"] < 60
    [change] = status["recentChanges"]
    assert change["current"] == {
        "mode": "enforce",
        "canaryPercent": 10.0,
        "canaryClients": [],
        "aliasesRejected": False,
    }
    assert change["actor"] == "pytest"


def test_put_changes_the_mode_with_a_manual_audit_row(ops: ApiClient, logs: Logs) -> None:
    body = {"mode": "enforce", "canaryPercent": 5, "actor": "alice", "reason": "canary step 1"}
    response = admin(ops, "PUT", json=body)
    assert response.status_code == 200, response.text
    change = response.json()
    assert change["previous"] == {
        "mode": "warn",
        "canaryPercent": 100.0,
        "canaryClients": [],
        "aliasesRejected": False,
    }
    assert change["current"] == {
        "mode": "enforce",
        "canaryPercent": 5.0,
        "canaryClients": [],
        "aliasesRejected": False,
    }
    assert (change["source"], change["actor"], change["reason"]) == ("manual", "alice", "canary step 1")
    assert ops.state.mode_store.current() == ModeState(ValidationMode.ENFORCE, 5.0)
    [row] = ops.state.mode_store.audit_log(10)
    assert (row.source, row.actor, row.audit_id) == ("manual", "alice", change["id"])
    assert sample(ops, "fundmodel_stage_validation_mode_changes_total", source="manual") == 1
    [logged] = logs.events("stage_validation_mode_changed")
    assert (logged["actor"], logged["reason"], logged["new"]) == ("alice", "canary step 1", "enforce")


@SQLITE_ONLY
@pytest.mark.parametrize(
    "body",
    [
        {"mode": "strict", "actor": "a", "reason": "r"},
        {"mode": "enforce", "canaryPercent": 101, "actor": "a", "reason": "r"},
        {"mode": "enforce", "reason": "r"},
        {"mode": "enforce", "actor": "a", "reason": ""},
    ],
    ids=["unknown-mode", "canary-over-100", "no-actor", "empty-reason"],
)
def test_put_rejects_invalid_bodies(ops: ApiClient, body: dict[str, Any]) -> None:
    response = admin(ops, "PUT", json=body)
    assert response.status_code == 422
    assert ops.state.mode_store.read().version == 0


def test_put_is_refused_in_production_unless_allowed(open_client: OpenClient) -> None:
    body = {"mode": "enforce", "actor": "alice", "reason": "try"}
    production = open_client(app_env="production")
    refused = admin(production, "PUT", json=body)
    assert refused.status_code == 403
    assert refused.json()["code"] == "MODE_CHANGE_FORBIDDEN"
    assert production.state.mode_store.read().version == 0
    assert admin(production, "GET").status_code == 200  # reading stays allowed
    allowed = open_client(app_env="production", allow_production_mode_put=True)
    assert admin(allowed, "PUT", json=body).status_code == 200
    assert allowed.state.mode_store.read().state.mode is ValidationMode.ENFORCE


@SQLITE_ONLY
def test_the_webhook_still_works_in_production(open_client: OpenClient) -> None:
    production = open_client(app_env="production")
    production.set_mode("enforce")
    assert deliver(production, payload()).json()["result"] == "downgraded"


def test_put_names_canary_clients_and_get_shows_them(ops: ApiClient) -> None:
    with ops.state.engine.connect() as connection:
        name = connection.exec_driver_sql("SELECT name FROM api_keys").scalar_one()
    body = {
        "mode": "enforce",
        "canaryPercent": 0,
        "actor": "alice",
        "reason": "named",
        "canaryClients": ["nobody"],
    }
    refused = admin(ops, "PUT", json=body)
    assert refused.status_code == 422, refused.text
    assert "unknown canary client 'nobody'" in refused.json()["detail"]
    assert admin(ops, "GET").json()["version"] == 0  # nothing written
    written = admin(ops, "PUT", json={**body, "canaryClients": [name]})
    assert written.status_code == 200, written.text
    assert written.json()["current"]["canaryClients"] == [name]
    status = admin(ops, "GET").json()
    assert status["canaryClients"] == [name]
    assert status["worker"]["canaryClients"] == [name]
    assert status["recentChanges"][0]["current"]["canaryClients"] == [name]
    # At 0 % the named client (this API client) is enforced: an unknown stage is a 400.
    strategy = {"name": "c", "stageAllocation": {"seed": 0.5, "mezzanine": 0.5}}
    rejected = ops.request("POST", "/api/portfolio/strategies", json=strategy)
    assert (rejected.status_code, rejected.headers["x-stage-validation-mode"]) == (400, "enforce")
