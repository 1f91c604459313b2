"""The ledger under ``fundmodel serve --workers 2`` (gunicorn, real processes): after a graceful stop
(SIGTERM to the master) every request is accounted for, on SQLite and PostgreSQL.

Requests go on fresh connections so both workers serve them. With a 1 s interval the periodic flush must
have written some counts while the service ran and the workers' exit flushes write the rest; with an
interval longer than the test, nothing is written before SIGTERM and the exit flushes write everything.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, func, select

from fundmodel.auth.service import create_key
from fundmodel.db.usage_tables import stage_usage
from tests.api.servers import FUNDMODEL_CLI, ManagedProcess, free_port, wait_until_ready

WORKERS = 2
REQUESTS = 120
PERIODIC_FLUSH_SECONDS = 1.0
NO_PERIODIC_FLUSH_SECONDS = 300.0
STRATEGIES = "/api/portfolio/strategies"


def _worker_pids(process: ManagedProcess) -> set[int]:
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
    return {int(pid) for pid in children.read_text().split()} if children.exists() else set()


def _counts(engine: Engine) -> dict[tuple[str, str], int]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(stage_usage.c.kind, stage_usage.c.spelling, func.sum(stage_usage.c.count)).group_by(
                stage_usage.c.kind, stage_usage.c.spelling
            )
        ).all()
    return {(kind, spelling): int(total) for kind, spelling, total in rows}


def _send(base_url: str, key: str, number: int) -> None:
    allocation = {"Seed": 0.5, "growth": 0.5} if number % 3 == 0 else {"seed": 0.5, "growth": 0.5}
    response = httpx.post(
        f"{base_url}{STRATEGIES}",
        json={"name": f"s{number}", "stageAllocation": allocation},
        headers={"Authorization": f"Bearer {key}", "Connection": "close"},
        timeout=10.0,
    )
    assert response.status_code == 201, response.text


@pytest.mark.slow
@pytest.mark.parametrize(
    "flush_seconds", [PERIODIC_FLUSH_SECONDS, NO_PERIODIC_FLUSH_SECONDS], ids=["periodic", "exit-only"]
)
def test_every_request_is_counted_after_a_graceful_stop(
    flush_seconds: float, database_url: str, engine: Engine, tmp_path: Path
) -> None:
    key = create_key(engine, "usage-serve").secret
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("STAGE_", "PROMETHEUS_", "DATABASE_URL", "APP_ENV"))
    }
    env = {
        **inherited,
        "DATABASE_URL": database_url,
        "APP_ENV": "production",
        "STAGE_VALIDATION_MODE": "warn",
        "STAGE_USAGE_FLUSH_SECONDS": str(flush_seconds),
        "LOG_LEVEL": "WARNING",
    }
    port = free_port()
    argv = [FUNDMODEL_CLI, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(WORKERS)]
    process = ManagedProcess("fundmodel-serve", argv, tmp_path / "serve.log", tmp_path, env=env)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(
            process,
            f"{base_url}/readyz",
            timeout=90,
            interval=0.5,
            also=lambda: len(_worker_pids(process)) == WORKERS,
        )
        half = REQUESTS // 2
        for number in range(half):
            _send(base_url, key, number)
        if flush_seconds == PERIODIC_FLUSH_SECONDS:
            # The periodic flush writes while the service runs ...
            deadline = time.monotonic() + 10 * flush_seconds
            while not _counts(engine) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert _counts(engine), "no periodic flush while the service ran"
        # ... and the last requests, answered just before SIGTERM, are written by the exit flush.
        for number in range(half, REQUESTS):
            _send(base_url, key, number)
        if flush_seconds == NO_PERIODIC_FLUSH_SECONDS:
            assert _counts(engine) == {}, "counted before the first interval ended"
    finally:
        process.stop(grace_seconds=30)
    assert process.process.returncode == 0, process.tail()
    aliases = len([number for number in range(REQUESTS) if number % 3 == 0])
    assert _counts(engine) == {("valid", ""): REQUESTS - aliases, ("alias", "Seed"): aliases}
