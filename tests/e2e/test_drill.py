"""The auto-downgrade drill: the real service, real Prometheus, real Alertmanager, real PostgreSQL.

``fundmodel serve --workers 2`` (gunicorn + uvicorn workers, multi-process metrics) runs on a scratch
PostgreSQL database; Prometheus scrapes it with the shipped rules (test-sized intervals and ``for:``),
Alertmanager routes the downgrade alert to the webhook with a bearer token file. The mode is set to
enforce with the CLI, traffic with mostly unknown stages is driven at the service, and the test waits
until every worker applies warn again. It measures first rejected request -> audited downgrade and
-> every worker lenient, prints both and records them (``record_property`` and
``var/e2e/auto-downgrade-drill.json``). Loopback only; bounded by DRILL_TIMEOUT_SECONDS.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from fundmodel.auth.service import create_key
from fundmodel.db.engine import create_db_engine
from fundmodel.db.migrate import upgrade_to_head
from tests.api.servers import ManagedProcess, free_port, wait_until_ready

from .harness import (
    ROOT,
    ObservabilityStack,
    alertmanager_binary,
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

PG_HOST = os.environ.get("FUNDMODEL_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("FUNDMODEL_TEST_PG_PORT", "5432"))
WEBHOOK_PATH = "/_ops/stage-validation/auto-downgrade"
MODE_PATH = "/_ops/stage-validation/mode"
STRATEGIES = "/api/portfolio/strategies"
WORKERS = 2
TARGET_SECONDS = 60.0  # issue 5: first rejection -> warn everywhere, with test-sized intervals
DRILL_TIMEOUT_SECONDS = 90.0
SERVER_READY_SECONDS = 90.0
GRACEFUL_STOP_SECONDS = 30.0
RESULT_FILE = ROOT / "var" / "e2e" / "auto-downgrade-drill.json"
FUNDMODEL = [str(Path(sys.executable).with_name("fundmodel"))]


@pytest.fixture
def drill_database() -> Iterator[str]:
    """A scratch PostgreSQL database (created, migrated, dropped); skips when no server answers."""
    admin = f"host={PG_HOST} port={PG_PORT} user=postgres dbname=postgres connect_timeout=3"
    try:
        connection = psycopg.connect(admin, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_HOST}:{PG_PORT}: {str(exc).strip()[:120]}")
    name = f"fm_drill_{uuid.uuid4().hex[:10]}"
    with connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/{name}"
    try:
        engine = create_db_engine(url)
        try:
            upgrade_to_head(engine)
        finally:
            engine.dispose()
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Service:
    """The running ``fundmodel serve --workers 2``."""

    process: ManagedProcess
    base_url: str
    api_key: str
    admin_token: str
    env: dict[str, str]

    def worker_pids(self) -> set[int]:
        """The gunicorn master's children (Linux ``/proc``)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return {int(pid) for pid in children.read_text().split()} if children.exists() else set()

    def worker_view(self) -> dict[str, Any]:
        """GET the mode on a fresh connection (so both workers get asked); the body has the pid."""
        response = httpx.get(
            f"{self.base_url}{MODE_PATH}",
            params={"limit": 5},
            headers={"Authorization": f"Bearer {self.admin_token}", "Connection": "close"},
            timeout=5.0,
        )
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def every_worker_applies(self, mode: str, *, attempts: int = 60) -> dict[int, str] | None:
        """Ask until every worker pid answered; their applied modes when all apply ``mode``."""
        expected = self.worker_pids()
        seen: dict[int, str] = {}
        for _ in range(attempts):
            view = self.worker_view()
            seen[view["worker"]["pid"]] = view["worker"]["mode"]
            if len(seen) >= WORKERS and (not expected or expected <= seen.keys()):
                break
        if len(seen) < WORKERS or any(applied != mode for applied in seen.values()):
            return None
        return seen

    def metrics_text(self) -> str:
        return httpx.get(f"{self.base_url}/metrics", timeout=5.0).text

    def metrics(self) -> dict[str, float]:
        samples: dict[str, float] = {}
        for line in self.metrics_text().splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                samples[name] = float(value)
        return samples


@pytest.fixture
def service(tmp_path: Path, drill_database: str) -> Iterator[tuple[Service, Path]]:
    webhook_token = "drill-webhook-" + uuid.uuid4().hex + uuid.uuid4().hex
    admin_token = "drill-admin-" + uuid.uuid4().hex + uuid.uuid4().hex
    webhook_token_file = tmp_path / "stage-webhook-token"
    admin_token_file = tmp_path / "admin-token"
    for path, secret in ((webhook_token_file, webhook_token), (admin_token_file, admin_token)):
        path.write_text(secret + "\n", encoding="utf-8")
        path.chmod(0o600)
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("STAGE_", "ADMIN_TOKEN", "PROMETHEUS_", "DATABASE_URL", "APP_ENV"))
    }
    # PROMETHEUS_MULTIPROC_DIR left unset on purpose: `serve --workers 2` must then use its own.
    env = {
        **inherited,
        "DATABASE_URL": drill_database,
        "APP_ENV": "production",
        "STAGE_VALIDATION_MODE": "warn",
        "STAGE_WEBHOOK_TOKEN_FILE": str(webhook_token_file),
        "ADMIN_TOKEN_FILE": str(admin_token_file),
        "LOG_LEVEL": "INFO",
    }
    engine = create_db_engine(drill_database)
    try:
        api_key = create_key(engine, "e2e-drill").secret
    finally:
        engine.dispose()
    port = free_port()
    argv = [*FUNDMODEL, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(WORKERS)]
    process = ManagedProcess("fundmodel-serve", argv, tmp_path / "service.log", tmp_path, env=env)
    running = Service(process, f"http://127.0.0.1:{port}", api_key, admin_token, env)
    try:
        wait_until_ready(
            process,
            f"{running.base_url}/readyz",
            timeout=SERVER_READY_SECONDS,
            interval=0.5,
            also=lambda: len(running.worker_pids()) == WORKERS,
        )
        yield running, webhook_token_file
    finally:
        # The gunicorn master shuts its workers down gracefully on SIGTERM; give it the time to.
        process.stop(grace_seconds=GRACEFUL_STOP_SECONDS)


@dataclass
class Traffic:
    """Strategy creations with mostly unknown stages, on fresh connections (spread over the workers)."""

    base_url: str
    api_key: str
    unknown_share: int = 4  # 4 of every 5 requests carry an unknown stage
    stop: threading.Event = field(default_factory=threading.Event)
    responses: list[tuple[float, int, str | None]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    first_rejected_at: float | None = None

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.api_key}", "Connection": "close"}
        number = 0
        with httpx.Client(base_url=self.base_url, headers=headers, timeout=10.0) as client:
            while not self.stop.is_set():
                number += 1
                allocation = (
                    {"seed": 0.5, "moonshot stage": 0.5}
                    if number % 5 < self.unknown_share
                    else {"seed": 0.5, "growth": 0.5}
                )
                body = {"name": f"drill-{number}", "stageAllocation": allocation}
                try:
                    response = client.post(STRATEGIES, json=body)
                except httpx.HTTPError as exc:
                    self.errors.append(repr(exc))
                    continue
                now = time.time()
                if response.status_code == 400 and self.first_rejected_at is None:
                    self.first_rejected_at = now
                mode = response.headers.get("X-Stage-Validation-Mode")
                self.responses.append((now, response.status_code, mode))
                self.stop.wait(0.02)


def _run_cli(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(
        [*FUNDMODEL, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"fundmodel {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _background(target: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def test_enforce_returns_to_warn_on_every_worker_by_itself(
    tmp_path: Path, service: tuple[Service, Path], record_property: Callable[[str, object], None]
) -> None:
    running, webhook_token_file = service
    target = running.base_url.removeprefix("http://")
    with ObservabilityStack(
        tmp_path / "stack",
        scrape_targets=[target],
        webhook_url=f"{running.base_url}{WEBHOOK_PATH}",
        webhook_token_file=webhook_token_file,
    ) as stack:
        assert wait_until(stack.prometheus.targets_up, timeout=30), stack.logs()

        _run_cli(
            [
                "mode",
                "set",
                "enforce",
                "--actor",
                "e2e-drill",
                "--reason",
                "drill: enforce, then break clients",
            ],
            running.env,
        )
        enforcing = wait_until(lambda: running.every_worker_applies("enforce"), timeout=15)
        assert enforcing, "the workers never applied enforce"

        traffic = Traffic(running.base_url, running.api_key)
        thread = _background(traffic.run)
        try:
            everywhere_warn = wait_until(
                lambda: traffic.first_rejected_at is not None and running.every_worker_applies("warn"),
                timeout=DRILL_TIMEOUT_SECONDS,
                interval=0.1,
            )
            all_warn_at = time.time()
            assert everywhere_warn, (
                f"still enforcing {DRILL_TIMEOUT_SECONDS}s after the traffic started; "
                f"{len(traffic.responses)} responses, errors={traffic.errors[:3]}\n"
                f"{stack.logs()}\n--- service ---\n{running.process.tail(60)}"
            )
            # A little more traffic, all of it after every worker applied warn.
            time.sleep(1.0)
        finally:
            traffic.stop.set()
            thread.join(timeout=15)

        status = running.worker_view()
        [downgrade] = [c for c in status["recentChanges"] if c["source"] == "alertmanager"]
        downgraded_at = datetime.fromisoformat(downgrade["changedAt"]).timestamp()
        first_rejected_at = traffic.first_rejected_at
        assert first_rejected_at is not None
        to_audit = downgraded_at - first_rejected_at
        to_everywhere = all_warn_at - first_rejected_at
        rejected = sum(1 for _, code, _ in traffic.responses if code == 400)
        measurement = {
            "firstRejectedToDowngradeSeconds": round(to_audit, 2),
            "firstRejectedToEveryWorkerWarnSeconds": round(to_everywhere, 2),
            "rejectedRequests": rejected,
            "requests": len(traffic.responses),
            "workers": sorted(everywhere_warn),
            "settings": "scrape/eval 1s, for 1s, group_wait 1s, mode cache TTL 2s",
            "targetSeconds": TARGET_SECONDS,
        }
        RESULT_FILE.parent.mkdir(parents=True, exist_ok=True)
        RESULT_FILE.write_text(json.dumps(measurement, indent=2) + "\n", encoding="utf-8")
        for key, value in measurement.items():
            record_property(key, value)
        print(f"\nauto-downgrade drill: {json.dumps(measurement)}")

        # The downgrade: audited as Alertmanager's, with what the runbook needs.
        assert (status["mode"], downgrade["previous"]["mode"], downgrade["current"]["mode"]) == (
            "warn",
            "enforce",
            "warn",
        )
        assert downgrade["extra"]["alertName"] == "StageValidationRejectRatioHigh"
        assert downgrade["extra"]["fingerprint"]
        assert downgrade["extra"]["groupKey"]
        assert downgrade["extra"]["alertmanagerUrl"].startswith("http://")
        assert to_audit < to_everywhere + 0.5
        assert to_everywhere < TARGET_SECONDS, measurement

        # Enforcement really hurt clients before, and stopped afterwards on every response.
        assert rejected >= 1
        after = [(code, mode) for at, code, mode in traffic.responses if at > all_warn_at]
        assert after, "no traffic after the downgrade"
        assert all(code == 201 and mode == "warn" for code, mode in after), after[:10]

        # Prometheus' view (multi-process metrics summed over the workers) agrees. Mode changes by source
        # are read from the audit table and cached per worker for the mode-cache TTL (2 s), so a scrape
        # served by the other worker may lag by up to that long.
        changes_key = 'fundmodel_stage_validation_mode_changes_total{source="alertmanager"}'
        assert wait_until(lambda: running.metrics().get(changes_key) == 1.0, timeout=10), running.metrics()
        samples = running.metrics()
        assert samples['fundmodel_stage_validation_mode{mode="enforce"}'] == 0.0
        assert samples['fundmodel_stage_validation_mode{mode="warn"}'] == 1.0
        assert samples['fundmodel_stage_validation_mode_changes_total{source="alertmanager"}'] == 1.0
        assert samples['fundmodel_stage_validation_webhook_requests_total{result="downgraded"}'] == 1.0
        rejected_total = sum(
            value
            for name, value in samples.items()
            if name.startswith("fundmodel_stage_validations_total{") and 'outcome="rejected"' in name
        )
        assert rejected_total == rejected

        promtool = shutil.which("promtool")
        if promtool is not None:  # installed with prometheus, which this test needs anyway
            checked = subprocess.run(
                [promtool, "check", "metrics"],
                input=running.metrics_text(),
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            assert checked.returncode == 0, checked.stdout + checked.stderr

        # The CLI reads the same store.
        stored = json.loads(_run_cli(["mode", "get", "--json"], running.env))
        assert stored["mode"] == "warn"
