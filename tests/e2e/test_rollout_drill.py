"""The rollout drill of issue 16: seven client applications walk the whole ladder without ``--force``
and without SQL.

``fundmodel serve --workers 2`` on a scratch PostgreSQL database, real Prometheus scraping it every
second, and seven API clients with steady traffic: three still send a legacy spelling (a deprecated alias),
four send canonical stages. From a fresh store: ``rollout status`` records the first-run state (warn, with a
"since"), the warn gates pass on a verified backup, the canary steps enforce two **named** clients first
(a hash percentage alone may hold none of seven), the Sunset step is blocked while aliases are sent, and
after the alias senders are fixed ``rollout reset-observation`` lets it pass: "complete" then means an alias
is answered 400. Gate windows are test-sized through a gates file; the gates themselves are the real ones.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from fundmodel.auth.service import create_key
from fundmodel.db.engine import create_db_engine
from tests.e2e.test_drill import (  # the drill's real service and scratch database
    FUNDMODEL,
    WEBHOOK_PATH,
    Service,
    drill_database,  # noqa: F401 (a fixture the service fixture needs)
    pytestmark,  # noqa: F401 (the same skip conditions)
    service,  # noqa: F401 (a fixture, taken by name in `clients`)
)

from .harness import ObservabilityStack, wait_until

STRATEGIES = "/api/portfolio/strategies"
ALIAS_SENDERS = ("legacy-crm", "legacy-sheet", "legacy-bi")
CANONICAL_SENDERS = ("portal", "reporting", "lp-export", "analytics")
NAMED_CANARY = ("portal", "legacy-crm")
GATES = """
[gates]
warn_window = "20s"
soak_enforce_10 = "10s"
soak_enforce_50 = "10s"
min_canary_validations = 20
max_validation_p99_seconds = 0.05   # a loaded 2-core test box, not the production budget
sunset_window = "15s"
"""
STEP_TIMEOUT_SECONDS = 150.0


@dataclass
class Clients:
    """Seven API clients posting strategies in turn; the alias senders can be "fixed" mid-drill."""

    running: Service
    webhook_token_file: Path
    keys: dict[str, str]
    send_aliases: bool = True
    stop: threading.Event = field(default_factory=threading.Event)
    answers: list[tuple[str, int, str]] = field(default_factory=list)

    def body(self, name: str) -> dict[str, Any]:
        stage = "Series A" if name in ALIAS_SENDERS and self.send_aliases else "series_a"
        return {"name": f"{name} plan", "stageAllocation": {stage: 0.5, "seed": 0.5}}

    def run(self) -> None:
        with httpx.Client(base_url=self.running.base_url, timeout=5.0) as http:
            while not self.stop.is_set():
                for name, key in self.keys.items():
                    response = http.post(
                        STRATEGIES, json=self.body(name), headers={"Authorization": f"Bearer {key}"}
                    )
                    self.answers.append(
                        (name, response.status_code, response.headers.get("x-stage-validation-mode", ""))
                    )
                time.sleep(0.05)


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FUNDMODEL, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _status(env: dict[str, str], sources: list[str]) -> tuple[int, dict[str, Any]]:
    done = _cli(env, "rollout", "status", "--json", *sources)
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def _advance_when_allowed(env: dict[str, str], sources: list[str], *extra: str) -> dict[str, Any]:
    """Wait until ``status`` allows the next step (exit 0), then take it without --force."""
    last: dict[str, Any] = {}

    def allowed() -> bool:
        nonlocal last
        code, last = _status(env, sources)
        return code == 0

    assert wait_until(allowed, timeout=STEP_TIMEOUT_SECONDS, interval=2.0), json.dumps(last, indent=1)[:4000]
    done = _cli(env, "rollout", "advance", "--actor", "drill", "--json", *extra, *sources)
    assert done.returncode == 0, done.stdout + done.stderr
    return dict(json.loads(done.stdout))


@pytest.fixture
def clients(request: pytest.FixtureRequest) -> Iterator[Clients]:
    running, webhook_token_file = request.getfixturevalue("service")
    url = running.env["DATABASE_URL"]
    engine = create_db_engine(url)
    try:
        keys = {name: create_key(engine, name).secret for name in (*ALIAS_SENDERS, *CANONICAL_SENDERS)}
    finally:
        engine.dispose()
    traffic = Clients(running, webhook_token_file, keys)
    thread = threading.Thread(target=traffic.run, daemon=True)
    thread.start()
    yield traffic
    traffic.stop.set()
    thread.join(timeout=15)


def test_seven_clients_walk_the_ladder_without_force_or_sql(tmp_path: Path, clients: Clients) -> None:
    running, webhook_token_file = clients.running, clients.webhook_token_file
    env = running.env
    gates_file = tmp_path / "gates.toml"
    gates_file.write_text(GATES, encoding="utf-8")
    backups = tmp_path / "backups"
    with ObservabilityStack(
        tmp_path / "stack",
        scrape_targets=[running.base_url.removeprefix("http://")],
        webhook_url=f"{running.base_url}{WEBHOOK_PATH}",
        webhook_token_file=webhook_token_file,
    ) as stack:
        assert wait_until(stack.prometheus.targets_up, timeout=30), stack.logs()
        sources = ["--prometheus-url", stack.prometheus.url, "--gates-file", str(gates_file)]
        sources += ["--backup-dir", str(backups)]

        # A fresh store: the ladder begins at warn, and "since" is recorded.
        _code, first = _status(env, sources)
        assert (first["phase"], first["next_phase"]) == ("warn", "enforce-10")
        assert first["entered_at"] is not None
        backup = _cli(env, "db", "backup", "--backup-dir", str(backups), "--json")
        assert backup.returncode == 0, backup.stdout + backup.stderr
        [dump] = [p for p in backups.iterdir() if p.suffix == ".dump"]
        verified = _cli(env, "db", "verify-backup", str(dump))
        assert verified.returncode == 0, verified.stdout + verified.stderr

        # warn -> enforce 10 %: two named clients go first.
        named = [arg for name in NAMED_CANARY for arg in ("--canary-client", name)]
        step = _advance_when_allowed(env, sources, *named)
        assert step["change"]["new_label"] == "enforce 10%"
        _code, at_10 = _status(env, sources)
        assert at_10["canary_clients"] == sorted(NAMED_CANARY)
        assert set(NAMED_CANARY) <= set(at_10["cohorts"][0]["canary"])

        step = _advance_when_allowed(env, sources)
        assert step["change"]["new_label"] == "enforce 50%"
        step = _advance_when_allowed(env, sources)
        assert step["change"]["new_label"] == "enforce 100%"

        # The Sunset step is blocked while three clients send aliases.
        def aliases_block() -> dict[str, Any] | None:
            code, document = _status(env, sources)
            gates = {g["name"]: g["status"] for g in document["gates"]}
            return document if code == 1 and gates.get("alias_traffic") == "fail" else None

        blocked = wait_until(aliases_block, timeout=60, interval=2.0)
        assert blocked is not None
        assert blocked["next_phase"] == "sunset"

        # The alias senders are fixed; the observation starts over, and the Sunset step passes.
        clients.send_aliases = False
        time.sleep(2.0)  # the last alias request is answered and scraped
        reset = _cli(
            env, "rollout", "reset-observation", "--actor", "drill", "--reason", "alias senders fixed"
        )
        assert reset.returncode == 0, reset.stdout + reset.stderr
        step = _advance_when_allowed(env, sources)
        assert step["change"]["new"]["mode"] == "enforce"
        code, complete = _status(env, sources)
        assert (code, complete["verdict"], complete["aliases_rejected"]) == (4, "complete", True)

        # "Complete" means it: an alias is now a 400, on every worker.
        alias = {"name": "late", "stageAllocation": {"Series A": 1}}
        key = clients.keys[ALIAS_SENDERS[0]]
        for _ in range(6):
            answer = httpx.post(
                f"{running.base_url}{STRATEGIES}",
                json=alias,
                headers={"Authorization": f"Bearer {key}", "Connection": "close"},
                timeout=5,
            )
            assert answer.status_code == 400, answer.text

    history = json.loads(_cli(env, "rollout", "history", "--json").stdout)["changes"]
    assert not any(change["reason"].startswith("FORCED") for change in history)
    assert sum(1 for _, code, _ in clients.answers if code >= 500) == 0
