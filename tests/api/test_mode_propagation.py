"""Two server processes on one database: a `fundmodel mode set` reaches both within the cache TTL."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest

from fundmodel.auth.service import create_key
from fundmodel.db.engine import create_db_engine
from tests.api.servers import FUNDMODEL_CLI, service_env, uvicorn_servers

TTL_SECONDS = 2.0


def _mode_seen(base: str, headers: dict[str, str]) -> str:
    response = httpx.post(
        f"{base}/api/portfolio/strategies",
        json={"name": "probe", "stageAllocation": {"seed": 1}},
        headers=headers,
        timeout=5,
    )
    assert response.status_code == 201, response.text
    return response.headers["x-stage-validation-mode"]


@pytest.mark.slow
def test_mode_set_reaches_every_process_within_the_ttl(database_url: str, tmp_path: Path) -> None:
    engine = create_db_engine(database_url)
    key = create_key(engine, "propagation").secret
    engine.dispose()
    headers = {"Authorization": f"Bearer {key}"}
    env = service_env(database_url, STAGE_MODE_CACHE_TTL_SECONDS=str(TTL_SECONDS))
    with uvicorn_servers(env, [tmp_path / "server1.log", tmp_path / "server2.log"]) as servers:
        assert [_mode_seen(base, headers) for base in servers] == ["warn", "warn"]

        subprocess.run(
            [FUNDMODEL_CLI, "mode", "set", "enforce", "--actor", "pytest", "--reason", "propagation"],
            env=env,
            check=True,
            capture_output=True,
            timeout=30,
        )
        changed_at = time.monotonic()
        seen_at: dict[str, float] = {}
        while len(seen_at) < len(servers) and time.monotonic() - changed_at < 3 * TTL_SECONDS:
            for base in servers:
                if base not in seen_at and _mode_seen(base, headers) == "enforce":
                    seen_at[base] = time.monotonic() - changed_at
            time.sleep(0.05)

    assert set(seen_at) == set(servers), f"not every server switched: {seen_at}"
    assert max(seen_at.values()) <= TTL_SECONDS, seen_at
    status = subprocess.run(
        [FUNDMODEL_CLI, "mode", "get", "--json"], env=env, capture_output=True, text=True, check=True
    )
    assert '"mode": "enforce"' in status.stdout
