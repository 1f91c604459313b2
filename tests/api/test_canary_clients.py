"""Named canary clients over real HTTP on ``fundmodel serve --workers 2`` (gunicorn): whatever the canary
percentage, both workers enforce the named client within the mode cache TTL; the others stay in warn."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest

from fundmodel.auth.service import create_key
from fundmodel.db.engine import create_db_engine
from tests.api.servers import FUNDMODEL_CLI, ManagedProcess, free_port, service_env, wait_until_ready
from tests.conftest import ApiClient

TTL_SECONDS = 2.0
WORKERS = 2
ADMIN_TOKEN = "canary-clients-admin-token-0123456789abcdef"
UNKNOWN = {"name": "c", "stageAllocation": {"seed": 0.5, "mezzanine": 0.5}}


def _answer(base: str, key: str) -> tuple[int, str]:
    # A fresh connection each time, so gunicorn spreads the requests over its workers.
    response = httpx.post(
        f"{base}/api/portfolio/strategies",
        json=UNKNOWN,
        headers={"Authorization": f"Bearer {key}", "Connection": "close"},
        timeout=5,
    )
    return response.status_code, response.headers["x-stage-validation-mode"]


def _workers_named(base: str) -> dict[int, list[str]]:
    """The named canary clients each worker applies (its cache), by pid, over fresh connections."""
    seen: dict[int, list[str]] = {}
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Connection": "close"}
    for _ in range(40):
        worker = httpx.get(f"{base}/_ops/stage-validation/mode?limit=0", headers=headers, timeout=5).json()
        seen[worker["worker"]["pid"]] = worker["worker"]["canaryClients"]
        if len(seen) == WORKERS:
            break
    return seen


@pytest.mark.slow
def test_both_workers_enforce_a_named_client_at_zero_percent(database_url: str, tmp_path: Path) -> None:
    engine = create_db_engine(database_url)
    keys = {f"client-{n}": create_key(engine, f"client-{n}").secret for n in range(1, 8)}
    engine.dispose()
    env = service_env(database_url, STAGE_MODE_CACHE_TTL_SECONDS=str(TTL_SECONDS), ADMIN_TOKEN=ADMIN_TOKEN)
    port = free_port()
    argv = [FUNDMODEL_CLI, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(WORKERS)]
    process = ManagedProcess("fundmodel-serve", argv, tmp_path / "service.log", tmp_path, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(
            process,
            f"{base}/readyz",
            timeout=90,
            interval=0.5,
            also=lambda: len(_workers_named(base)) == WORKERS,
        )
        set_mode = [FUNDMODEL_CLI, "mode", "set", "enforce", "--canary", "0", "--actor", "pytest"]
        refused = subprocess.run(
            [*set_mode, "--reason", "named", "--canary-client", "nobody"],
            env=env, capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert refused.returncode == 2
        assert refused.stderr.strip().startswith("error: unknown canary client 'nobody'")
        subprocess.run(
            [*set_mode, "--reason", "named", "--canary-client", "client-3"],
            env=env, check=True, capture_output=True, timeout=30,
        )  # fmt: skip
        changed_at = time.monotonic()
        while time.monotonic() - changed_at < 3 * TTL_SECONDS:
            workers = _workers_named(base)
            if len(workers) == WORKERS and all(named == ["client-3"] for named in workers.values()):
                break
            time.sleep(0.1)
        assert workers == {key: ["client-3"] for key in workers}, workers
        assert len(workers) == WORKERS
        assert time.monotonic() - changed_at <= 3 * TTL_SECONDS
        answers = {_answer(base, keys["client-3"]) for _ in range(10)}
        assert answers == {(400, "enforce")}
        others = {_answer(base, keys[name]) for name in ("client-1", "client-7") for _ in range(5)}
        assert others == {(201, "warn")}
    finally:
        process.stop(grace_seconds=15)


def test_the_sunset_step_rejects_aliases_of_enforced_clients_only(api: ApiClient) -> None:
    from fundmodel.validation import ValidationMode

    alias = {"name": "c", "stageAllocation": {"Series A": 1}}
    store = api.state.mode_store
    store.set(ValidationMode.ENFORCE, 100, actor="pytest", reason="enforce")
    accepted = api.request("POST", "/api/portfolio/strategies", json=alias)
    assert accepted.status_code == 201, accepted.text
    assert accepted.headers["deprecation"]
    store.set(ValidationMode.ENFORCE, 100, actor="pytest", reason="sunset", aliases_rejected=True)
    rejected = api.request("POST", "/api/portfolio/strategies", json=alias)
    assert rejected.status_code == 400, rejected.text
    assert rejected.headers["x-stage-validation-mode"] == "enforce"
    # A client outside the canary of a Sunset-flagged canary step is in warn: aliases stay accepted there.
    store.set(ValidationMode.ENFORCE, 0, actor="pytest", reason="sunset canary", aliases_rejected=True)
    assert api.request("POST", "/api/portfolio/strategies", json=alias).status_code == 201
