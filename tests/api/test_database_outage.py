"""A real PostgreSQL outage under a real server: 503s that fail fast, Monte Carlo still served, recovery.

The test runs its own PostgreSQL instance (tests/pg_instance.py) so it can stop it; the shared server on
5432 is never touched. The service is a real uvicorn process in production mode with a real API key.
"""

from __future__ import annotations

import re
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from fundmodel.auth.service import create_key
from fundmodel.db.engine import create_db_engine
from fundmodel.db.migrate import upgrade_to_head
from tests.api.servers import service_env, uvicorn_server
from tests.pg_instance import missing_reason, postgres_instance

FUND: dict[str, Any] = {
    "name": "Outage Fund",
    "vintageYear": 2024,
    "committedCapital": 1e8,
    "managementFeeRate": 0.02,
    "carriedInterestRate": 0.2,
}
SIMULATION: dict[str, Any] = {
    "fundSize": 5e7,
    "stageDistribution": {"seed": 0.7, "series_a": 0.3},
    "iterations": 200,
    "seed": 3,
}
# Well under a second on this machine once the database is gone (1.3-1.9 s per request before issue 10).
# A refused connection costs about a millisecond; these bounds leave room for a loaded CI machine while
# still failing on the old behaviour (1.3 s per request, a 300 KB traceback logged each time).
FAIL_FAST_MEDIAN_SECONDS = 0.5
FAIL_FAST_MAX_SECONDS = 2.0
RECOVERY_SECONDS = 5.0


def _unavailable_total(metrics_text: str) -> float:
    pattern = re.compile(r'^fundmodel_database_unavailable_total\{reason="connection"\} (\S+)$', re.MULTILINE)
    match = pattern.search(metrics_text)
    assert match is not None, metrics_text
    return float(match.group(1))


def _assert_store_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    assert response.json()["code"] == "STORE_UNAVAILABLE"


@pytest.mark.postgres
@pytest.mark.slow
def test_a_database_outage_is_503_fast_keeps_monte_carlo_and_recovers(tmp_path: Path) -> None:
    reason = missing_reason()
    if reason is not None:
        pytest.skip(f"cannot start a PostgreSQL instance of the test's own: {reason}")
    with postgres_instance() as instance:
        url = instance.url()
        engine = create_db_engine(url)
        try:
            upgrade_to_head(engine)
            key = create_key(engine, "outage-client").secret
            unused_key = create_key(engine, "never-seen-before-the-outage").secret
        finally:
            engine.dispose()
        log = tmp_path / "server.log"
        env = service_env(url, APP_ENV="production", LOG_LEVEL="INFO")
        with (
            uvicorn_server(env, log) as base,
            httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client,
        ):
            fund_id = client.post("/api/funds", json=FUND).json()["id"]
            assert client.post("/api/monte-carlo/simulate", json=SIMULATION).status_code == 200
            before = _unavailable_total(client.get("/metrics").text)

            instance.stop("immediate")
            assert not instance.is_running()

            failures = 0
            durations: list[float] = []
            for method, path, body in [
                ("GET", "/api/funds", None),
                ("GET", f"/api/funds/{fund_id}", None),
                ("POST", "/api/funds", {**FUND, "name": "During the outage"}),
                ("GET", f"/api/funds/{fund_id}/companies", None),
                ("GET", "/api/portfolio/strategies", None),
            ]:
                started = time.monotonic()
                response = client.request(method, path, json=body)
                durations.append(time.monotonic() - started)
                _assert_store_unavailable(response)
                failures += 1
            assert statistics.median(durations) < FAIL_FAST_MEDIAN_SECONDS, durations
            assert max(durations) < FAIL_FAST_MAX_SECONDS, durations

            readiness = client.get("/readyz")
            assert readiness.status_code == 503
            assert readiness.json()["code"] == "STORE_UNAVAILABLE"

            # Stale-if-error: the key verified seconds ago still runs the database-free Monte Carlo ...
            time.sleep(2.1)  # past the key cache's TTL: the lookup is tried, and fails
            simulated = client.post("/api/monte-carlo/simulate", json=SIMULATION)
            assert simulated.status_code == 200, simulated.text
            # ... a key this process never verified cannot be checked: 503, not 401 and not 200.
            unverified = client.post(
                "/api/monte-carlo/simulate",
                json=SIMULATION,
                headers={"Authorization": f"Bearer {unused_key}"},
            )
            _assert_store_unavailable(unverified)
            failures += 1

            assert _unavailable_total(client.get("/metrics").text) - before == failures

            instance.start()
            restarted = time.monotonic()
            while client.get("/api/funds").status_code != 200:
                assert time.monotonic() - restarted < RECOVERY_SECONDS, "no recovery without a restart"
                time.sleep(0.1)
            assert client.get("/readyz").status_code == 200
            assert client.get(f"/api/funds/{fund_id}").json()["name"] == FUND["name"]
            assert (
                client.post(
                    "/api/monte-carlo/simulate",
                    json=SIMULATION,
                    headers={"Authorization": f"Bearer {unused_key}"},
                ).status_code
                == 200
            )
    logged = log.read_text()
    assert '"event": "database_unavailable"' in logged
    assert key not in logged
    assert unused_key not in logged
