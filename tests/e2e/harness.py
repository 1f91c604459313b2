"""Real Prometheus and Alertmanager for end-to-end tests, on free loopback ports, torn down reliably.

Test-sized timing: scrape and rule evaluation every second, alert ``for:`` durations shortened in a
templated copy of the shipped rules, Alertmanager's waits cut to a second. The shipped files in
``deploy/`` are the source: the copies change timing, targets and the webhook URL/credentials only.

Usage::

    with ObservabilityStack(workdir, scrape_targets=["127.0.0.1:8123"],
                            webhook_url="http://127.0.0.1:8124/_ops/stage-validation/auto-downgrade",
                            webhook_token_file=token_path) as stack:
        stack.prometheus.query("up")

Processes are started, awaited and stopped by the one launcher, ``tests/api/servers.py`` (own session,
stopped by pid: terminate, then kill after a grace period); their output goes to log files in
``workdir`` that :meth:`ManagedProcess.tail` returns for assertion messages.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from tests.api.servers import ManagedProcess, ServerNotReadyError, free_port, wait_until_ready

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_RULES = ROOT / "deploy" / "prometheus" / "rules" / "stage-validation.yml"
SHIPPED_ALERTMANAGER = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
DOWNGRADE_RECEIVER = "stage-validation-auto-downgrade"

READY_TIMEOUT_SECONDS = 30.0


class HarnessError(RuntimeError):
    """A process of the harness could not be started or did not become ready."""


def find_binary(*names: str) -> str | None:
    """The first of ``names`` found on PATH (Debian names Alertmanager ``prometheus-alertmanager``)."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


def prometheus_binary() -> str | None:
    return find_binary("prometheus")


def alertmanager_binary() -> str | None:
    return find_binary("alertmanager", "prometheus-alertmanager")


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, method="GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def render_rules(
    destination: Path,
    *,
    source: Path = SHIPPED_RULES,
    for_duration: str = "1s",
    for_overrides: dict[str, str] | None = None,
) -> Path:
    """A copy of the rules with every alert's ``for:`` set to ``for_duration`` (or an override)."""
    document = yaml.safe_load(source.read_text(encoding="utf-8"))
    overrides = for_overrides or {}
    for group in document["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                rule["for"] = overrides.get(rule["alert"], for_duration)
    destination.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return destination


def render_alertmanager_config(
    destination: Path,
    *,
    webhook_url: str,
    webhook_token_file: Path,
    source: Path = SHIPPED_ALERTMANAGER,
    wait: str = "1s",
) -> Path:
    """A copy of the Alertmanager config pointing the downgrade receiver at ``webhook_url``."""
    document = yaml.safe_load(source.read_text(encoding="utf-8"))
    found = False
    for receiver in document["receivers"]:
        if receiver["name"] == DOWNGRADE_RECEIVER:
            for webhook in receiver["webhook_configs"]:
                webhook["url"] = webhook_url
                webhook["http_config"]["authorization"]["credentials_file"] = str(webhook_token_file)
                found = True
    if not found:
        raise HarnessError(f"{source} has no {DOWNGRADE_RECEIVER} webhook receiver")
    routes = [document["route"], *document["route"].get("routes", [])]
    for route in routes:
        route["group_wait"] = wait
        route["group_interval"] = wait
    destination.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return destination


class _Server:
    """Shared behaviour of Prometheus and Alertmanager: start, wait for /-/ready, stop."""

    name = "server"

    def __init__(self, workdir: Path, port: int) -> None:
        self.workdir = workdir
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.process: ManagedProcess | None = None

    def _argv(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = ManagedProcess(
            self.name, self._argv(), self.workdir / f"{self.name}.log", self.workdir
        )
        try:
            wait_until_ready(self.process, f"{self.url}/-/ready", timeout=READY_TIMEOUT_SECONDS)
        except ServerNotReadyError as exc:
            self.stop()
            raise HarnessError(str(exc)) from None

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def logs(self) -> str:
        return "" if self.process is None else self.process.tail()

    def get_json(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        status, body = http_get(f"{self.url}{path}{query}")
        if status != 200:
            raise HarnessError(f"{self.name} GET {path} -> {status}: {body[:500]!r}")
        return json.loads(body)


class PrometheusServer(_Server):
    name = "prometheus"

    def __init__(
        self,
        workdir: Path,
        *,
        scrape_targets: Sequence[str],
        alertmanager_url: str | None,
        rules: Path,
        port: int | None = None,
        interval: str = "1s",
    ) -> None:
        super().__init__(workdir, port or free_port())
        self.config_path = workdir / "prometheus.yml"
        workdir.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {
            "global": {
                "scrape_interval": interval,
                "evaluation_interval": interval,
                "scrape_timeout": interval,
            },
            "rule_files": [str(rules)],
            "scrape_configs": [
                {
                    "job_name": "fundmodel",
                    "metrics_path": "/metrics",
                    "static_configs": [{"targets": list(scrape_targets)}],
                }
            ],
        }
        if alertmanager_url is not None:
            host = urllib.parse.urlsplit(alertmanager_url).netloc
            config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [host]}]}]}
            config["scrape_configs"].append(
                {"job_name": "alertmanager", "static_configs": [{"targets": [host]}]}
            )
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")

    def _argv(self) -> list[str]:
        binary = prometheus_binary()
        if binary is None:
            raise HarnessError("prometheus is not installed")
        return [
            binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--rules.alert.resend-delay=1s",
            "--log.level=warn",
        ]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query; the result vector."""
        payload = self.get_json("/api/v1/query", query=expr)
        return list(payload["data"]["result"])

    def alerts(self) -> list[dict[str, Any]]:
        """Pending and firing alerts as Prometheus sees them."""
        return list(self.get_json("/api/v1/alerts")["data"]["alerts"])

    def targets_up(self) -> bool:
        active = self.get_json("/api/v1/targets")["data"]["activeTargets"]
        fundmodel = [t for t in active if t["labels"].get("job") == "fundmodel"]
        return bool(fundmodel) and all(t["health"] == "up" for t in fundmodel)


class AlertmanagerServer(_Server):
    name = "alertmanager"

    def __init__(
        self,
        workdir: Path,
        *,
        webhook_url: str,
        webhook_token_file: Path,
        port: int | None = None,
        wait: str = "1s",
    ) -> None:
        super().__init__(workdir, port or free_port())
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = render_alertmanager_config(
            workdir / "alertmanager.yml",
            webhook_url=webhook_url,
            webhook_token_file=webhook_token_file,
            wait=wait,
        )

    def _argv(self) -> list[str]:
        binary = alertmanager_binary()
        if binary is None:
            raise HarnessError("alertmanager is not installed")
        return [
            binary,
            f"--config.file={self.config_path}",
            f"--storage.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",  # no gossip port: a single, loopback-only instance
            "--log.level=warn",
        ]

    def alerts(self) -> list[dict[str, Any]]:
        return list(self.get_json("/api/v2/alerts"))


class ObservabilityStack:
    """Alertmanager + Prometheus with the shipped (test-timed) configuration; a context manager."""

    def __init__(
        self,
        workdir: Path,
        *,
        scrape_targets: Sequence[str],
        webhook_url: str,
        webhook_token_file: Path,
        for_duration: str = "1s",
        for_overrides: dict[str, str] | None = None,
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        rules = render_rules(
            workdir / "stage-validation.rules.yml",
            for_duration=for_duration,
            for_overrides=for_overrides,
        )
        self.alertmanager = AlertmanagerServer(
            workdir / "alertmanager",
            webhook_url=webhook_url,
            webhook_token_file=webhook_token_file,
        )
        self.prometheus = PrometheusServer(
            workdir / "prometheus",
            scrape_targets=scrape_targets,
            alertmanager_url=self.alertmanager.url,
            rules=rules,
        )

    def start(self) -> None:
        try:
            self.alertmanager.start()
            self.prometheus.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        # Prometheus first so it does not log delivery failures to a stopped Alertmanager.
        for server in (self.prometheus, self.alertmanager):
            with contextlib.suppress(Exception):
                server.stop()

    def logs(self) -> str:
        return (
            f"--- prometheus ---\n{self.prometheus.logs()}\n--- alertmanager ---\n{self.alertmanager.logs()}"
        )

    def __enter__(self) -> ObservabilityStack:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def wait_until(predicate: Any, *, timeout: float, interval: float = 0.2) -> Any:
    """Poll ``predicate`` until it returns a truthy value (returned) or ``timeout`` passes (None)."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


@contextlib.contextmanager
def observability_stack(workdir: Path, **kwargs: Any) -> Iterator[ObservabilityStack]:
    """Function form of :class:`ObservabilityStack` for ``with`` statements and fixtures."""
    stack = ObservabilityStack(workdir, **kwargs)
    with stack:
        yield stack
