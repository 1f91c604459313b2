"""Brownouts on ``fundmodel serve --workers 2`` (gunicorn, real processes, one database): a window a few
seconds ahead starts and ends on both workers on time, a cancel reaches both within the mode cache TTL, and
the auto-downgrade webhook ends a window in force everywhere."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from fundmodel.auth.service import create_key
from fundmodel.db.engine import create_db_engine
from tests.api.servers import FUNDMODEL_CLI, ManagedProcess, free_port, service_env, wait_until_ready
from tests.api.test_ops import WEBHOOK, WEBHOOK_TOKEN, payload

TTL_SECONDS = 1.0
WORKERS = 2
ADMIN_TOKEN = "brownout-workers-admin-token-0123456789abcdef"
UNKNOWN = {"name": "b", "stageAllocation": {"seed": 0.5, "mezzanine": 0.5}}
# Requests per look: each on a fresh connection, so gunicorn spreads them over both workers.
REQUESTS = 12
# Margin around an edge for a request's own latency on a loaded machine.
EDGE_MARGIN = timedelta(seconds=0.4)


def _statuses(base: str, key: str) -> set[tuple[int, str]]:
    answers = set()
    for _ in range(REQUESTS):
        response = httpx.post(
            f"{base}/api/portfolio/strategies",
            json=UNKNOWN,
            headers={"Authorization": f"Bearer {key}", "Connection": "close"},
            timeout=5,
        )
        answers.add((response.status_code, response.headers["x-stage-validation-mode"]))
    return answers


def _worker_modes(base: str) -> dict[int, str]:
    """The mode each worker applies now (brownout included), by pid, over fresh connections."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Connection": "close"}
    modes: dict[int, str] = {}
    for _ in range(40):
        worker = httpx.get(f"{base}/_ops/stage-validation/mode?limit=0", headers=headers, timeout=5).json()
        modes[worker["worker"]["pid"]] = worker["worker"]["mode"]
        if len(modes) == WORKERS:
            break
    return modes


def _everywhere(base: str, key: str, expected: set[tuple[int, str]]) -> bool:
    """Both workers apply the mode (by pid) and the requests spread over them are answered as expected."""
    modes = _worker_modes(base)
    mode = next(iter(expected))[1]
    return len(modes) == WORKERS and set(modes.values()) == {mode} and _statuses(base, key) == expected


def _sleep_until(moment: datetime) -> None:
    time.sleep(max((moment - datetime.now(UTC)).total_seconds(), 0.0))


def _within(seconds: float, condition: Callable[[], bool]) -> float:
    """How long ``condition`` took to hold (fails after ``seconds``)."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, f"not within {seconds}s"
        time.sleep(0.05)
    return time.monotonic() - started


WARNED = {(201, "warn")}
REJECTED = {(400, "enforce")}


@pytest.mark.slow
def test_brownouts_start_end_and_stop_on_every_worker(database_url: str, tmp_path: Path) -> None:
    engine = create_db_engine(database_url)
    key = create_key(engine, "brownout-client").secret
    engine.dispose()
    env = service_env(
        database_url,
        STAGE_MODE_CACHE_TTL_SECONDS=str(TTL_SECONDS),
        ADMIN_TOKEN=ADMIN_TOKEN,
        STAGE_WEBHOOK_TOKEN=WEBHOOK_TOKEN,
    )
    port = free_port()
    argv = [FUNDMODEL_CLI, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(WORKERS)]
    process = ManagedProcess("fundmodel-serve", argv, tmp_path / "service.log", tmp_path, env=env)
    base = f"http://127.0.0.1:{port}"

    def cli(*args: str) -> str:
        actor = [] if args[0] == "list" else ["--actor", "pytest"]
        done = subprocess.run(
            [FUNDMODEL_CLI, "rollout", "brownout", *args, *actor],
            env=env, capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        return done.stdout

    try:
        wait_until_ready(
            process,
            f"{base}/readyz",
            timeout=90,
            interval=0.5,
            also=lambda: len(_worker_modes(base)) == WORKERS,
        )
        assert _everywhere(base, key, WARNED)

        # 1. A window a few seconds ahead: both workers learn it before it starts, and apply its edges.
        starts_at = (datetime.now(UTC) + timedelta(seconds=8)).replace(microsecond=0)
        cli("schedule", "--start", starts_at.isoformat(), "--duration", "5s", "--reason", "edges")
        ends_at = starts_at + timedelta(seconds=5)
        # (The CLI's own start-up may take seconds on a loaded machine: only look while surely before.)
        if datetime.now(UTC) + 2 * EDGE_MARGIN < starts_at:
            assert _everywhere(base, key, WARNED)
        _sleep_until(starts_at + EDGE_MARGIN)
        assert _everywhere(base, key, REJECTED)
        _sleep_until(ends_at + EDGE_MARGIN)
        assert _everywhere(base, key, WARNED)

        # 2. A window in force, cancelled: every worker is back to warn within the TTL.
        cli("schedule", "--start", "now", "--duration", "1h", "--reason", "cancel drill")
        _within(5 * TTL_SECONDS, lambda: _everywhere(base, key, REJECTED))
        [listed] = [
            w for w in json.loads(cli("list", "--json"))["brownouts"] if w["reason"] == "cancel drill"
        ]
        cli("cancel", str(listed["id"]), "--reason", "cancelled by the drill")
        took = _within(5 * TTL_SECONDS, lambda: _everywhere(base, key, WARNED))
        # The TTL, plus the time one look at both workers takes on a loaded machine.
        assert took <= TTL_SECONDS + 2.0, took

        # 3. A flood during a brownout: the auto-downgrade webhook ends it on every worker within seconds.
        cli("schedule", "--start", "now", "--duration", "1h", "--reason", "flood drill")
        _within(5 * TTL_SECONDS, lambda: _everywhere(base, key, REJECTED))
        response = httpx.post(
            f"{base}{WEBHOOK}",
            content=payload(),
            headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}", "Content-Type": "application/json"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        assert response.json()["result"] == "downgraded"
        assert len(response.json()["endedBrownouts"]) == 1
        took = _within(5 * TTL_SECONDS, lambda: _everywhere(base, key, WARNED))
        # The TTL, plus the time one look at both workers takes on a loaded machine.
        assert took <= TTL_SECONDS + 2.0, took
        assert "no brownout scheduled" in cli("list")
    finally:
        process.stop(grace_seconds=15)
