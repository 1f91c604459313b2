"""A sweep job outlives the server process running it (real uvicorn processes, SQLite and PostgreSQL).

Killed outright (SIGKILL, no shutdown), the process leaves its lease to run out and another server runs the
job again; stopped gracefully (SIGTERM), it puts the job back in the queue at once. The store-level rules
behind it (a job abandoned too often fails with a reason) are tested on both backends too.
"""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select

from fundmodel.auth.service import create_key
from fundmodel.db.engine import create_db_engine
from fundmodel.db.sweep_job_tables import sweep_jobs
from fundmodel.sweeps.jobs import ABANDONED_CODE, JobStore
from tests.api.servers import ManagedProcess, free_port, service_env, uvicorn_argv, wait_until_ready

LEASE_SECONDS = "2"
# Long enough to be caught running: 1,000 points of 2,000 funds (about 10-20 s on one core).
LONG_SWEEP: dict[str, Any] = {
    "base": {"fundSize": 5e7, "stageDistribution": {"seed": 0.7, "series_a": 0.3}},
    "parameters": [
        {"path": "reserveRatio", "values": "0:0.8:40"},
        {"path": "carryRate", "values": "0.1:0.3:25"},
    ],
    "metric": "netTvpi.p50",
    "iterations": 2000,
    "seed": 5,
}


def _start(database_url: str, log: Path) -> tuple[ManagedProcess, str]:
    port = free_port()
    env = service_env(database_url, SWEEP_LEASE_SECONDS=LEASE_SECONDS, SWEEP_POLL_INTERVAL_SECONDS="0.1")
    process = ManagedProcess("uvicorn", uvicorn_argv(port), log, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(process, f"{base}/readyz", timeout=60)
    except Exception:
        process.stop()
        raise
    return process, base


def _job(base: str, location: str, headers: dict[str, str]) -> dict[str, Any]:
    response = httpx.get(f"{base}{location}", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _until(base: str, location: str, headers: dict[str, str], condition: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        job = _job(base, location, headers)
        if condition(job):
            return job
        assert time.monotonic() < deadline, f"job never got there: {job}"
        time.sleep(0.1)


def _running_with_progress(job: dict[str, Any]) -> bool:
    return job["status"] == "running" and job["progress"]["pointsDone"] > 0


@pytest.fixture
def api_key(database_url: str) -> str:
    engine = create_db_engine(database_url)
    try:
        return create_key(engine, "restart-test").secret
    finally:
        engine.dispose()


def test_a_job_survives_its_server_being_killed(database_url: str, api_key: str, tmp_path: Path) -> None:
    headers = {"Authorization": f"Bearer {api_key}"}
    first, first_base = _start(database_url, tmp_path / "first.log")
    try:
        submitted = httpx.post(
            f"{first_base}/api/monte-carlo/sweeps", json=LONG_SWEEP, headers=headers, timeout=30
        )
        assert submitted.status_code == 202, submitted.text
        location = submitted.headers["location"]
        _until(first_base, location, headers, _running_with_progress, timeout=60)
        os.killpg(first.pid, signal.SIGKILL)  # a crash: no shutdown, the lease is left to run out
        first.process.wait(timeout=10)
    finally:
        first.stop()
    second, second_base = _start(database_url, tmp_path / "second.log")
    try:
        job = _until(second_base, location, headers, lambda job: job["attempts"] == 2, timeout=60)
        assert job["status"] in {"running", "succeeded"}
        # Cancel rather than wait for all 1,000 points: what matters is that it was picked up again.
        assert httpx.delete(f"{second_base}{location}", headers=headers, timeout=10).status_code == 200
        job = _until(second_base, location, headers, lambda job: job["status"] != "running", timeout=60)
        assert job["status"] in {"cancelled", "succeeded"}
        assert job["attempts"] == 2
    finally:
        second.stop()


def test_a_graceful_shutdown_requeues_the_job(database_url: str, api_key: str, tmp_path: Path) -> None:
    headers = {"Authorization": f"Bearer {api_key}"}
    server, base = _start(database_url, tmp_path / "server.log")
    try:
        submitted = httpx.post(f"{base}/api/monte-carlo/sweeps", json=LONG_SWEEP, headers=headers, timeout=30)
        location = submitted.headers["location"]
        _until(base, location, headers, _running_with_progress, timeout=60)
    finally:
        server.stop()  # SIGTERM: the worker stops after its current point and re-queues the job
    engine = create_db_engine(database_url)
    try:
        job_id = location.rsplit("/", 1)[1]
        record = JobStore(engine).get("", job_id)
        assert record is None  # ownership holds in the store too
        stored = _stored(engine, job_id)
        assert (stored.status, stored.attempts, stored.lease_owner) == ("queued", 0, None)
    finally:
        engine.dispose()


def _stored(engine: Engine, job_id: str) -> Any:
    with engine.connect() as connection:
        return connection.execute(select(sweep_jobs).where(sweep_jobs.c.id == job_id)).one()


def test_a_job_abandoned_too_often_fails_with_the_reason(engine: Engine) -> None:
    store = JobStore(engine)
    record = store.submit(
        client_id="client", kind="sweep", request={}, warnings=[], points_total=3, max_active=5
    )
    assert record is not None
    expired = timedelta(seconds=-1)  # every lease taken here has already run out: the worker "died"
    for attempt in (1, 2):
        claimed = store.claim(f"worker-{attempt}", lease=expired, max_attempts=2)
        assert claimed is not None
        assert claimed.attempt == attempt
    assert store.claim("worker-3", lease=expired, max_attempts=2) is None
    failed = store.get("client", record.job_id)
    assert failed is not None
    assert failed.status == "failed"
    assert failed.error is not None
    assert failed.error["code"] == ABANDONED_CODE
    # The dead workers' late results are not recorded over it.
    assert not store.finish(record.job_id, "worker-2", "succeeded", points_done=3, result={})


def test_a_lost_lease_is_noticed_by_its_worker(engine: Engine) -> None:
    store = JobStore(engine)
    record = store.submit(
        client_id="client", kind="sweep", request={}, warnings=[], points_total=3, max_active=5
    )
    assert record is not None
    first = store.claim("first", lease=timedelta(seconds=-1), max_attempts=3)
    second = store.claim("second", lease=timedelta(seconds=60), max_attempts=3)
    assert first is not None
    assert second is not None
    assert second.attempt == 2
    assert store.heartbeat(record.job_id, "first", lease=timedelta(seconds=60)) is None
    assert store.heartbeat(record.job_id, "second", lease=timedelta(seconds=60), points_done=1) is False


def test_simultaneous_submissions_never_pass_the_bound(engine: Engine) -> None:
    store = JobStore(engine)

    def submit(_: int) -> bool:
        record = store.submit(
            client_id="racer", kind="sweep", request={}, warnings=[], points_total=1, max_active=3
        )
        return record is not None

    with ThreadPoolExecutor(max_workers=8) as pool:
        accepted = list(pool.map(submit, range(16)))
    assert sum(accepted) == 3
    assert store.active_count("racer") == 3


def test_simultaneous_workers_claim_each_job_once(engine: Engine) -> None:
    store = JobStore(engine)
    for _ in range(6):
        store.submit(client_id="client", kind="sweep", request={}, warnings=[], points_total=1, max_active=10)

    def claim_all(owner: str) -> list[str]:
        claimed: list[str] = []
        while (job := store.claim(owner, lease=timedelta(seconds=60), max_attempts=3)) is not None:
            claimed.append(job.job_id)
        return claimed

    with ThreadPoolExecutor(max_workers=4) as pool:
        per_worker = list(pool.map(claim_all, [f"worker-{n}" for n in range(4)]))
    every = [job_id for claimed in per_worker for job_id in claimed]
    assert len(every) == len(set(every)) == 6
