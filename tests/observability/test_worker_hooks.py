"""Real gunicorn + uvicorn workers sharing PROMETHEUS_MULTIPROC_DIR: totals sum across workers,
stale files are cleared at start, and a dead worker's live gauges are dropped by child_exit."""

from __future__ import annotations

import os
import signal
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fundmodel.observability.metrics import MULTIPROC_ENV
from fundmodel.observability.worker_hooks import child_exit, prepare_multiprocess_dir
from tests.api.servers import ManagedProcess, free_port, wait_until_ready

ROOT = Path(__file__).resolve().parents[2]
REQUESTS = 60
WORKERS = 3
STARTUP_TIMEOUT_SECONDS = 30.0


def fetch(url: str, method: str = "GET") -> str:
    request = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read().decode()


def rejected_total(metrics_text: str) -> float:
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if (
                sample.name == "fundmodel_stage_validations_total"
                and sample.labels["endpoint"] == "/api/monte-carlo/simulate"
                and sample.labels["outcome"] == "rejected"
                and sample.labels["cohort"] == "canary"
                and sample.labels["mode"] == "enforce"
            ):
                return sample.value
    raise AssertionError("rejected series missing")


def test_prepare_multiprocess_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    assert prepare_multiprocess_dir() is None
    target = tmp_path / "new" / "dir"
    monkeypatch.setenv(MULTIPROC_ENV, str(target))
    assert prepare_multiprocess_dir() == target
    (target / "counter_1.db").write_bytes(b"x")
    prepare_multiprocess_dir()
    assert list(target.iterdir()) == []


def test_child_exit_removes_the_dead_workers_live_gauges(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    (tmp_path / "gauge_livemax_4242.db").write_bytes(b"x")
    (tmp_path / "counter_4242.db").write_bytes(b"x")

    class Worker:
        pid = 4242

    child_exit(None, Worker())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter_4242.db"]


@pytest.mark.slow
def test_gunicorn_uvicorn_workers_sum_correctly(tmp_path: Path) -> None:
    multiproc_dir = tmp_path / "prom"
    multiproc_dir.mkdir()
    (multiproc_dir / "counter_999999.db").write_bytes(b"stale file from an earlier run")
    port = free_port()
    config = tmp_path / "gunicorn.conf.py"
    config.write_text(
        "from fundmodel.observability.worker_hooks import child_exit, on_starting\n"
        f"bind = '127.0.0.1:{port}'\n"
        f"workers = {WORKERS}\n"
        "worker_class = 'uvicorn.workers.UvicornWorker'\n"
        "graceful_timeout = 5\n"
    )
    env = {
        **os.environ,
        MULTIPROC_ENV: str(multiproc_dir),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "PYTHONWARNINGS": "ignore::DeprecationWarning",
    }
    master = ManagedProcess(
        "gunicorn",
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            str(config),
            "tests.observability.asgi_probe:create_app()",
        ],
        tmp_path / "gunicorn.log",
        cwd=ROOT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(master, f"{base}/metrics", timeout=STARTUP_TIMEOUT_SECONDS)
        assert not (multiproc_dir / "counter_999999.db").exists()  # on_starting cleared it

        with ThreadPoolExecutor(max_workers=12) as pool:
            pids = list(pool.map(lambda _: int(fetch(f"{base}/hit", "POST")), range(REQUESTS)))
        served_by = set(pids)
        assert len(served_by) >= 2, f"all requests went to one worker: {served_by}"
        assert rejected_total(fetch(f"{base}/metrics")) == REQUESTS

        victim = pids[0]
        assert (multiproc_dir / f"gauge_livemax_{victim}.db").exists()
        os.kill(victim, signal.SIGKILL)  # a worker we started (via our gunicorn master)
        deadline = time.monotonic() + 20
        while (multiproc_dir / f"gauge_livemax_{victim}.db").exists():
            assert time.monotonic() < deadline, master.tail()
            time.sleep(0.1)
        # Counters of the dead worker still count: totals never go backwards.
        assert rejected_total(fetch(f"{base}/metrics")) == REQUESTS
    finally:
        master.stop()
