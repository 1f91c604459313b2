"""Schemathesis over the whole OpenAPI document, against a real server with production settings.

Every operation, every phase (examples, coverage, fuzzing, stateful), every check; the configuration
and the few rejections the API makes by design (each with its reason) are in tests/api/schemathesis.toml,
the check enforcing those exclusions in tests/api/schemathesis_hooks.py. The run must report zero
failures (no 5xx, no undocumented status, no schema violation, nothing accepted that the schema
forbids, ...) and zero errors. It is deterministic: a fixed seed, one worker, no example database and
no cache between runs, a fresh database each time. It cannot pass without running: the test fails
when the CLI is missing, the server does not start, the report is missing, or an operation or a phase
was not exercised.

Reproduce a failure from the repository root against any server (credentials in the environment):
``FUNDMODEL_CONFORMANCE_API_KEY=... st --config-file tests/api/schemathesis.toml run URL/openapi.json``.
``FM_SCHEMATHESIS_EXAMPLES`` raises the examples per operation for a deeper run.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from fundmodel.auth.service import create_key
from fundmodel.db.engine import create_db_engine
from tests.api.servers import service_env, uvicorn_server
from tests.conftest import make_database

CONFIG = Path(__file__).with_name("schemathesis.toml")
REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMATHESIS_CLI = Path(sys.executable).with_name("schemathesis")
MAX_EXAMPLES = int(os.environ.get("FM_SCHEMATHESIS_EXAMPLES", "20"))
PHASES = ("examples", "coverage", "fuzzing", "stateful")
RUN_TIMEOUT_SECONDS = 600
# What the run's output may show of the failures in an assertion message.
MAX_REPORTED_OUTPUT = 20_000

# Enforce (the strictest mode, rejecting unknown stages) on both backends; warn, where unknown stages
# are accepted and stored, on PostgreSQL, whose column types are the stricter of the two.
RUNS = [
    pytest.param("sqlite", "enforce", id="sqlite-enforce"),
    pytest.param("postgresql", "enforce", id="postgresql-enforce", marks=pytest.mark.postgres),
    pytest.param("postgresql", "warn", id="postgresql-warn", marks=pytest.mark.postgres),
]


@pytest.mark.slow
@pytest.mark.parametrize(("backend", "mode"), RUNS)
def test_the_whole_openapi_document_holds_under_schemathesis(
    backend: str, mode: str, tmp_path: Path, postgres_database: str | None
) -> None:
    database_url = make_database(backend, tmp_path, postgres_database)
    engine = create_db_engine(database_url)
    try:
        api_key = create_key(engine, "schemathesis").secret
    finally:
        engine.dispose()
    admin_token, webhook_token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    server_env = service_env(
        database_url,
        APP_ENV="production",
        STAGE_VALIDATION_MODE=mode,
        ADMIN_TOKEN=admin_token,
        STAGE_WEBHOOK_TOKEN=webhook_token,
    )
    report_path = tmp_path / "schemathesis-report.json"
    with uvicorn_server(server_env, tmp_path / "server.log") as base_url:
        _seed_a_fund(base_url, api_key)
        completed = subprocess.run(
            [
                str(SCHEMATHESIS_CLI),
                "--config-file",
                str(CONFIG),
                "run",
                f"{base_url}/openapi.json",
                "--max-examples",
                str(MAX_EXAMPLES),
                "--report",
                "json",
                "--report-json-path",
                str(report_path),
                "--no-color",
            ],
            cwd=REPO_ROOT,  # the config names its hooks file relative to the repository root
            env={
                **os.environ,
                "FUNDMODEL_CONFORMANCE_API_KEY": api_key,
                "FUNDMODEL_CONFORMANCE_ADMIN_TOKEN": admin_token,
                "FUNDMODEL_CONFORMANCE_WEBHOOK_TOKEN": webhook_token,
            },
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_SECONDS,
            check=False,
        )
    output = _failure_section(completed.stdout + completed.stderr)
    assert report_path.exists(), f"Schemathesis wrote no report (exit {completed.returncode}):\n{output}"
    report: dict[str, Any] = json.loads(report_path.read_text())
    assert report["complete"], f"the run stopped early ({report['stop_reason']}):\n{output}"
    operations = report["operations"]
    assert operations["tested"] == operations["total"] >= 19, operations
    assert operations["errored"] == operations["skipped"] == 0, operations
    assert report["warnings"]["missing_auth"] == [], "a credential was refused: only 401s were tested"
    assert report["failures"] == [], output
    assert report["errors"] == [], output
    assert {phase: report["phases"][phase]["status"] for phase in PHASES} == dict.fromkeys(
        PHASES, "success"
    ), output
    assert report["test_cases"]["generated"] >= 20 * operations["total"], report["test_cases"]
    assert completed.returncode == 0, output


def _seed_a_fund(base_url: str, api_key: str) -> None:
    """One fund with one company, so that read and update operations have something to find."""
    headers = {"Authorization": f"Bearer {api_key}"}
    fund = httpx.post(
        f"{base_url}/api/funds",
        headers=headers,
        json={
            "name": "Schemathesis Seed Fund",
            "vintageYear": 2024,
            "committedCapital": 1e8,
            "managementFeeRate": 0.02,
            "carriedInterestRate": 0.2,
        },
    )
    assert fund.status_code == 201, fund.text
    company = httpx.post(
        f"{base_url}/api/funds/{fund.json()['id']}/companies",
        headers=headers,
        json={"name": "Seed Co", "stage": "seed", "invested": 1e6, "reserveAllocation": 5e5},
    )
    assert company.status_code == 201, company.text


def _failure_section(text: str) -> str:
    """The CLI's failures and summary (the part that names operations, checks and reproducers)."""
    start = text.find("=== FAILURES")
    if start == -1:
        start = text.find("=== ERRORS")
    section = text[start:] if start != -1 else text
    if len(section) > MAX_REPORTED_OUTPUT:
        section = section[:MAX_REPORTED_OUTPUT] + "\n[... truncated; run it locally for the rest]"
    return section
